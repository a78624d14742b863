"""Mp4Writer, the one H.264 + AAC writer: what goes in comes back out of a real decoder."""

from __future__ import annotations

import av
import numpy as np
import pytest

from vj.engine.mp4 import Mp4Writer


@pytest.mark.parametrize("suffix,channels,faststart,threads", [(".mp4", 1, False, 0), (".mkv", 2, True, 1)])
def test_frames_and_audio_round_trip(tmp_path, suffix, channels, faststart, threads):
    path = tmp_path / f"out{suffix}"
    sr, fps, n_frames = 48000, 30, 45
    w = Mp4Writer(path, (64, 48), fps, crf=10, audio_rate=sr, audio_channels=channels, faststart=faststart,
                  threads=threads)
    t = np.arange(int(sr * n_frames / fps)) / sr
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    audio = np.stack([tone] * channels)
    for k in range(n_frames):
        img = np.zeros((48, 64, 3), np.uint8)
        img[:, : 4 + k] = 255  # a white bar growing one column per frame
        w.write_video(img)
    for pos in range(0, audio.shape[1], 512):
        w.write_audio(audio[:, pos : pos + 512], pos)
    w.close()
    assert w.frames_written == n_frames and w.samples_written == audio.shape[1]
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == n_frames and frames[0].shape == (48, 64, 3)
    widths = [int((f[24, :, 0] > 128).sum()) for f in frames]
    assert widths == [4 + k for k in range(n_frames)]  # every frame, in order
    with av.open(str(path)) as c:
        a = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)
    assert a.shape[0] == channels and abs(a.shape[1] - audio.shape[1]) <= 2048  # AAC priming/padding
    spec = np.abs(np.fft.rfft(a[0, 4096:4096 + 16384]))
    assert np.argmax(spec) * sr / 16384 == pytest.approx(440, abs=5)


def test_timestamps_from_the_caller_leave_gaps(tmp_path):
    """A recording passes show-time timestamps: a dropped frame is a gap, not a shift."""
    path = tmp_path / "gaps.mp4"
    w = Mp4Writer(path, (32, 32), 10)
    for pts in (0, 1, 5, 6):
        w.write_video(np.full((32, 32, 3), 40 * pts, np.uint8), pts)
    w.close()
    with av.open(str(path)) as c:
        times = [round(float(f.time), 3) for f in c.decode(video=0)]
    assert times == [0.0, 0.1, 0.5, 0.6]
