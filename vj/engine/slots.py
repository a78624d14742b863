"""Hand-offs between the engine's threads: latest-wins slots and event latches.

Nobody waits for anybody (see DESIGN.md): a producer overwrites, a consumer takes the newest and may skip some.

* :class:`LatestSlot` — one value, newest wins, with a sequence number so a reader can tell "new since I looked".
* :class:`EventLatch` — turns a monotonically increasing event counter (``Features.onset_count``) into "how many
  happened since I last looked", so a consumer sampling at 60 Hz misses no onset or beat.
* :class:`Frame` and :class:`FrameSlot` — generated images with their provenance (frame id, audio hop id and capture
  time, timestamps), handed from the inference thread to the main thread through three preallocated buffers
  (write / ready / read) so that the writer and the reader never touch the same memory and never block each other
  for longer than a pointer swap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A single value, newest wins, safe between threads.

    ``put`` never blocks beyond a pointer swap; ``get`` returns the newest value and its sequence number
    (0 = nothing put yet). The value is handed over by reference: the producer must not mutate it afterwards.
    """

    def __init__(self, initial: T | None = None):
        self._lock = threading.Lock()
        self._value = initial
        self._seq = 0
        self._cond = threading.Condition(self._lock)

    def put(self, value: T) -> int:
        """Publish ``value``; returns its sequence number (1, 2, ...)."""
        with self._cond:
            self._value = value
            self._seq += 1
            self._cond.notify_all()
            return self._seq

    def get(self) -> tuple[int, T | None]:
        """The newest value and its sequence number: ``(seq, value)``; ``(0, initial)`` before the first put."""
        with self._lock:
            return self._seq, self._value

    @property
    def seq(self) -> int:
        """Sequence number of the newest value (number of puts so far)."""
        return self._seq

    def wait_newer(self, seq: int, timeout_s: float) -> bool:
        """Block until a value newer than ``seq`` is there, or ``timeout_s`` [s] passed. Returns True if newer.

        For threads that have nothing else to do (never the display or the audio callback).
        """
        with self._cond:
            return self._cond.wait_for(lambda: self._seq > seq, timeout=timeout_s)


class EventLatch:
    """Counts events between looks, from a monotonically increasing counter.

    ``latch.update(features.onset_count)`` returns how many onsets happened since the previous call (0 on the first
    call, which only records where the counter stands). A counter that goes backwards (a new stream) restarts.
    """

    def __init__(self) -> None:
        self._last: int | None = None
        self.total = 0  #: events seen since creation

    def update(self, count: int) -> int:
        """Args: count: current value of the event counter. Returns: events since the last call (>= 0)."""
        count = int(count)
        if self._last is None or count < self._last:
            self._last = count
            return 0
        new = count - self._last
        self._last = count
        self.total += new
        return new


@dataclass
class Frame:
    """One generated image and where it came from.

    Attributes:
        image: uint8 [shape=(H, W, 4)] RGBA, row 0 = top; owned by the slot (valid until the next ``take``).
        frame_id: 1, 2, ... in generation order.
        hop_index: index of the newest audio hop the latents reflect (-1 if none yet).
        capture_time_s: vj clock time (:func:`vj.clock.now_s`) at which that hop was captured [s] (0 if none).
        t_start_s: when generation of this frame began (vj clock) [s].
        t_done_s: when it was published [s].
        classes: ImageNet indices of the palette the latents were mixed from (for the overlay).
    """

    image: np.ndarray
    frame_id: int = 0
    hop_index: int = -1
    capture_time_s: float = 0.0
    t_start_s: float = 0.0
    t_done_s: float = 0.0
    classes: tuple[int, ...] = field(default_factory=tuple)


class FrameSlot:
    """Latest-wins frame hand-off with three preallocated buffers; neither side ever waits for the other.

    Writer (inference thread)::

        buf = slot.write_buffer(h, w)      # the writer's own buffer, uint8 [h, w, 4]
        ...fill buf...
        slot.publish(frame_id=..., hop_index=..., ...)   # swaps it with the "ready" buffer

    Reader (main thread)::

        frame = slot.take(last_id)         # newest Frame if newer than last_id, else None

    A frame published while an older one was still waiting replaces it; that older one is counted in
    :attr:`overwritten` (generated but never displayed).

    Args:
        height, width: initial image size [px] (buffers are reallocated if the writer asks for another size).
    """

    def __init__(self, height: int = 128, width: int = 128):
        self._lock = threading.Lock()
        self._bufs = [Frame(np.zeros((height, width, 4), np.uint8)) for _ in range(3)]
        self._write, self._ready, self._read = 0, 1, 2
        self._ready_fresh = False
        self.published = 0  #: frames published
        self.overwritten = 0  #: frames replaced before the reader took them (dropped)

    def write_buffer(self, height: int, width: int) -> np.ndarray:
        """The writer's buffer, uint8 [height, width, 4]; only the writer thread may call this."""
        f = self._bufs[self._write]
        if f.image.shape != (height, width, 4):
            f.image = np.zeros((height, width, 4), np.uint8)
        return f.image

    def publish(self, **meta) -> None:
        """Make the writer's buffer the newest frame. ``meta``: the :class:`Frame` fields other than ``image``."""
        f = self._bufs[self._write]
        for k, v in meta.items():
            setattr(f, k, v)
        with self._lock:
            if self._ready_fresh:
                self.overwritten += 1
            self._write, self._ready = self._ready, self._write
            self._ready_fresh = True
            self.published += 1

    def take(self, last_id: int = 0) -> Frame | None:
        """The newest frame if one newer than ``last_id`` was published since the last take, else None.

        The returned frame's image stays valid until the next ``take``.
        """
        with self._lock:
            if not self._ready_fresh:
                return None
            self._read, self._ready = self._ready, self._read
            self._ready_fresh = False
        f = self._bufs[self._read]
        return f if f.frame_id > last_id else None
