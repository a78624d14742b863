"""A PortAudio input device delivered as exact mono hops, with a supervisor that survives the device going away.

See :class:`LiveInputSource`; the capture times come from :class:`vj.audio.capture_clock.CaptureClock`, device
lookup and stream bookkeeping from :mod:`vj.audio.portaudio`.
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from vj.audio.capture_clock import CaptureClock
from vj.audio.portaudio import close_stream, open_stream, resolve_input_device, sounddevice_module
from vj.audio.source import AudioSource, HopCallback, SourceState, check_hop_size, one_line
from vj.clock import now_s
from vj.errors import VJError

#: capture rate [Hz] of a LiveInputSource whose device is absent when it is made and no rate was asked for
_FALLBACK_RATE = 48000


class LiveInputSource(AudioSource):
    """A PortAudio input device, delivered as exact mono hops, that survives a device going away.

    The stream is opened with ``blocksize=hop_size``; PortAudio may still deliver other block sizes, so the
    callback mixes each block down to mono into preallocated scratch and re-blocks it into exact hops (no
    allocation per call unless a block is larger than any seen before). ``capture_time_s`` of a hop is when its
    last sample was captured, on the vj clock (:func:`vj.clock.now_s`), as a
    :class:`~vj.audio.capture_clock.CaptureClock` tells it from PortAudio's ADC times (plausible when 0..max(50 ms,
    4 hops) before the block arrived) or the blocks' arrival: hop-spaced, never after the hop arrived, and not
    jumping when a host API's latency report does.

    After :meth:`start`, nothing raises into the caller: a missing device, an unsupported sample rate, or a
    device that vanishes or stops delivering for ``stall_restart_s`` puts the source in ``ERROR`` with a
    one-line ``last_error``; a supervisor thread then reopens it every ``retry_interval_s`` (``RETRYING``,
    rescanning PortAudio's device list) until it delivers again (``RUNNING``).

    Args:
        device: None/``"default"`` for the default input, a PortAudio index, or a case-insensitive name substring.
        sample_rate: capture rate [Hz]; None uses the device's default rate, looked up in the constructor
            (48000 if the device is not there yet). The rate then stays fixed for the source's life, reopening
            included, so ``sample_rate`` is valid before :meth:`start` and consumers never see it change.
        hop_size: samples per hop (16..65536).
        channels: ``"mix"`` (average the first two channels, or one on a mono device), an int (that channel only,
            0-based) or a list of ints (their average).
        retry_interval_s: time between attempts to reopen a failed device [s].
        stall_timeout_s: no audio for this long → ``STALLED`` [s].
        stall_restart_s: no audio for this long → treat the device as gone and reopen it [s].
        strict: resolve the device in the constructor and raise :class:`VJError` if it is not there (for a typo on
            the command line); the default waits for it instead.

    Raises:
        VJError: bad ``hop_size``/``channels``/``sample_rate``; with ``strict``, a device that cannot be found or
            opened with these settings.
    """

    def __init__(
        self,
        device: int | str | None = None,
        sample_rate: int | None = None,
        hop_size: int = 512,
        channels: str | int | Sequence[int] = "mix",
        retry_interval_s: float = 2.0,
        stall_timeout_s: float = 0.5,
        stall_restart_s: float = 5.0,
        strict: bool = False,
    ) -> None:
        super().__init__()
        self.device = device
        self.hop_size = check_hop_size(hop_size)
        valid_rate = isinstance(sample_rate, (int, np.integer)) and 1000 <= sample_rate <= 768000
        if sample_rate is not None and not valid_rate:
            raise VJError(f"sample rate must be an integer in 1000..768000 Hz, got {sample_rate!r}")
        self._requested_rate = None if sample_rate is None else int(sample_rate)
        self.sample_rate = self._requested_rate or 0
        self._channel_spec = self._parse_channels(channels)
        self.channels = 0
        self.retry_interval_s = float(retry_interval_s)
        self.stall_timeout_s = float(stall_timeout_s)
        self.stall_restart_s = float(stall_restart_s)
        #: name of the device currently (or last) open
        self.device_name: str | None = None
        #: times the stream was (re)opened successfully
        self.opens = 0
        #: status flags other than input overflow (e.g. input underflow) reported by PortAudio
        self.other_status_flags = 0
        self._stream = None
        self._on_hop: HopCallback | None = None
        self._supervisor: threading.Thread | None = None
        self._stop = threading.Event()
        # callback state (touched by the PortAudio thread)
        self._cols: list[int] = [0]
        self._mix_scale = 1.0
        self._scratch = np.zeros(4096, dtype=np.float32)
        self._hop = np.zeros(self.hop_size, dtype=np.float32)
        self._fill = 0
        self._last_data_s = 0.0
        self._stream_finished = False
        self._hops_at_open = 0
        self._clock = CaptureClock(self.sample_rate or _FALLBACK_RATE)  # remade for each opened stream
        if strict:
            info = resolve_input_device(device)
            self._requested_rate, cols = self._check_settings(info)
            self.channels = max(cols) + 1
        else:
            try:
                info = resolve_input_device(device)
                self.channels = max(self._columns_for(info)) + 1
                if self._requested_rate is None:
                    self._requested_rate = int(round(info["default_samplerate"])) or _FALLBACK_RATE
            except VJError:  # reported after start(), and retried
                pass
        if self._requested_rate is None:
            self._requested_rate = _FALLBACK_RATE
        self.sample_rate = self._requested_rate

    @staticmethod
    def _parse_channels(channels) -> str | list[int]:
        if isinstance(channels, str):
            if channels.strip().lower() == "mix":
                return "mix"
            try:
                channels = [int(c) for c in channels.split(",")]
            except ValueError:
                raise VJError(
                    f"channels must be 'mix', a channel number or a list like 0,1; got {channels!r}"
                ) from None
        if isinstance(channels, (int, np.integer)) and not isinstance(channels, bool):
            channels = [int(channels)]
        try:
            cols = [int(c) for c in channels]
        except TypeError:
            raise VJError(f"channels must be 'mix', a channel number or a list of them; got {channels!r}") from None
        if not cols or any(c < 0 or c > 255 for c in cols):
            raise VJError(f"channel numbers must be in 0..255 (0 = first); got {channels!r}")
        return sorted(set(cols))

    def _columns_for(self, info: dict) -> list[int]:
        if self._channel_spec == "mix":
            return list(range(min(2, info["channels"])))
        if max(self._channel_spec) >= info["channels"]:
            raise VJError(
                f"{info['name']!r} has {info['channels']} input channel(s); channel {max(self._channel_spec)} "
                "does not exist (channels count from 0)"
            )
        return list(self._channel_spec)

    def _check_settings(self, info: dict) -> tuple[int, list[int]]:
        sd = sounddevice_module()
        cols = self._columns_for(info)
        rate = self._requested_rate or int(round(info["default_samplerate"]))
        try:
            sd.check_input_settings(device=info["index"], channels=max(cols) + 1, dtype="float32", samplerate=rate)
        except Exception as exc:
            raise VJError(
                f"{info['name']!r} cannot capture {max(cols) + 1} channel(s) at {rate} Hz ({one_line(exc)})"
            ) from None
        return rate, cols

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def start(self, on_hop: HopCallback) -> None:
        if self._supervisor is not None:
            raise RuntimeError("source already started")
        self._on_hop = on_hop
        self._stop.clear()
        self.state = SourceState.STARTING
        self.last_error = None
        self.hops_delivered = 0
        try:
            self._open()
        except Exception as exc:  # reported, retried by the supervisor
            self._fail(exc)
        self._supervisor = threading.Thread(target=self._supervise, name="vj-input-supervisor", daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        self._stop.set()
        sup, self._supervisor = self._supervisor, None
        if sup is not None and sup is not threading.current_thread():
            sup.join()
        self._close_stream()
        self.state = SourceState.CLOSED

    # -- supervisor ----------------------------------------------------------------------------------------------

    def _fail(self, exc: BaseException | str) -> None:
        self.last_error = exc if isinstance(exc, str) else one_line(exc)
        self.state = SourceState.ERROR

    def _supervise(self) -> None:
        """Supervisor thread: watch the stream, report stalls and failures, reopen every ``retry_interval_s``."""
        next_retry = now_s() + self.retry_interval_s
        while not self._stop.wait(0.05):
            try:
                next_retry = self._supervise_step(now_s(), next_retry)
            except Exception as exc:  # a surprise must not end supervision: report it, close, retry later
                self._close_stream()
                self._fail(f"input failed: {one_line(exc)}")
                next_retry = now_s() + self.retry_interval_s

    def _supervise_step(self, now: float, next_retry: float) -> float:
        """One look at the stream; returns the (possibly updated) time of the next reopen attempt."""
        state = self.state
        if self._stream is not None:
            silent_s = now - self._last_data_s
            if self._stream_finished or not self._stream_active():
                self._close_stream()
                self._fail(f"input {self.device_name!r} stopped (device gone or failed)")
                return now + self.retry_interval_s
            if silent_s >= self.stall_restart_s and state in (SourceState.STALLED, SourceState.STARTING):
                self._close_stream()
                self._fail(f"no audio from {self.device_name!r} for {silent_s:.1f} s (device gone?)")
                return now + self.retry_interval_s
            if silent_s >= self.stall_timeout_s:
                if state is SourceState.RUNNING:
                    self.last_error = f"no audio from {self.device_name!r} for {self.stall_timeout_s:g} s"
                    self.state = SourceState.STALLED
            elif self.hops_delivered > self._hops_at_open and state is not SourceState.RUNNING:
                self.state = SourceState.RUNNING
            return next_retry
        # no stream: waiting to retry
        if state is SourceState.ERROR:
            self.state = SourceState.RETRYING
        if now >= next_retry:
            next_retry = now + self.retry_interval_s
            try:
                self._open(refresh=True)
            except Exception as exc:
                self.last_error = one_line(exc)
                self.state = SourceState.RETRYING
        return next_retry

    def _stream_active(self) -> bool:
        try:
            return bool(self._stream.active)
        except Exception:
            return False

    def _open(self, refresh: bool = False) -> None:
        """Resolve the device and open + start a stream on it (raises on failure)."""
        sd = sounddevice_module()
        info = resolve_input_device(self.device, refresh=refresh)
        rate, cols = self._check_settings(info)
        self._prepare(cols)
        stream = open_stream(
            lambda: sd.InputStream(
                device=info["index"],
                samplerate=rate,
                blocksize=self.hop_size,
                channels=max(cols) + 1,
                dtype="float32",
                latency="low",
                callback=self._callback,
                finished_callback=self._finished,
            )
        )
        self._stream = stream
        self.sample_rate = rate
        self.channels = max(cols) + 1
        self.device_name = info["name"]
        self._last_data_s = now_s()
        try:
            stream.start()
        except Exception:
            self._close_stream()
            raise
        self.opens += 1
        self.state = SourceState.STARTING

    def _prepare(self, cols: list[int]) -> None:
        """Reset the callback's state for a new stream capturing device channels ``cols`` (0-based)."""
        self._cols = cols
        self._mix_scale = 1.0 / len(cols)
        self._fill = 0
        self._stream_finished = False
        self._hops_at_open = self.hops_delivered
        self._clock = CaptureClock(self.sample_rate, max_adc_lag_s=max(0.05, 4 * self.hop_size / self.sample_rate))

    def _finished(self) -> None:
        self._stream_finished = True

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            close_stream(stream)

    # -- PortAudio callback (audio thread) -----------------------------------------------------------------------

    def _callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        arrival = now_s()
        self._last_data_s = arrival
        if status:
            if status.input_overflow:
                self.overflows += 1
            else:
                self.other_status_flags += 1
        if frames > self._scratch.shape[0]:  # rare: a block larger than any seen before
            self._scratch = np.zeros(frames, dtype=np.float32)
        mono = self._scratch[:frames]
        cols = self._cols
        np.copyto(mono, indata[:, cols[0]])
        if len(cols) > 1:
            for c in cols[1:]:
                np.add(mono, indata[:, c], out=mono)
            np.multiply(mono, self._mix_scale, out=mono)
        clock = self._clock
        k0 = clock.samples
        clock.observe(frames, arrival, time_info.inputBufferAdcTime, time_info.currentTime)
        hop, hop_size, pos = self._hop, self.hop_size, 0
        while pos < frames:
            n = min(hop_size - self._fill, frames - pos)
            hop[self._fill : self._fill + n] = mono[pos : pos + n]
            self._fill += n
            pos += n
            if self._fill == hop_size:
                self._fill = 0
                try:
                    self._on_hop(hop, clock.capture_time(k0 + pos))
                except Exception as exc:
                    self.callback_errors += 1
                    self.callback_exception = exc
                self.hops_delivered += 1

