"""PortAudio (sounddevice) bookkeeping: the input devices it sees, and opening/closing streams safely.

PortAudio lists devices once, when it is initialised; :func:`refresh_devices` re-initialises it to rescan, which is
only safe while no stream is open, so every stream vj opens goes through :func:`open_stream` / :func:`close_stream`
(counted). A close that hangs inside a dead host API (a vanished device or sound server) is abandoned after a
timeout; :func:`hung_stream_closes` counts those, and :func:`leave_hung_streams_to_os` makes a leaving process skip
PortAudio's exit-time terminate, which would wait on such a stream forever. This module is the only place that
touches sounddevice's private functions.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading

import numpy as np

from vj.audio.source import one_line
from vj.errors import VJError

log = logging.getLogger("vj")

#: name of the helper threads that close streams (those still alive are hung closes)
_CLOSER_NAME = "vj-stream-close"


def sounddevice_module():
    """Import sounddevice lazily (it initialises PortAudio), turning a missing PortAudio into a VJError.

    Returns:
        The ``sounddevice`` module.

    Raises:
        VJError: libportaudio2 is not installed.
    """
    try:
        import sounddevice as sd
    except OSError as exc:  # libportaudio2 missing
        raise VJError(f"PortAudio is not available ({one_line(exc)}); install libportaudio2") from None
    return sd


#: sounddevice streams this module has open (PortAudio may only be re-initialised when there are none)
_open_streams = 0
#: serialises PortAudio (re-)initialisation against device queries and stream creation in other threads
_pa_lock = threading.RLock()

def open_stream(factory):
    """Create a sounddevice stream with ``factory()`` and count it as open (so no rescan closes it).

    Args:
        factory: a no-argument callable returning a ``sounddevice`` stream (not started).

    Returns:
        The stream.
    """
    global _open_streams
    with _pa_lock:
        stream = factory()
        _open_streams += 1
    return stream


def close_stream(stream, timeout_s: float = 1.0) -> None:
    """Abort and close a stream counted by :func:`open_stream`.

    The close runs in a helper thread named ``vj-stream-close``: one that hangs inside a dead host API is abandoned
    after ``timeout_s`` [s] (it stays counted as open, so PortAudio is not re-initialised under it; see
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

    closer = threading.Thread(target=close, name=_CLOSER_NAME, daemon=True)
    closer.start()
    closer.join(timeout_s)


def hung_stream_closes() -> int:
    """Number of stream closes still stuck in a dead host API (abandoned ``vj-stream-close`` threads).

    A process leaving with one should skip PortAudio's exit-time terminate, which would wait on it forever.
    """
    return sum(1 for t in threading.enumerate() if t.name == _CLOSER_NAME and t.is_alive())


def leave_hung_streams_to_os() -> bool:
    """Before the process exits: if a stream close hung inside a dead host API, skip PortAudio's exit-time
    terminate (sounddevice's atexit handler), which would wait on that stream forever; the OS reclaims it at exit.

    Returns:
        True if a hung close was found (and logged once as a warning), else False.
    """
    if not hung_stream_closes():
        return False
    sd = sys.modules.get("sounddevice")
    handler = getattr(sd, "_exit_handler", None)
    if handler is not None:
        atexit.unregister(handler)
    log.warning("the audio input did not close (its device or server is gone); leaving it to the OS")
    return True

def refresh_devices() -> bool:
    """Make PortAudio rescan its devices (it lists them once, at initialisation).

    This re-initialises PortAudio, which would close every stream in the process, so it is done only while this
    module has no stream open (streams opened with sounddevice directly elsewhere are not known here).

    Returns:
        True if the device list was refreshed, False if a stream was open and it was left alone.

    Raises:
        VJError: PortAudio itself is missing.
    """
    sd = sounddevice_module()
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
    sd = sounddevice_module()
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

