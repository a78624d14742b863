"""Decoding audio files into float32 samples.

WAV, FLAC, OGG/Vorbis and (with libsndfile ≥ 1.1) MP3 are read with soundfile; anything soundfile cannot read
(MP3 on older libsndfile, AAC/M4A, Opus, the audio track of a video) is decoded with PyAV (FFmpeg). ``"demo"``
names the bundled demo piece (:mod:`vj.audio.demo`).

All errors a user can cause raise :class:`vj.errors.AudioInputError` with a one-line message.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vj.errors import AudioInputError

DEMO = "demo"


def resolve_input(path_or_demo: str | os.PathLike) -> Path:
    """Turn a command-line audio argument into a path.

    Args:
        path_or_demo: a file path, or ``"demo"`` for the bundled demo piece.

    Returns:
        The path of an existing regular file.

    Raises:
        AudioInputError: the file does not exist, is a directory, or is unreadable.
    """
    if str(path_or_demo) == DEMO:
        from vj.resources import data_path

        path = data_path("demo.flac")
        if not path.is_file():
            raise AudioInputError(f"the bundled demo piece is missing ({path}); reinstall vj")
        return path
    path = Path(path_or_demo).expanduser()
    if not path.exists():
        raise AudioInputError(f"audio file not found: {path}")
    if not path.is_file():
        raise AudioInputError(f"not a file: {path}")
    if not os.access(path, os.R_OK):
        raise AudioInputError(f"audio file is not readable (permission denied): {path}")
    return path


def _read_soundfile(path: Path) -> tuple[np.ndarray, int] | None:
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:  # libsndfile does not know the format: let PyAV try
        return None
    return data, int(sr)


def _read_pyav(path: Path) -> tuple[np.ndarray, int]:
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:
        raise AudioInputError(f"cannot decode {path.name}: not an audio file ({_short(exc)})") from None
    with container:
        streams = container.streams.audio
        if not streams:
            raise AudioInputError(f"{path.name} has no audio stream")
        stream = streams[0]
        sr = stream.codec_context.sample_rate or stream.rate
        channels = stream.codec_context.channels or 1
        # Packed float32 at the stream's own rate and layout: PyAV/FFmpeg does the sample-format conversion.
        resampler = av.AudioResampler(format="flt", layout=stream.layout.name if stream.layout else None, rate=sr)
        chunks = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1, channels))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1, channels))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise AudioInputError(f"cannot decode {path.name}: {_short(exc)}") from None
            # A damaged tail: keep what decoded, as players do.
    data = np.concatenate(chunks) if chunks else np.zeros((0, channels), np.float32)
    return data.astype(np.float32, copy=False), int(sr)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__


def load_audio(
    path_or_demo: str | os.PathLike,
    sample_rate: int | None = None,
    mono: bool = True,
    start_s: float = 0.0,
    duration_s: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode an audio file.

    Args:
        path_or_demo: path of a wav/flac/ogg/mp3/m4a/... file, or ``"demo"``.
        sample_rate: resample to this rate [Hz] (PyAV's FFmpeg resampler); None keeps the file's rate.
        mono: average the channels into one.
        start_s: skip this much audio from the start [s], >= 0.
        duration_s: keep at most this much audio [s] after ``start_s``; None keeps the rest.

    Returns:
        (samples, sample_rate): samples is float32 [shape=(n,)] if ``mono`` else [shape=(n, channels)],
        nominally in -1..1 (values beyond are kept, not clipped); sample_rate in Hz.

    Raises:
        AudioInputError: missing/unreadable/non-audio file, no audio stream, zero-length audio (after
            ``start_s``/``duration_s``), or invalid ``start_s``/``duration_s``.
    """
    path = resolve_input(path_or_demo)
    if start_s < 0 or (duration_s is not None and duration_s <= 0):
        raise AudioInputError("start must be >= 0 and duration > 0 seconds")
    got = _read_soundfile(path)
    data, sr = got if got is not None else _read_pyav(path)
    if data.shape[0] == 0:
        raise AudioInputError(f"{path.name} contains no audio samples (zero length)")
    if sample_rate is not None and sample_rate != sr:
        data = resample(data, sr, sample_rate)
        sr = sample_rate
    first = int(round(start_s * sr))
    last = data.shape[0] if duration_s is None else min(data.shape[0], first + int(round(duration_s * sr)))
    if first >= data.shape[0]:
        raise AudioInputError(
            f"start {start_s:g} s is past the end of {path.name} ({data.shape[0] / sr:.2f} s long)"
        )
    data = data[first:last]
    if mono:
        data = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(data, dtype=np.float32), sr


def resample(data: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample with FFmpeg's resampler (through PyAV).

    Args:
        data: float32 [shape=(n, channels)] (1 or 2 channels; more are mixed to stereo by FFmpeg's layout rules).
        sr_in, sr_out: sample rates [Hz], > 0.

    Returns:
        float32 [shape=(m, channels)] with m ≈ n * sr_out / sr_in.
    """
    import av

    channels = data.shape[1]
    layout = {1: "mono", 2: "stereo"}.get(channels)
    if layout is None:
        data = data[:, :2] if channels > 2 else data
        channels, layout = data.shape[1], "stereo"
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data.T, dtype=np.float32), format="fltp", layout=layout)
    frame.sample_rate = sr_in
    rs = av.AudioResampler(format="fltp", layout=layout, rate=sr_out)
    outs = [f.to_ndarray() for f in rs.resample(frame)] + [f.to_ndarray() for f in rs.resample(None)]
    return np.ascontiguousarray(np.concatenate(outs, axis=1).T, dtype=np.float32)
