"""``--record OUT.mp4``: what the output shows plus the input audio, as H.264 + AAC, encoded off the main thread.

The main thread hands over read-back frames with :meth:`Recorder.push_video` and the analysis thread hands over
audio hops with :meth:`Recorder.push_audio`; both only append to bounded queues and never wait. When the video
queue is full the frame is dropped and counted (:attr:`Recorder.dropped_video`) — the show is never stalled by the
encoder. An encoder thread owns the :class:`vj.engine.mp4.Mp4Writer`; the file is written under a temporary name
beside the target and renamed when it is complete, so a crash never leaves a truncated file under the requested
name.

Timing: a video frame's presentation time is its show time (seconds since the show started) rounded to ``fps``
frames per second — a frame whose slot is already written is left out, and a slot no frame reached is a gap
that players fill with the frame before (earlier versions pushed such frames one slot later, so a recording
drifted behind its sound by a frame for every catch-up after a stall); audio starts at the show time its first hop was captured and then runs sample-exact.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from vj.clock import now_s
from vj.errors import VJError

log = logging.getLogger("vj")


class Recorder:
    """Encodes the show to an MP4 file on its own thread.

    Args:
        path: output file (``.mp4``); its folder must exist.
        size: frame size (width, height) [px] (even numbers).
        fps: video frame rate [frames/s].
        t0_s: the show's start instant (:func:`vj.clock.now_s`) [s].
        queue_frames: video frames that may wait for the encoder before new ones are dropped.
        audio_wait_s: how long to wait for the first audio hop (its sample rate) before writing video only [s].
        crf: x264 constant rate factor (quality; lower = better).

    Raises:
        VJError: the folder does not exist or is not writable.
    """

    def __init__(self, path, size, fps: float = 30.0, t0_s: float | None = None, queue_frames: int = 12,
                 audio_wait_s: float = 2.0, crf: int = 20):
        self.path = Path(path)
        folder = self.path.parent if str(self.path.parent) else Path(".")
        if not folder.is_dir():
            raise VJError(f"--record: folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise VJError(f"--record: cannot write to {folder}")
        self.tmp_path = folder / f".{self.path.stem}.part{os.getpid()}.mp4"
        self.size = (int(size[0]) // 2 * 2, int(size[1]) // 2 * 2)
        self.fps = float(fps)
        self.t0_s = now_s() if t0_s is None else float(t0_s)
        self.audio_wait_s = float(audio_wait_s)
        self.crf = int(crf)
        self._video: queue.Queue = queue.Queue(maxsize=int(queue_frames))
        self._audio: deque = deque()
        self._audio_rate = 0
        self._first_audio_s: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped_video = 0  #: frames dropped because the encoder was behind
        #: frames not written because an earlier one already holds their time slot (a frame's timestamp is its
        #: show time rounded to the frame rate, never pushed later: a recording stays in step with its audio)
        self.superseded_video = 0
        self.frames_written = 0
        self.audio_samples_written = 0
        self.error: str | None = None

    # -- producers (never block) -----------------------------------------------------------------------------
    def push_video(self, rgb: np.ndarray, t_s: float) -> bool:
        """Queue a frame (uint8 [H, W, 3], row 0 = top) shown at show time ``t_s`` [s]; False if dropped."""
        try:
            self._video.put_nowait((rgb.copy(), float(t_s)))
            return True
        except queue.Full:
            self.dropped_video += 1
            return False

    def push_audio(self, hop: np.ndarray, sample_rate: int, capture_time_s: float | None = None) -> None:
        """Queue one mono hop (float32 [n]) at ``sample_rate`` [Hz] (the analysis thread's ``on_audio``).

        The first hop places the audio track: its first sample at ``capture_time_s`` less the hop's duration
        (the vj clock instant it was captured, [s]) or, without it, at the instant it is pushed. Anchoring on the
        capture keeps analysis start-up (the first hop builds the analyser) out of the sound-to-picture offset."""
        if self._first_audio_s is None:
            start = now_s() if capture_time_s is None else float(capture_time_s) - len(hop) / max(int(sample_rate), 1)
            self._first_audio_s = max(start - self.t0_s, 0.0)
            self._audio_rate = int(sample_rate)
        if int(sample_rate) == self._audio_rate and len(self._audio) < 20000:
            self._audio.append(np.array(hop, np.float32))

    # -- thread ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the encoder thread."""
        self._thread = threading.Thread(target=self._run, name="vj-record", daemon=True)
        self._thread.start()

    def _open(self):
        from vj.engine.mp4 import Mp4Writer

        return Mp4Writer(self.tmp_path, self.size, int(round(self.fps)), crf=self.crf,
                         audio_rate=self._audio_rate or None)

    def _run(self) -> None:
        started = now_s()
        while self._first_audio_s is None and not self._stop.is_set() and (
                now_s() - started < self.audio_wait_s):
            time.sleep(0.02)
        try:
            writer = self._open()
        except Exception as exc:  # noqa: BLE001
            self.error = f"cannot start recording: {exc}"
            log.warning("%s", self.error)
            self._drain_forever()
            return
        rate = int(round(self.fps))
        last_pts = -1
        a_pts = int(round((self._first_audio_s or 0.0) * self._audio_rate)) if writer.audio else 0
        try:
            while True:
                try:
                    rgb, t_s = self._video.get(timeout=0.05)
                except queue.Empty:
                    rgb = None
                if rgb is not None and int(round(t_s * rate)) <= last_pts:
                    self.superseded_video += 1  # its slot is taken (a catch-up burst): keep time, not frames
                    rgb = None
                elif rgb is not None:
                    pts = int(round(t_s * rate))
                    last_pts = pts
                    if rgb.shape[1] != self.size[0] or rgb.shape[0] != self.size[1]:
                        rgb = rgb[: self.size[1], : self.size[0]]
                    writer.write_video(rgb, pts)
                    self.frames_written += 1
                if writer.audio is not None:
                    while self._audio:
                        hop = self._audio.popleft()
                        writer.write_audio(hop, a_pts)
                        a_pts += hop.shape[0]
                        self.audio_samples_written += hop.shape[0]
                if rgb is None and self._stop.is_set() and self._video.empty():
                    break
            writer.close()
            if self.frames_written:
                os.replace(self.tmp_path, self.path)
            else:
                self.error = "no frames were recorded"
                self.tmp_path.unlink(missing_ok=True)
        except Exception as exc:  # noqa: BLE001 — the show goes on; the recording is reported failed
            self.error = f"recording failed: {exc}"
            log.warning("%s", self.error)
            writer.abort()
            self._drain_forever()

    def _drain_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self._video.get(timeout=0.1)
                self.dropped_video += 1
            except queue.Empty:
                pass
            self._audio.clear()

    def close(self, timeout_s: float = 30.0) -> bool:
        """Finish encoding what is queued, write the file and rename it into place.

        Returns:
            True if the file was written; False on an error (see :attr:`error`) or a timeout.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                self.error = self.error or "encoder did not finish in time"
                return False
        return self.error is None and self.path.exists()
