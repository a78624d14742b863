"""The one video-file writer: H.264 (libx264, yuv420p) + AAC over PyAV, used by ``vj render`` and ``--record``.

:class:`Mp4Writer` owns the container and both encoders: it opens the streams, turns RGB arrays and float
samples into PyAV frames with the right timestamps, muxes every packet, and flushes both encoders at the end.
What differs between its users is only what they pass: a render wants reproducible bitstreams (one encoder
thread, ``+faststart``), a recording wants speed; timestamps come from the caller (frame and sample counts).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

#: AAC sample rates FFmpeg's encoder accepts [Hz]; a caller resamples other rates (48 kHz is the usual choice).
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


class Mp4Writer:
    """Writes RGB frames and float audio to an H.264 + AAC file.

    Args:
        path: output file; ``.mkv`` gives Matroska, anything else MP4.
        size: frame size (width, height) [px], even numbers.
        fps: video frame rate [frames/s]; video timestamps count frames at this rate (a fraction close to it,
            denominator ≤ 1001, so 29.97 is exact).
        crf: x264 constant rate factor (0..51, lower = better).
        audio_rate: sample rate of the audio [Hz] (one of :data:`AAC_RATES`), or None for no audio stream.
        audio_channels: 1 (mono) or 2 (stereo).
        faststart: MP4 only: move the index to the front (for streaming/preview; costs a rewrite at close).
        threads: x264 threads (0 = FFmpeg's choice; 1 makes the bitstream reproducible run to run).

    Raises:
        av.FFmpegError / OSError / ValueError: the file or a stream cannot be opened (callers turn this into
            their own one-line error).
    """

    def __init__(self, path, size: tuple[int, int], fps: float, crf: int = 18, audio_rate: int | None = None,
                 audio_channels: int = 1, faststart: bool = False, threads: int = 0) -> None:
        import av

        self._av = av
        path = Path(path)
        mkv = path.suffix.lower() == ".mkv"
        options = {"movflags": "+faststart"} if faststart and not mkv else {}
        self.container = av.open(str(path), mode="w", format="matroska" if mkv else "mp4", options=options)
        try:
            rate = Fraction(fps).limit_denominator(1001)
            self.video = self.container.add_stream("libx264", rate=rate)
            self.video.width, self.video.height = int(size[0]), int(size[1])
            self.video.pix_fmt = "yuv420p"
            self.video.codec_context.time_base = 1 / rate
            self.video.options = {"crf": str(int(crf)), "preset": "veryfast"}
            if threads:
                self.video.codec_context.thread_count = int(threads)
            self._time_base = 1 / rate
            self.audio = None
            self.audio_rate = int(audio_rate or 0)
            self._layout = "stereo" if audio_channels == 2 else "mono"
            if audio_rate:
                self.audio = self.container.add_stream("aac", rate=self.audio_rate)
                self.audio.layout = self._layout
                self.audio.codec_context.time_base = Fraction(1, self.audio_rate)
        except BaseException:
            self.container.close()
            raise
        self.size = (int(size[0]), int(size[1]))
        self.frames_written = 0
        self.samples_written = 0
        self._next_pts = 0

    def write_video(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """Encode one frame.

        Args:
            rgb: uint8 [shape=(height, width, 3)], row 0 = top, of the writer's size.
            pts: its timestamp [frames at ``fps``], increasing; None = the frame after the previous one.
        """
        vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        vf.pts = self._next_pts if pts is None else int(pts)
        vf.time_base = self._time_base
        self._next_pts = vf.pts + 1
        self._mux(self.video.encode(vf))
        self.frames_written += 1

    def write_audio(self, samples: np.ndarray, pts: int) -> None:
        """Encode audio (the writer must have been made with ``audio_rate``).

        Args:
            samples: float32 [shape=(channels, n)] planar, -1..1 (mono may be [shape=(n,)]).
            pts: timestamp of its first sample [samples at ``audio_rate``].
        """
        data = np.ascontiguousarray(samples, dtype=np.float32)
        if data.ndim == 1:
            data = data[None, :]
        af = self._av.AudioFrame.from_ndarray(data, format="fltp", layout=self._layout)
        af.sample_rate = self.audio_rate
        af.pts = int(pts)
        af.time_base = Fraction(1, self.audio_rate)
        self._mux(self.audio.encode(af))
        self.samples_written += data.shape[1]

    def _mux(self, packets) -> None:
        for packet in packets:
            self.container.mux(packet)

    def close(self) -> None:
        """Flush both encoders and finish the file."""
        self._mux(self.video.encode(None))
        if self.audio is not None:
            self._mux(self.audio.encode(None))
        self.container.close()

    def abort(self) -> None:
        """Close the container without flushing (the file is left incomplete; the caller removes it)."""
        try:
            self.container.close()
        except Exception:  # noqa: BLE001
            pass
