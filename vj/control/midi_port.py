"""Opening a MIDI input port (mido + python-rtmidi, the optional ``midi`` extra) by name substring.

On a machine without MIDI — python-rtmidi not installed, no ALSA sequencer (``/dev/snd/seq``), no matching port —
:func:`open_midi_input` logs one notice line and returns None; the show goes on without MIDI. ALSA's own error
print to stderr is avoided by checking for the sequencer device before rtmidi touches it.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable

from vj.clock import now_s

_log = logging.getLogger("vj.control")


def _notice(text: str) -> None:
    _log.warning("midi: %s; MIDI control is off", text)


def open_midi_input(name: str, handle: Callable, time_fn: Callable[[], float] = now_s):
    """Open the first MIDI input whose name contains ``name`` (case-insensitive) and feed it to ``handle``.

    Args:
        name: a piece of the port name, e.g. ``"nanoKONTROL"``; ``""`` takes the first port.
        handle: ``fn(message, now)`` called on rtmidi's thread for every message (e.g.
            :meth:`vj.control.midi.MidiController.handle`).
        time_fn: receive time source [s].

    Returns:
        the open mido port (``.close()`` it), or None after one notice line when MIDI is unavailable.
    """
    try:
        import mido
        import rtmidi  # noqa: F401 — the backend mido uses by default
    except ImportError:
        _notice("python-rtmidi is not installed (pip install 'vj[midi]')")
        return None
    if sys.platform.startswith("linux") and not os.path.exists("/dev/snd/seq"):
        _notice("no ALSA sequencer on this machine (/dev/snd/seq is missing)")
        return None
    try:
        names = mido.get_input_names()
    except Exception as exc:  # rtmidi raises its own SystemError subclasses
        _notice(f"cannot list MIDI inputs ({exc})")
        return None
    matches = [n for n in names if name.casefold() in n.casefold()]
    if not matches:
        _notice(f"no MIDI input matching {name!r} (inputs: {', '.join(names) or 'none'})")
        return None

    def callback(message):
        try:
            handle(message, time_fn())
        except Exception:  # a bad binding must not kill rtmidi's thread
            _log.exception("midi: error handling %s", message)

    try:
        port = mido.open_input(matches[0], callback=callback)
    except Exception as exc:
        _notice(f"cannot open {matches[0]!r} ({exc})")
        return None
    _log.info("midi: listening to %s", matches[0])
    return port
