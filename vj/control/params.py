"""The parameter registry: the live parameters (declared in :mod:`vj.parameters`), applied once per frame.

Control surfaces (OSC thread, MIDI thread, keyboard, presets) call :meth:`ParamRegistry.set` and friends from any
thread; the change is queued. The main thread calls :meth:`ParamRegistry.apply_pending` once per display frame,
which applies queued changes in arrival order and returns what changed; the mapping (inference thread) and the
shaders (main thread) read values with :meth:`ParamRegistry.get` or a :meth:`ParamRegistry.snapshot`. Values are
clamped to each parameter's range; NaN and inf are rejected. Controls never touch the GPU.

Names are dotted: ``master``, ``blackout``, ``gan.truncation``, ``fx.feedback.amount``. OSC maps ``/vj/a/b`` to
``a.b``. The class palette (a list of ImageNet indices) is registry state too (:meth:`ParamRegistry.set_classes`).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable

from vj.parameters import LIVE, Param

_log = logging.getLogger("vj.control")


@dataclass(frozen=True)
class Palette:
    """The class palette, possibly half-way through a preset crossfade.

    The mapping builds one class vector from ``source`` and one from ``target`` and mixes them
    ``(1 - mix) * v(source) + mix * v(target)``. Outside a crossfade ``source == target`` and ``mix == 1``.

    Attributes:
        source: ImageNet indices being faded out (empty = chosen by the mapping).
        target: ImageNet indices being faded in; what :attr:`ParamRegistry.classes` returns.
        mix: 0..1, progress of the fade from ``source`` to ``target``.
    """

    source: tuple[int, ...] = ()
    target: tuple[int, ...] = ()
    mix: float = 1.0

    def weights(self) -> dict[int, float]:
        """Each class's share of the blend: ``(1 - mix) / len(source)`` per source class plus
        ``mix / len(target)`` per target class.

        Returns:
            ``{class index: weight}``, weights summing to 1 (empty when both palettes are empty).
        """
        out: dict[int, float] = {}
        for classes, share in ((self.source, 1.0 - self.mix), (self.target, self.mix)):
            for c in classes:
                out[c] = out.get(c, 0.0) + share / len(classes)
        return {c: w for c, w in out.items() if w > 0.0}


#: Every live parameter vj has (declared in :data:`vj.parameters.LIVE`). Surfaces address them by name; presets
#: store any subset.
DEFAULT_PARAMS: tuple[Param, ...] = LIVE


class ParamRegistry:
    """Thread-safe store of live parameter values with changes applied once per frame.

    Args:
        params: the parameters (default :data:`DEFAULT_PARAMS`).

    Any thread may call :meth:`set`, :meth:`set_unit`, :meth:`nudge`, :meth:`toggle`, :meth:`trigger`,
    :meth:`set_classes`; they return whether the request was accepted (a known name and a finite value) and
    queue it. :meth:`apply_pending` (main thread, once per frame) applies the queue. Readers see applied values.
    """

    def __init__(self, params: Iterable[Param] = DEFAULT_PARAMS):
        self._params: dict[str, Param] = {p.name: p for p in params}
        self._values: dict[str, float] = {p.name: p.clamp(p.default) for p in self._params.values()}
        self._palette = Palette()
        self._frame = 0
        self._pending: deque = deque()
        self._lock = threading.Lock()
        self._listeners: list[Callable[[dict[str, float]], None]] = []
        self.rejected = 0  #: count of rejected requests (unknown name, NaN/inf, wrong type)
        self.listener_errors = 0  #: count of exceptions raised by listeners (logged once, then counted)
        #: ``fn(changed, palette_or_None)`` after each apply that changed something (the show log); must not block
        self.on_applied: Callable[[dict[str, float], Palette | None], None] | None = None

    # -- description ---------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self._params)

    def param(self, name: str) -> Param:
        """The :class:`Param` called ``name``. Raises KeyError if unknown."""
        return self._params[name]

    def __contains__(self, name: str) -> bool:
        return name in self._params

    # -- writers (any thread) -------------------------------------------------------------------------------
    def _queue(self, op: str, name: str, value=None) -> bool:
        if op != "classes" and name not in self._params:
            self.rejected += 1
            return False
        if value is not None and op not in ("classes",):
            try:
                value = float(value)
            except (TypeError, ValueError):
                self.rejected += 1
                return False
            if not math.isfinite(value):
                self.rejected += 1
                return False
        with self._lock:
            self._pending.append((op, name, value))
        return True

    def set(self, name: str, value: float) -> bool:
        """Queue ``name = value`` (clamped to the range). Returns False for an unknown name or NaN/inf."""
        return self._queue("set", name, value)

    def set_unit(self, name: str, x: float) -> bool:
        """Queue ``name`` = the 0..1 fader position ``x`` scaled to the parameter's range."""
        return self._queue("unit", name, x)

    def nudge(self, name: str, delta: float) -> bool:
        """Queue ``name += delta`` (raw units; clamped)."""
        return self._queue("nudge", name, delta)

    def toggle(self, name: str) -> bool:
        """Queue a toggle of a bool parameter (any other kind: flip between lo and hi)."""
        return self._queue("toggle", name)

    def trigger(self, name: str) -> bool:
        """Queue one rising edge of a trigger parameter (its value counts edges)."""
        return self._queue("trigger", name)

    def set_classes(self, classes: Iterable[int]) -> bool:
        """Queue a new class palette (ImageNet indices 0..999; others rejected)."""
        try:
            cl = tuple(int(c) for c in classes)
        except (TypeError, ValueError):
            self.rejected += 1
            return False
        if not cl or any(not 0 <= c < 1000 for c in cl):
            self.rejected += 1
            return False
        return self._queue("classes", "classes", cl)

    def blend_classes(self, source: Iterable[int], target: Iterable[int], mix: float) -> bool:
        """Queue a palette half-way through a crossfade (used by :class:`vj.control.presets.Crossfade`).

        Args:
            source: indices fading out (may be empty).
            target: indices fading in (not empty).
            mix: 0..1 progress (clamped).

        Returns:
            False (and counted in :attr:`rejected`) for indices outside 0..999, an empty target or a NaN mix.
        """
        try:
            src = tuple(int(c) for c in source)
            tgt = tuple(int(c) for c in target)
            m = float(mix)
        except (TypeError, ValueError):
            self.rejected += 1
            return False
        if not tgt or not math.isfinite(m) or any(not 0 <= c < 1000 for c in src + tgt):
            self.rejected += 1
            return False
        with self._lock:
            self._pending.append(("palette", "classes", Palette(src, tgt, min(max(m, 0.0), 1.0))))
        return True

    def set_now(self, name: str, value: float) -> None:
        """Set immediately (start-up and tests only: bypasses the per-frame queue). Raises KeyError/ValueError."""
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"{name}: value must be finite")
        self._values[name] = self._params[name].clamp(v)

    # -- main thread -----------------------------------------------------------------------------------------
    def apply_pending(self) -> dict[str, float]:
        """Apply queued changes in order; return ``{name: new value}`` of what changed (``"classes"`` → 1.0).

        Listeners added with :meth:`add_listener` are called with the same dict when it is not empty.
        """
        with self._lock:
            ops = list(self._pending)
            self._pending.clear()
        changed: dict[str, float] = {}
        palette_before = self._palette
        self._frame += 1
        for op, name, value in ops:
            if op in ("classes", "palette"):
                new_palette = Palette(value, value, 1.0) if op == "classes" else value
                if new_palette.target != self._palette.target:
                    changed["classes"] = 1.0
                self._palette = new_palette
                continue
            p = self._params[name]
            old = self._values[name]
            if op == "set":
                new = p.clamp(value)
            elif op == "unit":
                new = p.from_unit(value)
            elif op == "nudge":
                new = p.clamp(old + value)
            elif op == "toggle":
                new = p.lo if old >= (p.lo + p.hi) / 2 else p.hi
            else:  # trigger
                new = old + 1.0
            if new != old:
                self._values[name] = new
                changed[name] = new
        if self.on_applied is not None and (changed or self._palette != palette_before):
            try:
                self.on_applied(changed, self._palette if self._palette != palette_before else None)
            except Exception:  # the show log must not stop the frame loop
                self.listener_errors += 1
        if changed:
            for listener in list(self._listeners):
                try:
                    listener(changed)
                except Exception:  # a broken surface must not stop the frame loop
                    self.listener_errors += 1
                    if self.listener_errors == 1:
                        _log.exception("control: a parameter listener failed (further failures are counted)")
        return changed

    def add_listener(self, fn: Callable[[dict[str, float]], None]) -> None:
        """Call ``fn(changed)`` on the main thread after each :meth:`apply_pending` that changed something."""
        self._listeners.append(fn)

    # -- readers ---------------------------------------------------------------------------------------------
    def get(self, name: str) -> float:
        """Applied value of ``name``. Raises KeyError if unknown."""
        return self._values[name]

    def snapshot(self) -> dict[str, float]:
        """A copy of all applied values (safe to read from another thread)."""
        return dict(self._values)

    @property
    def classes(self) -> tuple[int, ...]:
        """The applied class palette (ImageNet indices); empty = chosen by the mapping.

        During a preset crossfade this is already the palette being faded in; see :attr:`palette`.
        """
        return self._palette.target

    @property
    def palette(self) -> Palette:
        """The applied palette with its crossfade state (source, target, mix); read it once per generated frame."""
        return self._palette

    @property
    def frame(self) -> int:
        """Number of :meth:`apply_pending` calls so far (lets a writer tell whether its last write was applied)."""
        return self._frame
