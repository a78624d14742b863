"""Faults of the night that need no running show (docs/reliability.md): minutes of silence in the analysis."""

import math

import numpy as np

from vj.audio.analysis import analyze_signal
from vj.audio.decode import load_audio

SR, HOP = 44100, 512


def test_three_minutes_of_silence_then_the_music_comes_back(testdata):
    """A DJ change-over or a dead channel: 3 minutes of digital silence, then music. The analysis stays finite and
    silent (no phantom onsets, the gain control does not run away), and follows the music within two seconds."""
    pop, sr = load_audio(testdata / "annotated" / "easy_example.flac")
    assert sr == SR
    y = np.concatenate([pop[: SR * 4], np.zeros(SR * 180, np.float32), pop[SR * 4 : SR * 14]])
    feats = analyze_signal(y, SR, HOP)
    scalars = ("rms", "loudness_db", "level", "bass", "mid", "high", "onset_strength", "bpm", "gain")
    assert all(math.isfinite(getattr(f, k)) for f in feats for k in scalars)
    quiet = [f for f in feats if 7.0 < f.time_s < 183.5]  # (the beat tracker coasts ~2 s after the music stops)
    assert all(f.silent and not f.onset and not f.beat for f in quiet)
    back = [f for f in feats if 186.0 <= f.time_s <= 193.5]
    assert not any(f.silent for f in back)
    assert np.median([f.level for f in back]) > 0.2
    assert sum(f.onset for f in back) >= 5
    assert max(f.gain for f in feats) <= 2 * max(f.gain for f in feats if f.time_s < 4.0) + 1e-6
