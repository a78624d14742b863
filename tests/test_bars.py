"""Bars, meter, downbeats and phrases (vj.audio.bars) on signals with exact ground truth — the demo piece and a
generated waltz — and (when the recordings are present) downbeat F on the annotated dev clips. Downbeat F is
mir_eval's beat F-measure (±70 ms) on the downbeats, first 5 s ignored, as in benchmarks/downbeats.py."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from vj.audio import demo
from vj.audio.analysis import StreamingAnalyzer, analyze_signal
from vj.audio.bars import BarSync, BarTracker

mir_eval = pytest.importorskip("mir_eval")
warnings.filterwarnings("ignore", module="mir_eval")


def downbeat_f(ref, feats) -> float:
    est = np.array([f.time_s for f in feats if f.downbeat])
    return mir_eval.beat.f_measure(mir_eval.beat.trim_beats(np.asarray(ref)), mir_eval.beat.trim_beats(est))


def waltz(sr: int = 22050, bpm: float = 96.0, bars: int = 20, seed: int = 0):
    """A generated 3/4 piece: kick and a new chord with its bass note on every "one", hats on 2 and 3.

    Returns (y float32, downbeat times [s]).
    """
    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    n = int((bars * 3 * beat + 1.0) * sr)
    y = np.zeros(n)
    t = np.arange(int(0.25 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 * t + 60 * (1 - np.exp(-t / 0.03)) * 0.03)) * np.exp(-t / 0.12)
    hat = rng.standard_normal(int(0.03 * sr)) * np.exp(-np.arange(int(0.03 * sr)) / (0.006 * sr))
    hat = np.diff(hat, prepend=0.0)
    chords = [(57, 60, 64), (53, 57, 60), (55, 59, 62), (52, 55, 59), (50, 53, 57), (48, 52, 55)]
    bar_n = int(3 * beat * sr)
    tb = np.arange(bar_n) / sr
    downs = []
    for b in range(bars):
        t0 = b * 3 * beat
        i0 = int(t0 * sr)
        downs.append(t0)
        notes = chords[rng.integers(len(chords))] if b else chords[0]
        pad = sum(np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12) * tb) for m in notes)
        pad += 0.8 * np.sin(2 * np.pi * 440 * 2 ** ((notes[0] - 24 - 69) / 12) * tb)
        env = np.minimum(1.0, tb / 0.01) * np.exp(-tb / 1.5)
        y[i0 : i0 + bar_n] += 0.12 * pad * env
        y[i0 : i0 + len(kick)] += 0.8 * kick
        for k in (1, 2):
            j = int((t0 + k * beat) * sr)
            y[j : j + len(hat)] += 0.25 * hat
    return (0.9 * y / np.abs(y).max()).astype(np.float32), np.array(downs)


@pytest.fixture(scope="module")
def demo_feats(demo_audio):
    y, sr = demo_audio
    return analyze_signal(y, sr, 512)


def test_demo_downbeats_exact(demo_feats):
    ref = np.array(demo.BEAT_TIMES_S[:: demo.BEATS_PER_BAR])
    assert downbeat_f(ref, demo_feats) == 1.0  # the target; measured 1.0
    assert all(f.meter == 4 for f in demo_feats if f.time_s > 3)
    downs = [f for f in demo_feats if f.downbeat]
    assert all(f.beat and f.beat_in_bar == 0 for f in downs)
    counts = [f.downbeat_count for f in demo_feats]
    assert counts == sorted(counts) and counts[-1] == len(downs)
    # every downbeat after 5 s within 70 ms of a bar start
    for f in downs:
        if f.time_s > 5:
            assert np.min(np.abs(ref - f.time_s)) < 0.07


def test_demo_bar_phase_and_beat_in_bar(demo_feats):
    beats = [f for f in demo_feats if f.beat and f.time_s > 5]
    for a, b in zip(beats, beats[1:]):
        assert b.beat_in_bar == (a.beat_in_bar + 1) % 4
    for f in demo_feats:
        if f.time_s > 5:
            # bar phase agrees with the piece's own bar position within ~70 ms (a bar is 1.875 s)
            true = (f.time_s / demo.BAR_S) % 1.0
            d = abs(((f.bar_phase - true) + 0.5) % 1.0 - 0.5)
            assert d < 0.07 / demo.BAR_S + 0.02, f.time_s


def test_demo_phrase_counts_bars_from_the_start(demo_feats):
    # before the breakdown re-anchors, phrase_pos counts bars from the start of the music
    for t_bar in (3.5, 5.25, 7.5):
        f = min(demo_feats, key=lambda f: abs(f.time_s - t_bar * demo.BAR_S))
        assert f.phrase_pos == pytest.approx(t_bar, abs=0.06)
        assert f.bar_count == int(t_bar)


def test_waltz_meter_three():
    y, downs = waltz()
    feats = analyze_signal(y, 22050, 256)
    late = [f.meter for f in feats if f.time_s > 12]
    assert late and all(m == 3 for m in late)  # measured: meter 3 from 10.6 s (bar 6) on
    est = np.array([f.time_s for f in feats if f.downbeat and 12 < f.time_s < 37])
    assert mir_eval.beat.f_measure(downs[(downs > 12) & (downs < 37)], est) == 1.0


def test_four_four_stays_four(demo_feats):
    assert {f.meter for f in demo_feats} == {4}


def test_resync_moves_the_one_at_once(demo_audio):
    """A tap on beat 3 of bar 6 (11.25 + 0.94 s): from then on that beat's position is the downbeat."""
    y, sr = demo_audio
    hop = 512
    an = StreamingAnalyzer(sr, hop)
    sync = BarSync()
    an.bar_sync = sync
    tap_t = 6 * demo.BAR_S + 2 * demo.BEAT_S + 0.05  # just after beat 3 of bar 6
    feats = []
    for i in range(len(y) // hop):
        t = (i + 1) * hop / sr
        if feats and feats[-1].time_s < tap_t <= t:
            sync.request()
        feats.append(an.process(y[i * hop : (i + 1) * hop]))
    after = [f for f in feats if f.downbeat and f.time_s > tap_t]
    assert after
    first = after[0].time_s
    assert first - tap_t < demo.BAR_S  # the next "one" comes within a bar of the tap, on the tapped grid
    for f in after:
        k = round((f.time_s - 2 * demo.BEAT_S) / demo.BEAT_S) % 4
        assert k == 0, f.time_s  # downbeats now fall on the piece's beat 3
    # the breakdown/drop do not undo the tap (the tracker is locked)
    assert an._bars.locked


def test_bar_sync_mailbox():
    s = BarSync()
    assert not s.pending()
    s.request()
    s.request()
    assert s.pending() and not s.pending()


def test_tracker_without_beats_reports_unknown():
    bt = BarTracker(86.0, 21.5, 1025)
    diff = np.zeros(1025)
    chroma = np.zeros(12)
    for _ in range(200):
        bt.update(False, 0.0, 0.0, diff, chroma)
    assert bt.beat_in_bar == -1 and not bt.downbeat and bt.bar_phase == 0.0


# --- annotated recordings (skip without ../shared/testdata) -----------------------------------------------------
def _ann(path):
    a = np.loadtxt(path, ndmin=2)
    return a[a[:, 1] == 1, 0]


@pytest.mark.parametrize("rel,floor", [("club/gtzan_disco00000", 0.9), ("club/gtzan_hiphop00007", 0.8),
                                       ("club/gtzan_pop00024", 0.9)])
def test_downbeats_club(testdata, rel, floor):
    from vj.audio.decode import load_audio

    y, sr = load_audio(testdata / (rel + ".wav"))
    f = downbeat_f(_ann(testdata / (rel + ".beats")), analyze_signal(y, sr, 512))
    assert f >= floor  # measured disco 1.000, hiphop 0.923, pop 1.000


def test_downbeats_waltz_and_pop(testdata):
    from vj.audio.decode import load_audio

    y, sr = load_audio(testdata / "annotated" / "Media-105901.wav")
    feats = analyze_signal(y, sr, 512)
    assert downbeat_f(_ann(testdata / "annotated" / "Media-105901.beats"), feats) >= 0.6  # measured 0.727
    assert feats[-1].meter == 3
    y, sr = load_audio(testdata / "annotated" / "easy_example.flac")
    feats = analyze_signal(y, sr, 512)
    assert downbeat_f(_ann(testdata / "annotated" / "easy_example.beats"), feats) >= 0.6  # measured 0.714
    assert feats[-1].meter == 4
