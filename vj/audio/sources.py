"""Audio sources: a sound card's input, or a file played at real-time pace, delivered hop by hop.

The pieces live by job; this module gives them one address and builds a source from its command-line spelling.

* :mod:`vj.audio.source` — the shared surface (:class:`AudioSource`, :class:`SourceState`, ``HopCallback``).
* :mod:`vj.audio.file_source` — :class:`FileSource`: a decoded file (or the bundled ``demo``) at real-time pace
  (drift-free against :func:`vj.clock.now_s`) or as fast as the consumer takes it; optionally monitored.
* :mod:`vj.audio.portaudio` — the inputs PortAudio sees (:func:`list_input_devices`, :func:`resolve_input_device`,
  :func:`refresh_devices`) and stream bookkeeping, hung closes included (:func:`hung_stream_closes`,
  :func:`leave_hung_streams_to_os`).
* :mod:`vj.audio.capture_clock` — :class:`CaptureClock`, the sample clock → capture-time rule of live input.
* :mod:`vj.audio.live_input` — :class:`LiveInputSource`: a PortAudio input re-blocked into exact hops, with a
  supervisor thread that reopens a stalled or vanished device every ``retry_interval_s`` until it is back.
* :func:`open_source` — the command-line spelling (``demo``, ``file:PATH``, ``default``, an index or a name).

Threading rules (see DESIGN.md): the PortAudio callback never blocks, logs, or allocates in a loop; the array
passed to ``on_hop`` is only valid during the call — a consumer copies what it keeps.
"""

from __future__ import annotations

import numpy as np

from vj.audio.file_source import FileSource
from vj.audio.live_input import LiveInputSource
from vj.audio.portaudio import (
    hung_stream_closes,
    leave_hung_streams_to_os,
    list_input_devices,
    refresh_devices,
    resolve_input_device,
)
from vj.audio.source import AudioSource, HopCallback, SourceState
from vj.errors import AudioInputError, VJError

__all__ = [
    "AudioSource", "FileSource", "HopCallback", "LiveInputSource", "SourceState", "hung_stream_closes",
    "leave_hung_streams_to_os", "list_input_devices", "open_source", "refresh_devices", "resolve_input_device",
]


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
