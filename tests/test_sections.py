"""Section events (build, drop, breakdown) on the demo piece, whose arrangement is exact ground truth
(:data:`vj.audio.demo.SECTIONS`): each section's event comes once, at most one beat after the section starts, and
nothing fires on loud hits or a missing kick."""

from __future__ import annotations

import numpy as np
import pytest

from vj.audio import demo
from vj.audio.analysis import analyze_signal

BAR = demo.BAR_S
TRUE = {"breakdown": 8 * BAR, "build": 10 * BAR, "drop": 12 * BAR}  # 15.0, 18.75, 22.5 s


def _events(feats):
    return [(f.time_s, f.event, f.event_confidence) for f in feats if f.event]


@pytest.fixture(scope="module")
def demo_feats(demo_audio):
    y, sr = demo_audio
    return analyze_signal(y, sr, 512)


def test_demo_events_once_each_within_one_beat(demo_feats):
    ev = _events(demo_feats)
    assert [e for _, e, _ in ev] == ["breakdown", "build", "drop"]  # once per section, in order, nothing else
    for t, name, conf in ev:
        late = t - TRUE[name]
        assert 0.0 <= late <= demo.BEAT_S, (name, t)  # measured 0.24 s late (half a beat + a hop) each
        assert 0.3 <= conf <= 1.0
    drop = next(c for _, e, c in ev if e == "drop")
    assert drop >= 0.8  # the clearest event of the three (measured 1.0)


def test_demo_event_fields(demo_feats):
    counts = [f.event_count for f in demo_feats]
    assert counts == sorted(counts) and counts[-1] == 3  # a latched counter
    last = demo_feats[-1]
    assert last.last_event == "drop" and abs(last.last_event_time_s - TRUE["drop"]) < demo.BEAT_S
    assert last.section == "full"
    by_time = {round(f.time_s, 1): f.section for f in demo_feats}
    assert by_time[16.5] == "breakdown" and by_time[21.0] == "build" and by_time[10.0] == "full"


def test_drop_and_breakdown_start_phrases(demo_feats):
    # after the drop is reported, phrase_pos counts from bar 12: at 26.25 s (bar 14) it reads 2 bars
    f = min(demo_feats, key=lambda f: abs(f.time_s - 14 * BAR - 0.05))
    assert f.phrase_pos == pytest.approx(2.0, abs=0.1)
    # between breakdown and drop, bars count from bar 8
    f = min(demo_feats, key=lambda f: abs(f.time_s - 11 * BAR - 0.05))
    assert f.phrase_pos == pytest.approx(3.0, abs=0.1)


def test_no_events_on_loud_hits_or_a_missing_kick(demo_audio):
    """Loud broadband hits in the groove and the drop, and one downbeat kick taken out of the groove: still
    exactly the three section events."""
    y, sr = demo_audio
    y = y.astype(np.float64).copy()
    rng = np.random.default_rng(1)
    n = int(0.08 * sr)
    hit = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.02 * sr)) * 0.9
    hit += 0.9 * np.sin(2 * np.pi * 50 * np.arange(n) / sr) * np.exp(-np.arange(n) / (0.05 * sr))
    for t in (5.3, 9.1, 24.0, 27.2):  # between beats, far louder than anything in the mix
        i = int(t * sr)
        y[i : i + n] += hit
    kick = demo.synthesize_stems(sr)["kick"]
    i0, i1 = int(6 * BAR * sr), int((6 * BAR + demo.BEAT_S) * sr)  # the "one" of bar 6 without its kick
    y[i0:i1] -= kick[i0:i1]
    y = (y / max(1.0, np.abs(y).max())).astype(np.float32)
    ev = _events(analyze_signal(y, sr, 512))
    assert [e for _, e, _ in ev] == ["breakdown", "build", "drop"]
    for t, name, _ in ev:
        assert 0.0 <= t - TRUE[name] <= demo.BEAT_S


def test_quiet_groove_is_not_a_breakdown(demo_audio):
    """The whole piece 12 dB quieter gives the same events at the same times (levels are relative)."""
    y, sr = demo_audio
    ev = _events(analyze_signal((y * 10 ** (-12 / 20)).astype(np.float32), sr, 512))
    assert [e for _, e, _ in ev] == ["breakdown", "build", "drop"]


def test_analyze_csv_has_bar_and_event_columns(tmp_path):
    import csv

    from vj.cli import main

    out = tmp_path / "demo.csv"
    assert main(["analyze", "demo", "-o", str(out)]) == 0
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    events = [(float(r["time_s"]), r["event"]) for r in rows if r["event"]]
    assert [e for _, e in events] == ["breakdown", "build", "drop"]
    drop_t = next(t for t, e in events if e == "drop")
    assert 0 <= drop_t - TRUE["drop"] <= demo.BEAT_S
    downs = [float(r["time_s"]) for r in rows if r["downbeat"] == "1" and float(r["time_s"]) > 5]
    assert downs and all(min(abs(t - b * BAR) for b in range(17)) < 0.07 for t in downs)
    assert {r["meter"] for r in rows} == {"4"}
    assert all(0.0 <= float(r["bar_phase"]) < 1.0 and 0.0 <= float(r["phrase_pos"]) < 32.0 for r in rows)


def test_analyze_tempo_range(tmp_path, capsys):
    import csv

    from vj.cli import main

    out = tmp_path / "d.csv"
    assert main(["analyze", "demo", "--tempo-range", "110-150", "-o", str(out)]) == 0
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    assert abs(float(rows[-1]["bpm"]) - 128.0) < 1.0
    assert [r["event"] for r in rows if r["event"]] == ["breakdown", "build", "drop"]
    for bad in ("150-110", "fast", "120-130", "10-100"):
        with pytest.raises(SystemExit) as exc:
            main(["analyze", "demo", "--tempo-range", bad])
        assert exc.value.code == 2
        assert "--tempo-range" in capsys.readouterr().err
