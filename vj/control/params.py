"""The parameter registry: every live parameter, one place, applied once per frame.

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

_log = logging.getLogger("vj.control")


@dataclass(frozen=True)
class Param:
    """One live parameter.

    Attributes:
        name: dotted name, e.g. ``"gan.truncation"``.
        default: value at start-up.
        lo, hi: inclusive range; every value set is clamped to it.
        kind: ``"float"``, ``"int"`` (rounded), ``"bool"`` (0 or 1; "!" toggles) or ``"trigger"`` (acts on the
            rising edge; its value is a counter of edges).
        unit: unit for display and docs (``"s"``, ``"Hz"``, ``"bpm"``, ``""`` for 0..1 amounts).
        doc: one line for the overlay, docs/osc.md and ``--help``.
    """

    name: str
    default: float
    lo: float = 0.0
    hi: float = 1.0
    kind: str = "float"
    unit: str = ""
    doc: str = ""

    def clamp(self, value: float) -> float:
        v = min(max(float(value), self.lo), self.hi)
        if self.kind in ("int", "trigger"):
            v = float(round(v))
        elif self.kind == "bool":
            v = 1.0 if v >= 0.5 else 0.0
        return v

    def from_unit(self, x: float) -> float:
        """Scale 0..1 (a fader) to the range."""
        return self.clamp(self.lo + min(max(float(x), 0.0), 1.0) * (self.hi - self.lo))

    def to_unit(self, value: float) -> float:
        """Scale a value in the range to 0..1 (for feedback to faders)."""
        return 0.0 if self.hi == self.lo else (value - self.lo) / (self.hi - self.lo)


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


def _p(name, default, lo=0.0, hi=1.0, kind="float", unit="", doc=""):
    return Param(name, float(default), float(lo), float(hi), kind, unit, doc)


#: Every live parameter vj has. Surfaces address them by name; presets store any subset.
DEFAULT_PARAMS: tuple[Param, ...] = (
    # output
    _p("master", 1.0, doc="master fader: output brightness"),
    _p("blackout", 0, 0, 1, "bool", doc="output black (the show goes on underneath)"),
    _p("freeze", 0, 0, 1, "bool", doc="hold the current image"),
    _p("strobe", 0, 0, 1, "bool", doc="strobe on/off (at most 3 flashes per second)"),
    _p("strobe.rate_hz", 2.0, 0.5, 3.0, unit="Hz", doc="strobe rate, capped at 3 Hz for photosensitivity"),
    _p("transition.time_s", 2.0, 0.0, 30.0, unit="s", doc="crossfade time when switching presets"),
    _p("transition.quantize", 0, 0, 2, "int", doc="start preset changes on: 0 = now, 1 = next beat, 2 = next bar"),
    # generator mapping (the deep music visualizer's controls, live-safe)
    _p("gan.truncation", 0.7, 0.05, 1.0, doc="BigGAN truncation: low = canonical, high = varied/wild"),
    _p("gan.pitch_sensitivity", 220, 200, 295, unit="", doc="how fast the class vector follows the chroma"),
    _p("gan.tempo_sensitivity", 0.25, 0.0, 1.0, doc="how far the noise vector moves with loudness and its rise"),
    _p("gan.depth", 1.0, 0.0, 1.0, doc="maximum class-vector weight"),
    _p("gan.jitter", 0.5, 0.0, 1.0, doc="random jitter of the noise motion (reduces repetition)"),
    _p("gan.smooth_s", 0.5, 0.0, 5.0, unit="s", doc="class-vector smoothing time constant"),
    _p("gan.speed", 1.0, 0.0, 4.0, doc="noise motion speed multiplier"),
    _p("gan.beat_kick", 0.5, 0.0, 1.0, doc="extra noise jump on each beat"),
    # effects
    _p("fx.flash.amount", 0.3, doc="white flash on onsets"),
    _p("fx.zoom.amount", 0.3, doc="zoom punch on beats"),
    _p("fx.hue.amount", 0.0, doc="hue rotation speed"),
    _p("fx.hue.shift", 0.0, doc="static hue offset (0..1 = full circle)"),
    _p("fx.feedback.amount", 0.0, 0.0, 0.98, doc="feedback trails (previous output fading into the new)"),
    _p("fx.kaleido.amount", 0.0, doc="kaleidoscope mix"),
    _p("fx.kaleido.segments", 6, 2, 16, "int", doc="kaleidoscope mirror segments"),
    _p("fx.rgbshift.amount", 0.0, doc="RGB channel shift, pumped by loudness"),
    _p("fx.contrast.amount", 0.5, doc="contrast (0.5 = unchanged)"),
    _p("fx.brightness.amount", 0.5, doc="brightness (0.5 = unchanged)"),
    _p("fx.levels.amount", 0.0, doc="auto-levels look of the original visualizer"),
    _p("fx.sharpen.amount", 0.35, doc="sharpening after the upscale"),
    # tempo
    _p("tempo.bpm", 120.0, 20.0, 300.0, unit="bpm", doc="beat-clock tempo (set, tapped, or followed)"),
    _p("tempo.follow", 1, 0, 1, "bool", doc="beat clock follows the analysis beat tracker (off: free-running)"),
)


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
        self._frame_hooks: list[Callable[[], None]] = []
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

        Frame hooks (:meth:`add_frame_hook`) run first, so what they queue is applied in the same frame;
        listeners added with :meth:`add_listener` are called with the same dict when it is not empty.
        """
        for hook in list(self._frame_hooks):
            try:
                hook()
            except Exception:  # a broken surface must not stop the frame loop
                self.listener_errors += 1
                if self.listener_errors == 1:
                    _log.exception("control: a frame hook failed (further failures are counted)")
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

    def add_frame_hook(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` at the start of every :meth:`apply_pending` (main thread, once per frame), before the queue
        is applied. Control surfaces use it to advance crossfades and tempo sync without the engine knowing them.
        Exceptions are counted in :attr:`listener_errors` (the first is logged)."""
        self._frame_hooks.append(fn)

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
