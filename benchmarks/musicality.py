"""Does the picture move with the music? Frame-by-frame figures for a video and the audio it was made from.

Usage::

    python benchmarks/musicality.py VIDEO AUDIO [--beats FILE] [--label NAME]

``VIDEO`` is any video PyAV reads (a ``vj render`` output, a ``vj live --record`` file, another visualizer's
output); ``AUDIO`` the audio it reflects (a file, or ``demo``). ``--beats`` gives the beat times (first column of a
text file, seconds); without it, the beats of ``demo`` are the demo's own (exact), and those of any other audio come
from vj's streaming analysis (the same beat clock ``vj live`` uses).

Prints one JSON line:

* ``motion_mean``, ``motion_cv`` — mean and coefficient of variation of the visual change
  ``v[k] = mean |g[k] − g[k−1]|`` on 64×64 grey frames ``g`` (0..255);
* ``r_lag0``, ``r_best``, ``r_best_lag`` — Pearson correlation of ``v`` with the onset strength of the audio over
  the same frame interval, at lag 0 and at the best lag in −5…+5 frames (positive: the picture follows the sound);
  onset strength is log-magnitude spectral flux (Böck, Krebs & Schedl 2012, "Evaluating the online capabilities of
  onset detection methods"; 2048-point Hann STFT, hop 512, compression ``log(1 + 100 |X|)``), the maximum within
  each frame interval;
* ``beat_ratio`` — mean ``v`` within ±2 frames of the beats over mean ``v`` elsewhere; ``beat_ratio_best`` and
  ``beat_ratio_best_shift`` — the same with the beat window shifted by 0…+5 frames (a late pulse still shows);
* ``music_beat_ratio`` — the audio's own onset strength on vs off the beats, the reference for how much a beat
  stands out;
* ``flashes_per_s_max`` — large brightness flashes (mean luma changes by more than 20 % of full scale from one
  frame to the next) in the worst one-second window; the strobe limit is 3.

Exit status 1 with one line on stderr for unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

LAGS = range(-5, 6)
BEAT_HALF_WIDTH = 2  # frames either side of a beat
FLASH_STEP = 0.2 * 255  # mean-luma change that counts as a flash


def read_video(path: str) -> tuple[np.ndarray, np.ndarray, float, tuple[float, float | None]]:
    """Decode a video to 64×64 grey frames and mean full-resolution luma, one per frame slot of its timeline (a
    slot with no frame of its own, a gap in a live recording, repeats the frame before, as a player shows it).

    Returns:
        grey: float32 [shape=(n, 64, 64)], 0..255; luma: float32 [shape=(n,)], 0..255; fps [Hz];
        ``(video_start_s, audio_start_s)``: the streams' start times [s] (audio None without an audio stream).

    Raises:
        av.error.FFmpegError, ValueError: unreadable file or no video stream.
    """
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        stream = container.streams.video[0]
        fps = float(stream.base_rate or stream.average_rate or stream.guessed_rate)
        v_start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        a_start = None
        if container.streams.audio:
            a = container.streams.audio[0]
            a_start = float(a.start_time * a.time_base) if a.start_time is not None else 0.0
        grey, luma = [], []
        for frame in container.decode(stream):
            # a frame holds the screen until the next one's time: a gap in the timestamps repeats it
            slot = int(round((float(frame.time) - v_start) * fps)) if frame.time is not None else len(grey)
            y = frame.to_ndarray(format="gray")
            small = frame.reformat(width=64, height=64, format="gray", interpolation="AREA").to_ndarray()
            while grey and len(grey) < slot:
                grey.append(grey[-1])
                luma.append(luma[-1])
            luma.append(float(y.mean()))
            grey.append(small)
    if len(grey) < 3:
        raise ValueError(f"{path}: fewer than 3 video frames")
    return np.asarray(grey, np.float32), np.asarray(luma, np.float32), fps, (v_start, a_start)


def onset_strength(y: np.ndarray, sr: int, n_fft: int = 2048, hop: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Log-magnitude spectral flux.

    Args:
        y: float32 [shape=(n,)], mono, -1..1.
        sr: sample rate [Hz].

    Returns:
        times_s: float64 [shape=(m,)], the end of each analysis hop [s]; flux: float64 [shape=(m,)], >= 0.
    """
    pad = np.concatenate([np.zeros(n_fft - hop, np.float32), y.astype(np.float32)])
    n = 1 + max(0, (len(pad) - n_fft) // hop)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    spec = np.log1p(100.0 * np.abs(np.fft.rfft(pad[idx] * np.hanning(n_fft).astype(np.float32), axis=1)))
    flux = np.concatenate([[0.0], np.maximum(np.diff(spec, axis=0), 0.0).sum(axis=1)])
    times = (np.arange(n) * hop + hop) / sr
    return times, flux


def recording_offset_s(video: str, starts: tuple[float, float | None], y: np.ndarray, sr: int) -> float:
    """The video's first frame on the clock of ``y`` [s].

    A ``vj render`` file starts both streams at 0 (offset 0). A ``vj live --record`` file starts its audio where
    its first hop was captured, and its AAC track carries the encoder's priming samples, which the stream start
    time does not say; so the recording's own audio track is located in ``y`` by cross-correlation (±1 s) and
    the video placed from it. Without an audio stream, or when the tracks do not match (normalised peak < 0.5),
    the stream start times alone are used.
    """
    v_start, a_start = starts
    if a_start is None:
        return 0.0
    from vj.audio.decode import load_audio

    rec, _ = load_audio(video, sample_rate=sr)
    n = min(len(rec), len(y), 15 * sr)
    a, b = rec[:n].astype(np.float64), y[: n + sr].astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    c = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)  # c[L] = Σ y[i + L] rec[i]
    lags = np.r_[0:sr + 1, -sr:0]
    best = int(lags[np.argmax(c[lags])])
    peak = c[best % size] / (np.linalg.norm(a) * np.linalg.norm(b[max(best, 0): max(best, 0) + n]) + 1e-12)
    return v_start - a_start + (best / sr if peak >= 0.5 else 0.0)


def per_frame(times_s: np.ndarray, values: np.ndarray, n_frames: int, fps: float, offset_s: float = 0.0) -> np.ndarray:
    """Maximum of ``values`` within each frame interval ``((k−1)/fps, k/fps]`` (+ ``offset_s``), k = 1 … n_frames−1."""
    out = np.zeros(n_frames - 1)
    edges = np.searchsorted(times_s, np.arange(n_frames) / fps + offset_s, side="right")
    for k in range(1, n_frames):
        seg = values[edges[k - 1] : edges[k]]
        out[k - 1] = seg.max() if len(seg) else 0.0
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def lagged_corr(v: np.ndarray, o: np.ndarray, lag: int) -> float:
    """Correlation of ``v[k + lag]`` with ``o[k]`` (positive lag: the picture follows the sound)."""
    if lag >= 0:
        return _corr(v[lag:], o[: len(o) - lag])
    return _corr(v[: len(v) + lag], o[-lag:])


def beat_ratio(v: np.ndarray, beat_frames: np.ndarray, shift: int = 0) -> float:
    """Mean of ``v`` within ±2 frames of each beat (shifted by ``shift`` frames) over its mean elsewhere."""
    near = np.zeros(len(v), bool)
    for b in beat_frames + shift:
        near[max(0, b - BEAT_HALF_WIDTH) : max(0, b + BEAT_HALF_WIDTH + 1)] = True
    if not near.any() or near.all():
        return float("nan")
    off = v[~near].mean()
    return float(v[near].mean() / off) if off > 0 else float("inf")


def flashes_per_s_max(luma: np.ndarray, fps: float) -> int:
    """Most large brightness flashes in any one-second window."""
    flash = np.abs(np.diff(luma)) > FLASH_STEP
    win = max(1, int(round(fps)))
    if len(flash) <= win:
        return int(flash.sum())
    c = np.concatenate([[0], np.cumsum(flash)])
    return int((c[win:] - c[:-win]).max())


def beat_times(audio: str, y: np.ndarray, sr: int, beats_file: str | None) -> np.ndarray:
    if beats_file:
        return np.loadtxt(beats_file, usecols=0, comments="#", ndmin=1)
    if audio == "demo":
        from vj.audio import demo

        return np.asarray(demo.BEAT_TIMES_S)
    from vj.audio.analysis import analyze_signal

    return np.array([f.time_s for f in analyze_signal(y, sr, 512) if f.beat])


def measure(video: str, audio: str, beats_file: str | None = None) -> dict:
    """All figures for one video and its audio (see the module docstring)."""
    from vj.audio.decode import load_audio

    grey, luma, fps, starts = read_video(video)
    y, sr = load_audio(audio)
    offset_s = recording_offset_s(video, starts, y, sr)
    v = np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))  # v[k-1] = change from frame k-1 to k
    times, flux = onset_strength(y, sr)
    o = per_frame(times, flux, len(grey), fps, offset_s)
    n = min(len(v), len(o))
    v, o = v[:n], o[:n]
    beats = beat_times(audio, y, sr, beats_file)
    beat_frames = np.round((beats - offset_s) * fps).astype(int) - 1  # index into v: the change arriving then
    beat_frames = beat_frames[(beat_frames >= 0) & (beat_frames < n)]
    rs = {lag: lagged_corr(v, o, lag) for lag in LAGS}
    best_lag = max(rs, key=lambda k: rs[k])
    shifted = {s: beat_ratio(v, beat_frames, s) for s in range(0, 6)}
    best_shift = max(shifted, key=lambda s: -1 if np.isnan(shifted[s]) else shifted[s])
    return {
        "video": str(video), "audio": str(audio), "fps": fps, "frames": int(len(grey)), "offset_s": offset_s,
        "beats": int(len(beat_frames)),
        "motion_mean": float(v.mean()), "motion_cv": float(v.std() / v.mean()) if v.mean() > 0 else 0.0,
        "r_lag0": rs[0], "r_best": rs[best_lag], "r_best_lag": int(best_lag),
        "beat_ratio": shifted[0], "beat_ratio_best": shifted[best_shift], "beat_ratio_best_shift": int(best_shift),
        "music_beat_ratio": beat_ratio(o, beat_frames, 0),
        "flashes_per_s_max": flashes_per_s_max(luma, fps),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("audio", help="the audio file the video reflects, or 'demo'")
    parser.add_argument("--beats", help="text file whose first column is beat times [s]")
    parser.add_argument("--label", help="a name to carry into the JSON line")
    args = parser.parse_args(argv)
    for path in (args.video, args.audio if args.audio != "demo" else None, args.beats):
        if path and not Path(path).is_file():
            print(f"musicality: error: {path} not found", file=sys.stderr)
            return 1
    try:
        result = measure(args.video, args.audio, args.beats)
    except Exception as exc:  # one line for any unreadable input
        print(f"musicality: error: {exc}", file=sys.stderr)
        return 1
    if args.label:
        result = {"label": args.label, **result}
    print(json.dumps({k: (round(x, 4) if isinstance(x, float) else x) for k, x in result.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
