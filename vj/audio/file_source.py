"""A decoded audio file (or the bundled ``demo``) delivered hop by hop at real-time pace or as fast as possible.

Real-time pace is drift-free against the vj clock (:func:`vj.clock.now_s`); optionally the file is played to the
default output in step with the hops (the monitor). See :class:`FileSource`.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from vj.audio.portaudio import close_stream, open_stream
from vj.audio.source import AudioSource, HopCallback, SourceState, check_hop_size, one_line
from vj.clock import now_s

#: how far ahead of start() a monitored FileSource schedules its first sample [s] (time to open the output)
_MONITOR_LEAD_S = 0.15


class FileSource(AudioSource):
    """Delivers a decoded audio file hop by hop, at real-time pace or as fast as possible.

    The file is decoded (and mixed to mono) in the constructor, so a missing or undecodable file raises there,
    in the caller's thread. The last hop is zero-padded to ``hop_size``; a file of n samples gives exactly
    ``ceil(n / hop_size)`` hops per pass.

    Real-time pace is scheduled against ``vj.clock.now_s()`` from the start instant, so it does not drift:
    hop i is delivered when its last sample "would have been captured", at ``t0 + (i + 1) * hop_size /
    sample_rate``, and that instant is its ``capture_time_s``. If the consumer falls behind, late hops are
    delivered back to back until the schedule is met again. In fast mode ``capture_time_s`` is the delivery
    instant.

    Args:
        path_or_demo: a file path, or ``"demo"`` for the bundled demo piece.
        realtime: pace delivery in real time (True) or deliver as fast as possible (False).
        hop_size: samples per hop (16..65536).
        loop: start again from the beginning at the end instead of ending.
        monitor: also play the audio to the default output device (sounddevice), in step with the hops; if
            there is no usable output device this is noted in ``last_error`` and delivery goes on silently.
            Only meaningful with ``realtime``. The schedule then starts 0.15 s after :meth:`start` (time to open
            the output); the output plays continuously and jumps only if it parts from the schedule by > 40 ms
            (counted in ``monitor_resyncs``). The output stays open (silent) after the end until :meth:`stop`.
        sample_rate: resample to this rate [Hz]; None keeps the file's rate.

    Raises:
        VJError: bad hop size; AudioInputError (a VJError) for a missing, unreadable or non-audio file.
    """

    def __init__(
        self,
        path_or_demo,
        realtime: bool = True,
        hop_size: int = 512,
        loop: bool = False,
        monitor: bool = False,
        sample_rate: int | None = None,
    ) -> None:
        super().__init__()
        from vj.audio.decode import load_audio

        self.hop_size = check_hop_size(hop_size)
        samples, sr = load_audio(path_or_demo, sample_rate=sample_rate, mono=True)
        self.path = str(path_or_demo)
        self.sample_rate = int(sr)
        self.channels = 1
        self.realtime = bool(realtime)
        self.loop = bool(loop)
        self.monitor = bool(monitor) and self.realtime
        #: samples in the file (before padding the last hop)
        self.n_samples = int(samples.shape[0])
        #: hops in one pass through the file
        self.n_hops = math.ceil(self.n_samples / self.hop_size)
        padded = np.zeros(self.n_hops * self.hop_size, dtype=np.float32)
        padded[: self.n_samples] = samples
        padded.flags.writeable = False
        self._samples = padded
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._done.set()
        self._t0 = 0.0
        self._out_stream = None
        self._monitor_pos: int | None = None  # next sample index the monitor plays
        self._monitor_slack = int(0.04 * self.sample_rate)
        #: times the monitor output jumped to catch up with the hop schedule (clock drift, or a stall)
        self.monitor_resyncs = 0

    @property
    def duration_s(self) -> float:
        """Length of the file [s]."""
        return self.n_samples / self.sample_rate

    def start(self, on_hop: HopCallback) -> None:
        if self._thread is not None:
            raise RuntimeError("source already started")
        self._stop.clear()
        self._done.clear()
        self.state = SourceState.STARTING
        self.hops_delivered = 0
        # With a monitor, the schedule starts a moment ahead so opening the output does not eat the first notes.
        self._t0 = now_s() + (_MONITOR_LEAD_S if self.monitor else 0.0)
        if self.monitor:
            self._monitor_pos = None
            self._open_monitor()
        self._thread = threading.Thread(target=self._run, args=(on_hop,), name="vj-file-source", daemon=True)
        self._thread.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the source has delivered its last hop (or was stopped).

        Args:
            timeout_s: give up after this long [s]; None waits indefinitely.

        Returns:
            True if the source finished, False on timeout.
        """
        return self._done.wait(timeout_s)

    def _run(self, on_hop: HopCallback) -> None:
        hop, sr, n_hops = self.hop_size, self.sample_rate, self.n_hops
        samples = self._samples
        hop_s = hop / sr
        i = 0  # hops delivered since start (keeps counting across loops)
        try:
            while not self._stop.is_set():
                k = i % n_hops
                if i and k == 0 and not self.loop:
                    self.state = SourceState.ENDED
                    break
                if self.realtime:
                    due = self._t0 + (i + 1) * hop_s
                    wait = due - now_s()
                    if wait > 0 and self._stop.wait(wait):
                        break
                    capture = due
                else:
                    capture = now_s()
                if self.state is not SourceState.RUNNING:
                    self.state = SourceState.RUNNING
                try:
                    on_hop(samples[k * hop : (k + 1) * hop], capture)
                except Exception as exc:  # a consumer bug must not kill the source
                    self.callback_errors += 1
                    self.callback_exception = exc
                i += 1
                self.hops_delivered = i
        finally:
            if self.state is not SourceState.ENDED:
                self.state = SourceState.CLOSED if self._stop.is_set() else SourceState.ENDED
            self._done.set()

    # -- monitor output ------------------------------------------------------------------------------------------

    def _open_monitor(self) -> None:
        """Open an output stream that plays the samples the schedule says are due (notice on failure)."""
        try:
            import sounddevice as sd

            stream = open_stream(
                lambda: sd.OutputStream(
                    samplerate=self.sample_rate, channels=1, dtype="float32", callback=self._monitor_callback
                )
            )
            self._out_stream = stream
            stream.start()
        except Exception as exc:
            self.last_error = f"monitor off: no usable output device ({one_line(exc)})"
            stream, self._out_stream = self._out_stream, None
            if stream is not None:
                close_stream(stream)

    def _monitor_callback(self, outdata, frames, time_info, status) -> None:
        # Play the samples due at the moment the buffer reaches the DAC, so what is heard matches the hops'
        # capture times. Position from the vj-clock schedule: drift-free like the hop thread.
        dac = time_info.outputBufferDacTime
        now_pa = time_info.currentTime
        lead_s = dac - now_pa if dac > 0 and now_pa > 0 else 0.0
        due = int(round((now_s() + lead_s - self._t0) * self.sample_rate))
        # Play continuously; jump only when the schedule and the sound card's clock part by > 40 ms.
        pos = self._monitor_pos
        if pos is None or abs(due - pos) > self._monitor_slack:
            if pos is not None:
                self.monitor_resyncs += 1
            pos = due
        self._monitor_pos = pos + frames
        out = outdata[:, 0]
        out.fill(0.0)
        total = self._samples.shape[0]
        if self.loop:
            pos %= total
        if 0 <= pos < total:
            n = min(frames, total - pos)
            out[:n] = self._samples[pos : pos + n]
            if self.loop and n < frames:  # across the loop point
                rest = min(frames - n, total)
                out[n : n + rest] = self._samples[:rest]

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        stream, self._out_stream = self._out_stream, None
        if stream is not None:
            close_stream(stream)
        self.state = SourceState.CLOSED

