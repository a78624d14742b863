"""Switching presets live: a timed crossfade, optionally quantised to the next beat or bar.

:class:`Crossfade` moves the registry from the current values to a preset's over ``transition.time_s`` seconds
(smoothstep easing): floats are interpolated, integers rounded, on/off parameters switch half-way. The class palette
is faded too: each frame it pushes :meth:`vj.control.params.ParamRegistry.blend_classes` (source, target, mix), so
the mapping can mix the class vectors of the old and the new palette (see :class:`vj.control.params.Palette`).
A parameter the performer moves during the fade is released from it at once (their hand wins).

:class:`PresetSwitcher` is what the surfaces call (OSC, MIDI, keyboard: any thread) to select, step and save;
:meth:`PresetSwitcher.poll` (main thread, once per frame) starts due changes and advances the crossfade. A preset
that fails to load is reported in one log line and the show keeps its current look.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from vj.clock import now_s
from vj.control.params import ParamRegistry
from vj.control.presets import Preset, PresetBank, save_preset, user_preset_dir
from vj.errors import VJError

_log = logging.getLogger("vj.control")


def smoothstep(x: float) -> float:
    """Ease in and out: 0 → 0, 1 → 1, zero slope at both ends."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


class Crossfade:
    """One running transition from the registry's current state to a preset.

    Args:
        registry: the registry to drive.
        preset: the look to fade to.
        duration_s: fade time [s]; 0 = a cut on the first :meth:`advance`.
        start_s: time the fade starts [s] (same clock as ``now`` in :meth:`advance`).

    Call :meth:`advance` once per frame (before :meth:`ParamRegistry.apply_pending`) until it returns True.
    """

    def __init__(self, registry: ParamRegistry, preset: Preset, duration_s: float, start_s: float):
        self.registry = registry
        self.preset = preset
        self.duration_s = max(float(duration_s), 0.0)
        self.start_s = float(start_s)
        self._from = {n: registry.get(n) for n in preset.params if n in registry}
        self._to = {n: v for n, v in preset.params.items() if n in registry}
        self._pushed: dict[str, float] = {}
        self._push_frame = -1
        self.released: set[str] = set()  #: parameters the performer took over during the fade
        pal = registry.palette
        self._source = pal.target if pal.mix >= 0.5 else pal.source  # the dominant side of a fade in progress
        self._target = tuple(preset.classes)
        self._palette_released = not self._target
        self.done = False

    def _check_takeover(self) -> None:
        """Release parameters whose applied value is not what this fade pushed (someone else wrote them)."""
        if self._push_frame < 0 or self.registry.frame <= self._push_frame:
            return  # our last push has not been applied yet
        for name, pushed in self._pushed.items():
            if name not in self.released and abs(self.registry.get(name) - pushed) > 1e-9:
                self.released.add(name)
        if not self._palette_released and self.registry.palette.target != self._target:
            self._palette_released = True  # a new palette was sent by hand

    def advance(self, now: float) -> bool:
        """Push the values for time ``now`` into the registry's queue.

        Args:
            now: current time [s].

        Returns:
            True once the fade has reached the preset (the last values are pushed exactly).
        """
        if self.done:
            return True
        self._check_takeover()
        x = 1.0 if self.duration_s <= 0 else (now - self.start_s) / self.duration_s
        e = smoothstep(x)
        reg = self.registry
        for name, b in self._to.items():
            if name in self.released:
                continue
            p = reg.param(name)
            a = self._from[name]
            v = (b if e >= 0.5 else a) if p.kind == "bool" else a + (b - a) * e
            if x >= 1.0:
                v = b
            reg.set(name, v)
            self._pushed[name] = p.clamp(v)
        if not self._palette_released:
            if x >= 1.0 or not self._source:
                reg.set_classes(self._target)
            else:
                reg.blend_classes(self._source, self._target, e)
        self._push_frame = reg.frame
        self.done = x >= 1.0
        return self.done


class PresetSwitcher:
    """Select, step through and save presets from any thread; fade between them on the main thread.

    Args:
        registry: the parameter registry.
        bank: the presets (default :class:`PresetBank` of the shipped and user folders).
        clock: a :class:`vj.control.tempo.TempoClock` for quantised changes (``transition.quantize`` 1 = next beat,
            2 = next bar); None = changes start at once.
        save_dir: where :meth:`save` writes (default :func:`vj.control.presets.user_preset_dir`).
        time_fn: time source [s] when ``now`` is not passed (:func:`vj.clock.now_s`).
    """

    def __init__(self, registry: ParamRegistry, bank: PresetBank | None = None, clock=None,
                 save_dir=None, time_fn: Callable[[], float] = now_s):
        self.registry = registry
        self.bank = bank if bank is not None else PresetBank()
        self.clock = clock
        self.save_dir = save_dir
        self._time = time_fn
        self._lock = threading.Lock()  # guards _pending (the main thread takes it every frame: keep it short)
        self._bank_lock = threading.Lock()  # serialises the bank's cursor and file reads across threads
        self._pending: tuple[Preset, float] | None = None
        self.crossfade: Crossfade | None = None  #: the running fade (main thread), or None
        self.current: str | None = None  #: name of the preset being shown (or fading in)
        self.current_preset: Preset | None = None  #: the preset being shown (its reactions apply)
        self.reactions = 0  #: section-event reactions run
        self.errors = 0  #: presets that failed to load

    def _due(self, now: float) -> float:
        q = int(self.registry.get("transition.quantize")) if "transition.quantize" in self.registry else 0
        if self.clock is None or q <= 0:
            return now
        return self.clock.next_beat_time(now) if q == 1 else self.clock.next_bar_time(now)

    def _request(self, load: Callable[[], Preset], now: float | None, quantize: bool = True) -> bool:
        now = self._time() if now is None else now
        with self._bank_lock:  # file reading happens here, on the caller's thread, never under self._lock
            try:
                preset = load()
            except VJError as exc:
                self.errors += 1
                _log.warning("preset: %s (keeping the current look)", exc)
                return False
        due = self._due(now) if quantize else now
        with self._lock:
            self._pending = (preset, due)
        return True

    def select(self, name_or_index: str | int, now: float | None = None) -> bool:
        """Queue a change to preset ``name_or_index`` (a name, or a position in the bank's list).

        Returns:
            False if it does not exist or is invalid (logged; the current look stays).
        """
        return self._request(lambda: self.bank.select(name_or_index), now)

    def next(self, now: float | None = None) -> bool:
        """Queue a change to the next preset in the bank (wrapping). Returns False if it failed to load."""
        return self._request(self.bank.next, now)

    def prev(self, now: float | None = None) -> bool:
        """Queue a change to the previous preset in the bank (wrapping). Returns False if it failed to load."""
        return self._request(self.bank.prev, now)

    def save(self, name: str, description: str = "") -> str | None:
        """Save the current look (applied parameters and palette) as a new user preset; never overwrites.

        Args:
            name: requested name; if taken (user or shipped), ``name-2``, ``name-3``... is used.
            description: one line.

        Returns:
            the name saved under, or None if it failed (logged).
        """
        try:
            with self._bank_lock:
                taken = self.bank.names()
            path = save_preset(name, self.registry.classes, self.registry.snapshot(),
                               self.save_dir or user_preset_dir(), description, taken=taken)
        except VJError as exc:
            _log.warning("preset: %s", exc)
            return None
        _log.info("preset: saved %s", path)
        return path.stem

    def poll(self, now: float | None = None) -> None:
        """Start a due change and advance the running crossfade (main thread, once per frame, before
        :meth:`ParamRegistry.apply_pending`)."""
        now = self._time() if now is None else now
        with self._lock:
            start = None
            if self._pending is not None and now >= self._pending[1]:
                start, self._pending = self._pending[0], None
        if start is not None:
            duration = self.registry.get("transition.time_s") if "transition.time_s" in self.registry else 0.0
            self.crossfade = Crossfade(self.registry, start, duration, now)
            self.current = start.name
            self.current_preset = start
            _log.info("preset: %s (%.1f s)", start.name, duration)
        if self.crossfade is not None and self.crossfade.advance(now):
            self.crossfade = None

    def react(self, event: str, now: float | None = None) -> bool:
        """Run the current preset's reaction to a section event (``on_drop`` etc.; see :mod:`vj.control.presets`).

        A preset change starts at once (not quantised: the event is reported on the bar's "one"); a parameter
        table is set like any other control (blackout and master stay above it). Any thread.

        Args:
            event: ``"build"``, ``"drop"`` or ``"breakdown"``.
            now: time [s].

        Returns:
            True if the preset had a reaction to ``event`` and it was started.
        """
        preset = self.current_preset
        action = preset.reactions.get(event) if preset is not None else None
        if action is None:
            return False
        self.reactions += 1
        _log.info("preset: %s reacts to %s", preset.name, event)
        if action == "next_preset":
            return self._request(self.bank.next, now, quantize=False)
        if action == "prev_preset":
            return self._request(self.bank.prev, now, quantize=False)
        if isinstance(action, str):
            return self._request(lambda: self.bank.select(action), now, quantize=False)
        for name, value in action.items():
            if name not in self.registry:
                continue
            if self.registry.param(name).kind == "trigger":
                self.registry.trigger(name)
            else:
                self.registry.set(name, value)
        return True

    @property
    def pending(self) -> bool:
        """True while a quantised change waits for its beat or bar."""
        with self._lock:
            return self._pending is not None


__all__ = ["Crossfade", "PresetSwitcher", "smoothstep"]
