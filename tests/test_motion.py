"""The beat-locked reactions (vj.motion via vj.mapping) on the demo piece, whose beat times are exact."""

from __future__ import annotations

import numpy as np
import pytest

from vj.audio import demo
from vj.audio.features import Features
from vj.mapping import Mapper, MappingSettings, map_offline
from vj.motion import BeatPulse, envelope, envelope_integral

FPS = 30.0
OFF = dict(pulse=0.0, calm=0.0, onset_follow=0.0, class_beat=0.0, truncation_pulse=0.0)


@pytest.fixture(scope="module")
def demo_frames(demo_audio):
    """The demo's first 20 s analysed as ``vj render`` does: one Features per video frame at 30 fps."""
    from vj.audio.analysis import analyze_signal
    from vj.render import frame_features

    y, sr = demo_audio
    y = y[: 20 * sr]
    hops = analyze_signal(y, sr, 512)
    return frame_features(hops, int(20 * FPS), FPS, sr, 512)


def steps(track) -> np.ndarray:
    """Noise step arriving at each frame (``[0]`` = 0), the same indexing as the beat frames below."""
    return np.concatenate([[0.0], np.linalg.norm(np.diff(track.noise, axis=0), axis=1)])


def beat_frames(n: int, t0_s: float = 6.0) -> np.ndarray:
    """Frames of the demo's beats once the tracker has settled (from ``t0_s``)."""
    b = np.asarray(demo.BEAT_TIMES_S)
    f = np.round(b[b >= t0_s] * FPS).astype(int)
    return f[f < n - 4]


def on_off_ratio(st: np.ndarray, beats: np.ndarray) -> float:
    near = np.zeros(len(st), bool)
    for b in beats:
        near[b - 1 : b + 2] = True
    near[: int(6 * FPS)] = False
    off = ~near
    off[: int(6 * FPS)] = False
    return float(st[near].mean() / st[off].mean())


def peak_offsets(st: np.ndarray, beats: np.ndarray) -> np.ndarray:
    return np.array([int(np.argmax(st[b - 3 : b + 4])) - 3 for b in beats])


def test_envelope_integral_matches_the_envelope():
    x = np.linspace(-0.1, 0.5, 60001)
    num = np.cumsum(envelope(x, 0.08)) * (x[1] - x[0])
    assert np.allclose(num, envelope_integral(x, 0.08) - envelope_integral(-0.1, 0.08), atol=1e-4)


@pytest.mark.parametrize("lookahead", [False, True])
def test_depths_zero_is_todays_motion(demo_frames, lookahead):
    """All reaction depths 0 reproduce the mapping as it was (step ratio ~1: the beat barely shows)."""
    a = map_offline(demo_frames, MappingSettings(**OFF), seed=3, lookahead=lookahead)
    st = steps(a)
    assert 0.8 < on_off_ratio(st, beat_frames(len(st))) < 1.2
    assert np.all(a.truncation == a.truncation[0])


@pytest.mark.parametrize("lookahead", [False, True])
def test_steps_on_the_beat_are_larger(demo_frames, lookahead):
    """Defaults: the noise step within ±1 frame of a beat is well over twice the step between beats (measured
    3.2 causal, 3.5 lookahead on the demo; with all depths 0 it is 0.99)."""
    st = steps(map_offline(demo_frames, MappingSettings(), seed=3, lookahead=lookahead))
    assert on_off_ratio(st, beat_frames(len(st))) >= 2.5


PULSE_ONLY = dict(onset_follow=0.0)  # the onset follower adds each kick's flux a frame later: timing of the pulse alone


def test_jolt_lands_on_the_beat_with_lookahead(demo_frames):
    st = steps(map_offline(demo_frames, MappingSettings(**PULSE_ONLY), seed=3, lookahead=True))
    off = peak_offsets(st, beat_frames(len(st)))
    assert np.all(np.abs(off) <= 1), off
    assert np.mean(off == 0) >= 0.7


def test_jolt_lands_on_the_beat_causally(demo_frames):
    """Live is causal: the pulse is scheduled from the tracker's phase before the beat, so it peaks on the beat
    frame or the next, not a beat report later."""
    st = steps(map_offline(demo_frames, MappingSettings(**PULSE_ONLY), seed=3, lookahead=False))
    off = peak_offsets(st, beat_frames(len(st)))
    assert np.mean(np.abs(off) <= 1) >= 0.9, off
    assert np.mean(off == 0) >= 0.5, off


@pytest.mark.parametrize("lookahead", [False, True])
def test_onset_follower_moves_with_every_hit(demo_frames, lookahead):
    """``onset_follow`` alone: the noise step follows each frame's hit strength (kicks, snares, and hats at 0.4);
    at 0 the step does not know the hits."""
    from vj.motion import hit_strength

    hits = np.array([hit_strength(f) for f in demo_frames])[1:]
    only = dict(OFF, onset_follow=1.0, tempo_sensitivity=0.25)
    follow = steps(map_offline(demo_frames, MappingSettings(**only), seed=3, lookahead=lookahead))[1:]
    none = steps(map_offline(demo_frames, MappingSettings(**dict(only, onset_follow=0.0)), seed=3,
                             lookahead=lookahead))[1:]
    assert np.corrcoef(follow, hits)[0, 1] > 0.8
    assert np.corrcoef(none, hits)[0, 1] < 0.5


def test_hit_strength_weights_hats_down():
    from vj.motion import hit_strength

    kick = Features(silent=False, onset_peak=0.9, bass=1.0, mid=0.3)
    hat = Features(silent=False, onset_peak=0.9, bass=0.0, mid=0.0, high=1.0)
    assert hit_strength(kick) == pytest.approx(0.9)
    assert hit_strength(hat) == pytest.approx(0.36)
    assert hit_strength(Features(silent=True, onset_peak=0.9, bass=1.0)) == 0.0
    assert hit_strength(Features(silent=False, onset_peak=float("nan"), bass=1.0)) == 0.0


def test_silence_rests(demo_frames):
    """After the music stops the noise vector comes to rest within a second; no pulse is predicted into silence."""
    frames = list(demo_frames[:300])
    last = frames[-1]
    for k in range(300, 420):
        t = k / FPS
        frames.append(Features(hop_index=10_000 + k, time_s=t, silent=True, bpm=last.bpm,
                               beat_count=last.beat_count, onset_count=last.onset_count,
                               beat_phase=(t * last.bpm / 60.0) % 1.0))
    for lookahead in (False, True):
        st = steps(map_offline(frames, MappingSettings(), seed=3, lookahead=lookahead))
        assert st[:300].mean() > 0.1
        assert st[300 + 30 :].max() < 1e-3 * st[:300].mean(), lookahead


def test_deterministic_and_frame_rate_independent(demo_frames):
    a = map_offline(demo_frames, MappingSettings(), seed=5)
    b = map_offline(demo_frames, MappingSettings(), seed=5)
    assert np.array_equal(a.noise, b.noise) and np.array_equal(a.truncation, b.truncation)
    # one beat's pulse moves the same distance whatever the step rate
    for fps in (24.0, 30.0, 60.0, 240.0):
        p = BeatPulse()
        p._add(1.0, 1.0, 0.08)
        total = sum(p.advance(k / fps)[0] for k in range(int(3 * fps)))
        assert total == pytest.approx(envelope_integral(2.0, 0.08), rel=1e-9)


def test_class_mix_drifts_less(demo_frames):
    """The class mix moves less per frame with the defaults than with class_beat 0 (the original's follower)."""
    on = map_offline(demo_frames, MappingSettings(), seed=3)
    off = map_offline(demo_frames, MappingSettings(class_beat=0.0), seed=3)
    drift = lambda t: np.abs(np.diff(t.class_vectors, axis=0)).sum(axis=1)[int(6 * FPS):].mean()  # noqa: E731
    assert drift(on) < 0.8 * drift(off)


def test_strobe_limit_caps_pulses():
    """Events packed closer than 1/3 s: no more than 3 large pulses (amplitude ≥ 0.5) in any second."""
    p = BeatPulse()
    times = np.arange(0, 4, 0.1)  # 10 events a second
    p.set_events(times, np.ones(len(times)), np.full(len(times), 0.05))
    t, a, _ = p._fixed
    big = t[a >= 0.5]
    assert all(np.sum((big >= s) & (big < s + 1)) <= 3 for s in np.arange(0, 3.01, 0.05))


def test_live_mapper_uses_the_lead(demo_frames):
    """A positive pulse lead evaluates the envelope earlier: the causal peak moves earlier, not later."""
    m0, m1 = Mapper(MappingSettings(), 1), Mapper(MappingSettings(pulse_lead_s=0.066), 1)
    n0, n1 = [], []
    for f in demo_frames:
        n0.append(m0.step(f, 1 / FPS).noise)
        n1.append(m1.step(f, 1 / FPS).noise)
    s0 = np.concatenate([[0], np.linalg.norm(np.diff(n0, axis=0), axis=1)])
    s1 = np.concatenate([[0], np.linalg.norm(np.diff(n1, axis=0), axis=1)])
    b = beat_frames(len(s0))
    assert peak_offsets(s1, b).mean() < peak_offsets(s0, b).mean()
