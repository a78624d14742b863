"""Audio sources: a sound card's input, or a file played at real-time pace, delivered hop by hop.

Every source has the same small surface (:class:`AudioSource`): ``start(on_hop)`` makes it call
``on_hop(hop, capture_time_s)`` from its own audio thread with exactly ``hop_size`` mono float32 samples per
call, until ``stop()``. The live engine drives either kind the same way; ``state`` and ``last_error`` tell the
overlay what is going on, and ``overflows`` counts dropped input (PortAudio status flags) without printing.

* :class:`LiveInputSource` — a PortAudio input (sounddevice), re-blocked into exact hops, with a supervisor
  thread that notices a stalled or vanished device and reopens it every ``retry_interval_s`` until it is back.
  It never raises into the caller's thread after :meth:`~AudioSource.start`.
* :class:`FileSource` — a decoded file (or the bundled ``demo``) delivered at real-time pace (drift-free
  against ``time.perf_counter()``) or as fast as the consumer takes it; optionally played to the default output.
* :func:`open_source` — the command-line spelling (``demo``, ``file:PATH``, ``default``, an index or a name).
* :func:`list_input_devices` / :func:`resolve_input_device` — the inputs PortAudio sees, and finding one by
  index or name; :func:`refresh_devices` rescans (PortAudio lists devices once, when it is initialised).

Threading rules (see DESIGN.md): the PortAudio callback never blocks, logs, or allocates in a loop; the array
passed to ``on_hop`` is only valid during the call — a consumer copies what it keeps.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from typing import Callable, Sequence

import numpy as np

from vj.errors import AudioInputError, VJError

#: ``on_hop(hop, capture_time_s)``: hop is float32 [shape=(hop_size,)] mono, valid only during the call;
#: capture_time_s is the ``time.perf_counter()`` instant at which the hop's last sample was captured [s].
HopCallback = Callable[[np.ndarray, float], None]


class SourceState(enum.Enum):
    """Where a source is in its life."""

    STARTING = "starting"  #: start() called, no audio delivered yet
    RUNNING = "running"  #: hops are arriving
    STALLED = "stalled"  #: started, but no audio arrived lately
    ERROR = "error"  #: the device is missing or failed (see ``last_error``)
    RETRYING = "retrying"  #: after an error, trying to reopen the device every few seconds
    ENDED = "ended"  #: a file source delivered its last hop
    CLOSED = "closed"  #: stop()/close() was called (or never started)


class AudioSource:
    """Abstract audio source delivering fixed-size mono hops from its own thread.

    Attributes:
        sample_rate: samples per second of the delivered hops [Hz].
        hop_size: samples per hop (> 0).
        channels: channels read from the input before mixing down to mono.
        state: a :class:`SourceState`; written only by the source's own threads.
        last_error: a one-line human message about the latest problem (for the overlay), or None.
        overflows: number of input overflows (audio lost before it reached us), counted, never printed.
    """

    sample_rate: int
    hop_size: int
    channels: int

    def __init__(self) -> None:
        self.state = SourceState.CLOSED
        self.last_error: str | None = None
        self.overflows = 0
        #: hops delivered since start()
        self.hops_delivered = 0
        #: exceptions raised by ``on_hop`` (caught so the audio thread survives); the latest is kept in
        #: ``callback_exception``
        self.callback_errors = 0
        self.callback_exception: BaseException | None = None

    def start(self, on_hop: HopCallback) -> None:
        """Begin delivering hops to ``on_hop`` from the source's thread.

        Args:
            on_hop: called as ``on_hop(hop, capture_time_s)`` with hop float32 [shape=(hop_size,)]
                (valid only during the call) and capture_time_s on the ``time.perf_counter()`` clock [s].
                It must return quickly; exceptions it raises are counted in ``callback_errors``.

        Raises:
            RuntimeError: the source is already started.
        """
        raise NotImplementedError

    def stop(self) -> None:
        """Stop delivering hops and release the device or thread; idempotent. Returns once no more calls occur."""
        raise NotImplementedError

    def close(self) -> None:
        """Same as :meth:`stop`."""
        self.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def status_line(self) -> str:
        """A short human summary for an overlay, e.g. ``"running"`` or ``"retrying: no input device"``."""
        line = self.state.value
        if self.last_error and self.state in (SourceState.ERROR, SourceState.RETRYING, SourceState.STALLED):
            line += f": {self.last_error}"
        return line


#: capture rate [Hz] of a LiveInputSource whose device is absent when it is made and no rate was asked for
_FALLBACK_RATE = 48000

#: how far ahead of start() a monitored FileSource schedules its first sample [s] (time to open the output)
_MONITOR_LEAD_S = 0.15

#: how fast the capture clock's anchor may move later [s per s of audio] (1000 ppm, far above crystal drift)
_CLOCK_LEAK = 1e-3


def _check_hop_size(hop_size: int) -> int:
    if isinstance(hop_size, bool) or not isinstance(hop_size, (int, np.integer)) or not 16 <= hop_size <= 65536:
        raise VJError(f"hop size must be an integer in 16..65536 samples, got {hop_size!r}")
    return int(hop_size)


# ----------------------------------------------------------------------------------------------------------------
# File source


class FileSource(AudioSource):
    """Delivers a decoded audio file hop by hop, at real-time pace or as fast as possible.

    The file is decoded (and mixed to mono) in the constructor, so a missing or undecodable file raises there,
    in the caller's thread. The last hop is zero-padded to ``hop_size``; a file of n samples gives exactly
    ``ceil(n / hop_size)`` hops per pass.

    Real-time pace is scheduled against ``time.perf_counter()`` from the start instant, so it does not drift:
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

        self.hop_size = _check_hop_size(hop_size)
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
        self._t0 = time.perf_counter() + (_MONITOR_LEAD_S if self.monitor else 0.0)
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
                    wait = due - time.perf_counter()
                    if wait > 0 and self._stop.wait(wait):
                        break
                    capture = due
                else:
                    capture = time.perf_counter()
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

            stream = _open_stream(
                lambda: sd.OutputStream(
                    samplerate=self.sample_rate, channels=1, dtype="float32", callback=self._monitor_callback
                )
            )
            self._out_stream = stream
            stream.start()
        except Exception as exc:
            self.last_error = f"monitor off: no usable output device ({_one_line(exc)})"
            stream, self._out_stream = self._out_stream, None
            if stream is not None:
                _close_stream(stream)

    def _monitor_callback(self, outdata, frames, time_info, status) -> None:
        # Play the samples due at the moment the buffer reaches the DAC, so what is heard matches the hops'
        # capture times. Position from the perf_counter schedule: drift-free like the hop thread.
        dac = time_info.outputBufferDacTime
        now_pa = time_info.currentTime
        lead_s = dac - now_pa if dac > 0 and now_pa > 0 else 0.0
        due = int(round((time.perf_counter() + lead_s - self._t0) * self.sample_rate))
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
            _close_stream(stream)
        self.state = SourceState.CLOSED


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# ----------------------------------------------------------------------------------------------------------------
# Devices


def _sd():
    """Import sounddevice lazily (it initialises PortAudio), turning a missing PortAudio into a VJError."""
    try:
        import sounddevice as sd
    except OSError as exc:  # libportaudio2 missing
        raise VJError(f"PortAudio is not available ({_one_line(exc)}); install libportaudio2") from None
    return sd


#: sounddevice streams this module has open (PortAudio may only be re-initialised when there are none)
_open_streams = 0
#: serialises PortAudio (re-)initialisation against device queries and stream creation in other threads
_pa_lock = threading.RLock()


def _open_stream(factory):
    """Create a sounddevice stream with ``factory()`` and count it as open (so no rescan closes it)."""
    global _open_streams
    with _pa_lock:
        stream = factory()
        _open_streams += 1
    return stream


def _close_stream(stream, timeout_s: float = 1.0) -> None:
    """Abort and close a stream counted by :func:`_open_stream`.

    The close runs in a helper thread named ``vj-stream-close``: one that hangs inside a dead host API is abandoned
    after ``timeout_s`` (it stays counted as open, so PortAudio is not re-initialised under it; see
    :func:`hung_stream_closes`).
    """

    def close():
        global _open_streams
        try:
            stream.abort(ignore_errors=True)
            stream.close(ignore_errors=True)
        except Exception:
            pass
        with _pa_lock:
            _open_streams -= 1

    closer = threading.Thread(target=close, name="vj-stream-close", daemon=True)
    closer.start()
    closer.join(timeout_s)


def hung_stream_closes() -> int:
    """Number of stream closes still stuck in a dead host API (abandoned ``vj-stream-close`` threads).

    A process leaving with one should skip PortAudio's exit-time terminate, which would wait on it forever.
    """
    return sum(1 for t in threading.enumerate() if t.name == "vj-stream-close" and t.is_alive())


def refresh_devices() -> bool:
    """Make PortAudio rescan its devices (it lists them once, at initialisation).

    This re-initialises PortAudio, which would close every stream in the process, so it is done only while this
    module has no stream open (streams opened with sounddevice directly elsewhere are not known here).

    Returns:
        True if the device list was refreshed, False if a stream was open and it was left alone.

    Raises:
        VJError: PortAudio itself is missing.
    """
    sd = _sd()
    with _pa_lock:
        if _open_streams:
            return False
        try:
            sd._terminate()
        except Exception:
            pass
        sd._initialize()
        return True


def list_input_devices(refresh: bool = False) -> list[dict]:
    """The audio inputs PortAudio sees.

    Args:
        refresh: rescan first (see :func:`refresh_devices`), e.g. after a device was plugged in.

    Returns:
        One dict per input device: ``index`` (int, PortAudio's), ``name`` (str), ``channels`` (max input channels),
        ``default_samplerate`` (Hz, float), ``hostapi`` (name, str), ``is_default`` (bool). Empty without inputs.

    Raises:
        VJError: PortAudio itself is missing.
    """
    sd = _sd()
    if refresh:
        refresh_devices()
    with _pa_lock:
        try:
            devices = sd.query_devices()
            hostapis = sd.query_hostapis()
            default_in = sd.default.device[0]
        except Exception:
            return []
        if default_in is None or default_in < 0:
            try:
                default_in = sd.query_hostapis(0)["default_input_device"]
            except Exception:
                default_in = -1
    out = []
    for index, dev in enumerate(devices):
        if dev["max_input_channels"] <= 0:
            continue
        out.append(
            {
                "index": index,
                "name": dev["name"],
                "channels": int(dev["max_input_channels"]),
                "default_samplerate": float(dev["default_samplerate"]),
                "hostapi": hostapis[dev["hostapi"]]["name"],
                "is_default": index == default_in,
            }
        )
    return out


def _describe_inputs(inputs: list[dict]) -> str:
    if not inputs:
        return "no audio inputs found"
    return "available inputs: " + "; ".join(f"{d['index']}: {d['name']}" for d in inputs)


def resolve_input_device(device: int | str | None, refresh: bool = False) -> dict:
    """Find an input device by PortAudio index or case-insensitive name substring.

    Args:
        device: None or ``"default"`` for the default input, an int (or digit string) index, or part of a name.
            Among several name matches an exact (case-insensitive) name wins, then the first.
        refresh: rescan PortAudio's device list first.

    Returns:
        The device's dict as from :func:`list_input_devices`.

    Raises:
        VJError: no such input (the message lists the available inputs), or no inputs at all.
    """
    inputs = list_input_devices(refresh=refresh)
    if isinstance(device, str) and device.strip().lstrip("-").isdigit():
        device = int(device)
    if device is None or (isinstance(device, str) and device.strip().lower() in ("", "default")):
        for d in inputs:
            if d["is_default"]:
                return d
        if inputs:
            return inputs[0]
        raise VJError("no audio input device found (no sound card, or PortAudio sees none)")
    if isinstance(device, (int, np.integer)):
        for d in inputs:
            if d["index"] == device:
                return d
        raise VJError(f"no audio input with index {device}; {_describe_inputs(inputs)}")
    needle = str(device).strip().lower()
    matches = [d for d in inputs if needle in d["name"].lower()]
    exact = [d for d in matches if d["name"].lower() == needle]
    if exact or matches:
        return (exact or matches)[0]
    raise VJError(f"no audio input matching {str(device)!r}; {_describe_inputs(inputs)}")


# ----------------------------------------------------------------------------------------------------------------
# Live input


class LiveInputSource(AudioSource):
    """A PortAudio input device, delivered as exact mono hops, that survives a device going away.

    The stream is opened with ``blocksize=hop_size``; PortAudio may still deliver other block sizes, so the
    callback mixes each block down to mono into preallocated scratch and re-blocks it into exact hops (no
    allocation per call unless a block is larger than any seen before). ``capture_time_s`` of a hop is when its
    last sample was captured, on the ``time.perf_counter()`` clock: the sample clock (samples since the stream
    opened / ``sample_rate``) anchored to the earliest observed capture time, where an observation is PortAudio's
    ``inputBufferAdcTime`` (mapped onto perf_counter through the offset to the stream clock's ``currentTime``) when
    it is plausible (0..max(50 ms, 4 hops) before the block arrived), else the block's arrival time. The anchor
    may creep later by at most 1 ms per second of audio, to follow the device clock's drift. So capture times
    are hop-spaced, never after the hop arrived, and do not jump when a host API's latency report does (PulseAudio's
    ALSA plug-in reports half a second on an idle monitor and 15 ms a moment later).

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
        self.hop_size = _check_hop_size(hop_size)
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
        self._samples_in = 0  # samples received since the stream was (re)opened
        self._anchor = 0.0  # perf_counter time of sample 0 of the open stream [s]
        self._max_adc_lag_s = 0.05
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
        sd = _sd()
        cols = self._columns_for(info)
        rate = self._requested_rate or int(round(info["default_samplerate"]))
        try:
            sd.check_input_settings(device=info["index"], channels=max(cols) + 1, dtype="float32", samplerate=rate)
        except Exception as exc:
            raise VJError(
                f"{info['name']!r} cannot capture {max(cols) + 1} channel(s) at {rate} Hz ({_one_line(exc)})"
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
        self.last_error = exc if isinstance(exc, str) else _one_line(exc)
        self.state = SourceState.ERROR

    def _supervise(self) -> None:
        """Supervisor thread: watch the stream, report stalls and failures, reopen every ``retry_interval_s``."""
        next_retry = time.perf_counter() + self.retry_interval_s
        while not self._stop.wait(0.05):
            try:
                next_retry = self._supervise_step(time.perf_counter(), next_retry)
            except Exception as exc:  # a surprise must not end supervision: report it, close, retry later
                self._close_stream()
                self._fail(f"input failed: {_one_line(exc)}")
                next_retry = time.perf_counter() + self.retry_interval_s

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
                self.last_error = _one_line(exc)
                self.state = SourceState.RETRYING
        return next_retry

    def _stream_active(self) -> bool:
        try:
            return bool(self._stream.active)
        except Exception:
            return False

    def _open(self, refresh: bool = False) -> None:
        """Resolve the device and open + start a stream on it (raises on failure)."""
        sd = _sd()
        info = resolve_input_device(self.device, refresh=refresh)
        rate, cols = self._check_settings(info)
        self._prepare(cols)
        stream = _open_stream(
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
        self._last_data_s = time.perf_counter()
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
        self._samples_in = 0
        self._anchor = 0.0
        self._max_adc_lag_s = max(0.05, 4 * self.hop_size / self.sample_rate)

    def _finished(self) -> None:
        self._stream_finished = True

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            _close_stream(stream)

    # -- PortAudio callback (audio thread) -----------------------------------------------------------------------

    def _callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        arrival = time.perf_counter()
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
        # Capture clock: sample k (counted since the stream opened) was captured at anchor + k / sr. Each block
        # gives an observation of when its last sample was captured: PortAudio's ADC time mapped onto
        # perf_counter where it is plausible, else the arrival time (an upper bound). The anchor follows the
        # earliest observation, leaking later slowly so that it tracks the device clock's drift.
        sr = self.sample_rate
        k0 = self._samples_in
        k_end = k0 + frames
        observed = arrival
        adc = time_info.inputBufferAdcTime
        now_pa = time_info.currentTime
        if adc > 0 and now_pa > 0:
            adc_end = adc + (arrival - now_pa) + frames / sr
            if 0.0 <= arrival - adc_end <= self._max_adc_lag_s:
                observed = adc_end
        candidate = observed - k_end / sr
        if k0 == 0:
            self._anchor = candidate
        else:
            self._anchor = min(self._anchor + _CLOCK_LEAK * frames / sr, candidate)
        self._samples_in = k_end
        anchor = self._anchor
        hop, hop_size, pos = self._hop, self.hop_size, 0
        while pos < frames:
            n = min(hop_size - self._fill, frames - pos)
            hop[self._fill : self._fill + n] = mono[pos : pos + n]
            self._fill += n
            pos += n
            if self._fill == hop_size:
                self._fill = 0
                try:
                    self._on_hop(hop, anchor + (k0 + pos) / sr)
                except Exception as exc:
                    self.callback_errors += 1
                    self.callback_exception = exc
                self.hops_delivered += 1


# ----------------------------------------------------------------------------------------------------------------


def open_source(spec, **kw) -> AudioSource:
    """Build a source from its command-line spelling.

    Args:
        spec: ``"demo"`` (the bundled demo piece at real-time pace), ``"file:PATH"`` (a file), ``"default"`` or
            None (the default input), an int or digit string (an input's index), or any other string (part of an
            input's name).
        **kw: passed to :class:`FileSource` or :class:`LiveInputSource` (e.g. ``hop_size``, ``realtime``,
            ``loop``, ``monitor``, ``sample_rate``, ``channels``, ``strict``).

    Returns:
        An unstarted :class:`AudioSource`.

    Raises:
        VJError: a file that cannot be read, bad options, or (with ``strict=True``) an input that is not there.
    """
    if isinstance(spec, str):
        text = spec.strip()
        if text == "demo":
            return FileSource("demo", **kw)
        if text.startswith("file:"):
            path = text[len("file:") :]
            if not path:
                raise AudioInputError("file: needs a path, e.g. file:song.wav")
            return FileSource(path, **kw)
        return LiveInputSource(device=None if text in ("", "default") else text, **kw)
    if spec is None or isinstance(spec, (int, np.integer)):
        return LiveInputSource(device=spec, **kw)
    raise VJError(f"not an audio source: {spec!r} (use demo, file:PATH, default, an input index or name)")
