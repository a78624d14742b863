"""OSC address space of vj: one decoded message → registry / preset / tempo actions. Pure logic, no sockets.

:class:`OscRouter` maps ``/vj/...`` messages (address + arguments as python-osc decodes them) to calls on the
:class:`vj.control.params.ParamRegistry`, the :class:`vj.control.crossfade.PresetSwitcher`, the
:class:`vj.control.tempo.TempoClock` and the MIDI learn of :class:`vj.control.midi.MidiController`. It never raises on
input and never evaluates strings: :meth:`OscRouter.handle` returns None when a message was acted on, or the reason
it was ignored (the server counts those and logs them rate-limited). The table is docs/osc.md.

Argument conventions for parameter addresses ``/vj/<name with / for .>``:

* a number (int, float, or OSC true/false) is a fader position 0..1 scaled to the parameter's range;
  ``/vj/raw/<name>`` takes the value in the parameter's own units instead (``/vj/tempo/bpm`` is raw by default);
* on/off parameters: ``>= 0.5`` is on; no argument or the string ``"!"`` toggles;
* triggers act on the rising edge: ``1`` then ``0`` (a button press and release) fires once; no argument fires;
* a string starting with ``+`` or ``-`` is relative: ``"+0.1"`` moves a fader a tenth of its range up (on
  ``/vj/raw/...`` it adds 0.1 in the parameter's units);
* an OSC address pattern (``/vj/fx/*/amount``) reaches every parameter address it matches.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

from vj.clock import now_s
from vj.control.osc_pattern import AddressSpace, PatternError, compile_pattern, is_pattern
from vj.control.params import ParamRegistry
from vj.errors import VJError

PREFIX = "/vj/"
"""Every vj address starts with this."""
MAX_ADDRESS = 256
"""Longer addresses are ignored [characters]."""
MAX_STRING = 256
"""Longer string arguments are ignored [characters]."""
MAX_ARGS = 16
"""Messages with more arguments are ignored."""
RAW_BY_DEFAULT = frozenset({"tempo.bpm"})
"""Parameters whose plain address takes raw values (a BPM, not a fader position)."""



def _number(arg: Any) -> float | None:
    """A finite float from an OSC number, a bool, or a numeric string; None for anything else."""
    if isinstance(arg, bool):
        return 1.0 if arg else 0.0
    if isinstance(arg, (int, float)):
        v = float(arg)
    elif isinstance(arg, str) and len(arg) <= 32:
        try:
            v = float(arg.strip())
        except ValueError:
            return None
    else:
        return None
    return v if math.isfinite(v) else None


def _relative(arg: Any) -> float | None:
    """``"+0.1"`` → 0.1, ``"-2"`` → -2.0; None if ``arg`` is not a signed number string."""
    if not isinstance(arg, str):
        return None
    s = arg.strip()
    if len(s) < 2 or len(s) > 32 or s[0] not in "+-":
        return None
    v = _number(s[1:])
    return None if v is None else (v if s[0] == "+" else -v)


class OscRouter:
    """Route vj's OSC messages to the registry and the other controls.

    Args:
        registry: the parameter registry.
        presets: a :class:`vj.control.crossfade.PresetSwitcher`, or None (preset addresses then ignored).
        clock: a :class:`vj.control.tempo.TempoClock`, or None (tempo actions then ignored, except ``tempo/bpm``
            which sets the registry).
        midi: an object with ``learn(param, mode=None)``, ``cancel_learn()``, ``forget(param)`` (the
            :class:`vj.control.midi.MidiController`), or None.
        on_refresh: called for ``/vj/refresh`` (the OSC feedback resends every value).
        time_fn: time source [s] (:func:`vj.clock.now_s`).
    """

    def __init__(self, registry: ParamRegistry, presets=None, clock=None, midi=None,
                 on_refresh: Callable[[], None] | None = None, time_fn: Callable[[], float] = now_s):
        self.registry = registry
        self.presets = presets
        self.clock = clock
        self.midi = midi
        self.on_refresh = on_refresh
        self._time = time_fn
        self._last: dict[str, float] = {}  # last number per edge-triggered address
        self._targets: tuple[tuple, AddressSpace] | None = None
        self.handled = 0  #: messages acted on

    # -- entry point ----------------------------------------------------------------------------------------
    def handle(self, address: Any, args: tuple = (), now: float | None = None) -> str | None:
        """Act on one message.

        Args:
            address: the OSC address (anything: only ``str`` under ``/vj/`` is used).
            args: the decoded arguments.
            now: time [s] for tempo and quantised presets (the router's time source when None).

        Returns:
            None if the message was acted on; otherwise a short reason it was ignored (unknown address, wrong
            argument type or count, out-of-range input, nothing to act on).
        """
        try:
            reason = self._route(address, tuple(args), self._time() if now is None else float(now))
        except VJError as exc:  # e.g. an unknown class name: the message carries the closest matches
            reason = str(exc)
        except Exception as exc:  # input must never take the surface down
            reason = f"internal error {type(exc).__name__} on {str(address)[:64]!r}"
        if reason is None:
            self.handled += 1
        return reason

    def _route(self, address, args: tuple, now: float) -> str | None:
        if not isinstance(address, str) or not address.startswith(PREFIX) or len(address) > MAX_ADDRESS:
            return f"unknown address {str(address)[:64]!r}"
        if len(args) > MAX_ARGS:
            return f"{address}: too many arguments ({len(args)})"
        for a in args:
            if isinstance(a, (str, bytes)) and len(a) > MAX_STRING:
                return f"{address}: argument longer than {MAX_STRING} characters"
        if is_pattern(address):
            return self._pattern(address, args)
        action = ACTIONS.get(address[len(PREFIX):])
        if action is not None:
            if action.edge:
                fired = self._edge(address, args)
                if isinstance(fired, str):
                    return fired
                return action.handler(self, address, args, now) if fired else None
            return action.handler(self, address, args, now)
        path = address[len(PREFIX):]
        raw = False
        if path.startswith("raw/"):
            path, raw = path[4:], True
        name = path.replace("/", ".")
        if not name or name not in self.registry:
            return f"unknown address {address[:64]!r}"
        return self._param(address, name, args, raw or name in RAW_BY_DEFAULT)

    def _pattern(self, address: str, args: tuple) -> str | None:
        """An OSC address pattern (``/vj/fx/*/amount``): the message goes to every parameter address it matches
        (matched without backtracking, see :mod:`vj.control.osc_pattern`)."""
        try:
            targets = self._space().match(compile_pattern(address))
        except PatternError as exc:
            return f"bad address pattern {address[:64]!r} ({exc})"
        hits = sum(self._param(addr, name, args, raw) is None for addr, name, raw in targets)
        return None if hits else f"address pattern {address[:64]!r} matched no parameter"

    def _space(self) -> AddressSpace:
        """Every parameter address (plain and ``raw/``) as the targets of address patterns."""
        names = tuple(self.registry.names())
        if self._targets is None or self._targets[0] != names:
            items = []
            for name in names:
                plain = PREFIX + name.replace(".", "/")
                items.append((plain, (plain, name, name in RAW_BY_DEFAULT)))
                raw = PREFIX + "raw/" + plain[len(PREFIX):]
                items.append((raw, (raw, name, True)))
            self._targets = (names, AddressSpace(items))
        return self._targets[1]

    # -- parameters ----------------------------------------------------------------------------------------
    def _edge(self, address: str, args: tuple) -> bool | str:
        """True on a rising edge (or no argument, or "!"); False otherwise; a reason string for bad input."""
        if not args:
            return True
        if len(args) != 1:
            return f"{address}: expected at most 1 argument, got {len(args)}"
        if args[0] == "!":
            return True
        v = _number(args[0])
        if v is None:
            return f"{address}: expected a number, got {type(args[0]).__name__}"
        prev = self._last.get(address, 0.0)
        self._last[address] = v
        return v >= 0.5 > prev

    def _param(self, address: str, name: str, args: tuple, raw: bool) -> str | None:
        reg = self.registry
        p = reg.param(name)
        if name == "tempo.bpm" and self.clock is not None:
            return self._bpm(address, args)
        if p.kind == "trigger":
            fired = self._edge(address, args)
            if isinstance(fired, str):
                return fired
            if fired:
                reg.trigger(name)
            return None
        if not args:
            if p.kind == "bool":
                reg.toggle(name)
                return None
            return f"{address}: missing argument"
        if len(args) != 1:
            return f"{address}: expected 1 argument, got {len(args)}"
        arg = args[0]
        if arg == "!":
            reg.toggle(name)
            return None
        delta = _relative(arg)
        if delta is not None:
            reg.nudge(name, delta if raw else delta * (p.hi - p.lo))
            return None
        v = _number(arg)
        if v is None:
            return f"{address}: expected a number, '!' or '+/-delta', got {type(arg).__name__}"
        if p.kind == "bool":
            reg.set(name, 1.0 if v >= 0.5 else 0.0)
        elif raw:
            reg.set(name, v)
        else:
            reg.set_unit(name, v)
        return None

    def _bpm(self, address: str, args: tuple) -> str | None:
        if len(args) != 1:
            return f"{address}: expected 1 argument (bpm)"
        delta = _relative(args[0])
        if delta is not None:
            self.clock.set_bpm(self.clock.bpm + delta)
            return None
        v = _number(args[0])
        if v is None or v <= 0:
            return f"{address}: expected a tempo in bpm"
        self.clock.set_bpm(v)
        return None

    # -- special addresses -----------------------------------------------------------------------------------
    def _gan_classes(self, address: str, args: tuple, now: float) -> str | None:
        from vj.models.imagenet import resolve_classes

        items: list = []
        for a in args:
            if isinstance(a, bool) or not isinstance(a, (int, float, str)):
                return f"{address}: classes are indices or names, got {type(a).__name__}"
            if isinstance(a, float):
                if not a.is_integer():
                    return f"{address}: class index {a!r} is not a whole number"
                a = int(a)
            if isinstance(a, str):
                items.extend(s.strip() for s in a.split(",") if s.strip())
            else:
                items.append(a)
        if not 1 <= len(items) <= 12:
            return f"{address}: give 1 to 12 classes, got {len(items)}"
        if not self.registry.set_classes(resolve_classes(items)):
            return f"{address}: classes rejected"
        return None

    def _one_string(self, address: str, args: tuple) -> str | None:
        if len(args) != 1 or not isinstance(args[0], str) or not args[0].strip():
            return None
        return args[0].strip()

    def _preset_select(self, address: str, args: tuple, now: float) -> str | None:
        if self.presets is None:
            return f"{address}: presets are not available"
        if len(args) == 1 and isinstance(args[0], int) and not isinstance(args[0], bool):
            which: str | int = args[0]
        else:
            which = self._one_string(address, args)
            if which is None:
                return f"{address}: expected a preset name"
        return None if self.presets.select(which, now) else f"{address}: preset {which!r} not loaded"

    def _preset_save(self, address: str, args: tuple, now: float) -> str | None:
        if self.presets is None:
            return f"{address}: presets are not available"
        name = self._one_string(address, args)
        if name is None:
            return f"{address}: expected a preset name"
        return None if self.presets.save(name) else f"{address}: preset {name!r} not saved"

    def _preset_next(self, address: str, args: tuple, now: float) -> str | None:
        if self.presets is None:
            return "/vj/preset/next: presets are not available"
        self.presets.next(now)
        return None

    def _preset_prev(self, address: str, args: tuple, now: float) -> str | None:
        if self.presets is None:
            return "/vj/preset/prev: presets are not available"
        self.presets.prev(now)
        return None

    def _clock_action(self, what: str, action: Callable[[Any], None]) -> str | None:
        if self.clock is None:
            return f"/vj/tempo/{what}: no beat clock"
        action(self.clock)
        return None

    def _tempo_tap(self, address: str, args: tuple, now: float) -> str | None:
        return self._clock_action("tap", lambda clock: clock.tap(now))

    def _tempo_resync(self, address: str, args: tuple, now: float) -> str | None:
        return self._clock_action("resync", lambda clock: clock.resync(now))

    def _tempo_double(self, address: str, args: tuple, now: float) -> str | None:
        return self._clock_action("double", lambda clock: clock.double(now))

    def _tempo_half(self, address: str, args: tuple, now: float) -> str | None:
        return self._clock_action("half", lambda clock: clock.half(now))

    def _midi_learn(self, address: str, args: tuple, now: float) -> str | None:
        if self.midi is None:
            return f"{address}: MIDI is not enabled"
        if not 1 <= len(args) <= 2 or not all(isinstance(a, str) for a in args):
            return f"{address}: expected a parameter name and an optional mode"
        self.midi.learn(args[0].strip(), args[1].strip() if len(args) == 2 else None)
        return None

    def _midi_forget(self, address: str, args: tuple, now: float) -> str | None:
        if self.midi is None:
            return f"{address}: MIDI is not enabled"
        name = self._one_string(address, args)
        if name is None:
            return f"{address}: expected a parameter name"
        self.midi.forget(name)
        return None

    def _midi_cancel(self, address: str, args: tuple, now: float) -> str | None:
        if self.midi is None:
            return "/vj/midi/cancel: MIDI is not enabled"
        self.midi.cancel_learn()
        return None

    def _refresh(self, address: str, args: tuple, now: float) -> str | None:
        if self.on_refresh is not None:
            self.on_refresh()
        return None


class Action(NamedTuple):
    """One action address: its handler ``fn(router, address, args, now) -> reason | None`` and whether it fires on a
    rising edge (a button: ``1`` then ``0`` fires once; no argument fires) rather than taking arguments."""

    handler: Callable[[OscRouter, str, tuple, float], str | None]
    edge: bool = False


ACTIONS: dict[str, Action] = {
    "gan/classes": Action(OscRouter._gan_classes),
    "preset/select": Action(OscRouter._preset_select),
    "preset/save": Action(OscRouter._preset_save),
    "preset/next": Action(OscRouter._preset_next, edge=True),
    "preset/prev": Action(OscRouter._preset_prev, edge=True),
    "tempo/tap": Action(OscRouter._tempo_tap, edge=True),
    "tempo/resync": Action(OscRouter._tempo_resync, edge=True),
    "tempo/double": Action(OscRouter._tempo_double, edge=True),
    "tempo/half": Action(OscRouter._tempo_half, edge=True),
    "midi/learn": Action(OscRouter._midi_learn),
    "midi/forget": Action(OscRouter._midi_forget),
    "midi/cancel": Action(OscRouter._midi_cancel, edge=True),
    "refresh": Action(OscRouter._refresh, edge=True),
}
"""The action addresses (after ``/vj/``) → handler: the one table a new OSC action is added to (docs/osc.md lists
them). Every other ``/vj/...`` address is a parameter of the registry."""

EDGE_ACTIONS = tuple(path for path, action in ACTIONS.items() if action.edge)
"""Action addresses (after ``/vj/``) that fire on a rising edge or with no argument."""
