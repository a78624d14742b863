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

import functools
import math
import re
from typing import Any, Callable

from vj.clock import now_s
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
EDGE_ACTIONS = ("preset/next", "preset/prev", "tempo/tap", "tempo/resync", "tempo/double", "tempo/half",
                "midi/cancel", "refresh")
"""Action addresses (after ``/vj/``) that fire on a rising edge or with no argument."""


@functools.lru_cache(maxsize=64)
def _compile_pattern(pattern: str) -> re.Pattern | None:
    """OSC 1.0 address pattern → regex: ``*`` any run within a part, ``?`` one character, ``[a-z]``/``[!a]``
    character classes, ``{a,b}`` alternatives; everything else literal. None for an unbalanced pattern."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                return None
            body = pattern[i + 1 : j]
            neg = body.startswith("!")
            body = body[1:] if neg else body
            if not body or "/" in body:
                return None
            parts = body.split("-")
            if len(parts) == 2 and len(parts[0]) == 1 and len(parts[1]) == 1:
                cls = re.escape(parts[0]) + "-" + re.escape(parts[1])
            else:
                cls = "".join(re.escape(ch) for ch in body)
            out.append(("[^/" if neg else "[") + cls + "]")
            i = j
        elif c == "{":
            j = pattern.find("}", i + 1)
            if j < 0 or "/" in pattern[i:j]:
                return None
            out.append("(?:" + "|".join(re.escape(a) for a in pattern[i + 1 : j].split(",")) + ")")
            i = j
        elif c in "]}":
            return None
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.compile("".join(out))
    except re.error:
        return None


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
        if any(c in address for c in "*?[]{}"):
            return self._pattern(address, args)
        path = address[len(PREFIX):]
        special = getattr(self, "_do_" + path.replace("/", "_"), None) if path in _SPECIAL else None
        if special is not None:
            if path in EDGE_ACTIONS:
                fired = self._edge(address, args)
                if isinstance(fired, str):
                    return fired
                return special(now) if fired else None
            return special(address, args, now)
        raw = False
        if path.startswith("raw/"):
            path, raw = path[4:], True
        name = path.replace("/", ".")
        if not name or name not in self.registry:
            return f"unknown address {address[:64]!r}"
        return self._param(address, name, args, raw or name in RAW_BY_DEFAULT)

    def _pattern(self, address: str, args: tuple) -> str | None:
        """An OSC address pattern (``/vj/fx/*/amount``): the message goes to every parameter address it matches."""
        regex = _compile_pattern(address)
        if regex is None:
            return f"bad address pattern {address[:64]!r}"
        hits = 0
        for name in self.registry.names():
            plain = PREFIX + name.replace(".", "/")
            for addr, raw in ((plain, name in RAW_BY_DEFAULT), (PREFIX + "raw/" + plain[len(PREFIX):], True)):
                if regex.fullmatch(addr):
                    if self._param(addr, name, args, raw) is None:
                        hits += 1
        return None if hits else f"address pattern {address[:64]!r} matched no parameter"

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
    def _do_gan_classes(self, address: str, args: tuple, now: float) -> str | None:
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

    def _do_preset_select(self, address: str, args: tuple, now: float) -> str | None:
        if self.presets is None:
            return f"{address}: presets are not available"
        if len(args) == 1 and isinstance(args[0], int) and not isinstance(args[0], bool):
            which: str | int = args[0]
        else:
            which = self._one_string(address, args)
            if which is None:
                return f"{address}: expected a preset name"
        return None if self.presets.select(which, now) else f"{address}: preset {which!r} not loaded"

    def _do_preset_save(self, address: str, args: tuple, now: float) -> str | None:
        if self.presets is None:
            return f"{address}: presets are not available"
        name = self._one_string(address, args)
        if name is None:
            return f"{address}: expected a preset name"
        return None if self.presets.save(name) else f"{address}: preset {name!r} not saved"

    def _do_preset_next(self, now: float) -> str | None:
        if self.presets is None:
            return "/vj/preset/next: presets are not available"
        self.presets.next(now)
        return None

    def _do_preset_prev(self, now: float) -> str | None:
        if self.presets is None:
            return "/vj/preset/prev: presets are not available"
        self.presets.prev(now)
        return None

    def _clock_action(self, what: str, now: float) -> str | None:
        if self.clock is None:
            return f"/vj/tempo/{what}: no beat clock"
        getattr(self.clock, what)(now)
        return None

    def _do_tempo_tap(self, now: float) -> str | None:
        return self._clock_action("tap", now)

    def _do_tempo_resync(self, now: float) -> str | None:
        return self._clock_action("resync", now)

    def _do_tempo_double(self, now: float) -> str | None:
        return self._clock_action("double", now)

    def _do_tempo_half(self, now: float) -> str | None:
        return self._clock_action("half", now)

    def _do_midi_learn(self, address: str, args: tuple, now: float) -> str | None:
        if self.midi is None:
            return f"{address}: MIDI is not enabled"
        if not 1 <= len(args) <= 2 or not all(isinstance(a, str) for a in args):
            return f"{address}: expected a parameter name and an optional mode"
        self.midi.learn(args[0].strip(), args[1].strip() if len(args) == 2 else None)
        return None

    def _do_midi_forget(self, address: str, args: tuple, now: float) -> str | None:
        if self.midi is None:
            return f"{address}: MIDI is not enabled"
        name = self._one_string(address, args)
        if name is None:
            return f"{address}: expected a parameter name"
        self.midi.forget(name)
        return None

    def _do_midi_cancel(self, now: float) -> str | None:
        if self.midi is None:
            return "/vj/midi/cancel: MIDI is not enabled"
        self.midi.cancel_learn()
        return None

    def _do_refresh(self, now: float) -> str | None:
        if self.on_refresh is not None:
            self.on_refresh()
        return None


_SPECIAL = frozenset({"gan/classes", "preset/select", "preset/save", "midi/learn", "midi/forget"} | set(EDGE_ACTIONS))
