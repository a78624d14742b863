"""The audio-source surface shared by every source: :class:`AudioSource`, :class:`SourceState`, the hop callback.

Every source has the same small surface: ``start(on_hop)`` makes it call ``on_hop(hop, capture_time_s)`` from its
own audio thread with exactly ``hop_size`` mono float32 samples per call, until ``stop()``. The live engine drives
either kind the same way; ``state`` and ``last_error`` tell the overlay what is going on, and ``overflows`` counts
dropped input (PortAudio status flags) without printing. The sources themselves: :mod:`vj.audio.file_source`,
:mod:`vj.audio.live_input`; :func:`vj.audio.sources.open_source` builds one from its command-line spelling.
"""

from __future__ import annotations

import enum
from typing import Callable

import numpy as np

from vj.errors import VJError

#: ``on_hop(hop, capture_time_s)``: hop is float32 [shape=(hop_size,)] mono, valid only during the call;
#: capture_time_s is the vj clock (:func:`vj.clock.now_s`) instant at which the hop's last sample was captured [s].
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
                (valid only during the call) and capture_time_s on the vj clock (:func:`vj.clock.now_s`) [s].
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


def check_hop_size(hop_size: int) -> int:
    """Validate a hop size.

    Args:
        hop_size: samples per hop.

    Returns:
        ``hop_size`` as an int.

    Raises:
        VJError: not an integer in 16..65536.
    """
    if isinstance(hop_size, bool) or not isinstance(hop_size, (int, np.integer)) or not 16 <= hop_size <= 65536:
        raise VJError(f"hop size must be an integer in 16..65536 samples, got {hop_size!r}")
    return int(hop_size)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), or its type's name, for ``last_error``."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__

