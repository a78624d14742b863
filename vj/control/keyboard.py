"""Keyboard bindings of the live window: one explicit table, key → action on the registry, presets, tempo, MIDI.

The window (:mod:`vj.display.window`) keeps Esc, F, H and Tab for itself; :func:`attach` pushes :func:`handle_key`
on top of it, so every other key press is looked up in :data:`KEYS` first. Key names are pyglet's symbol strings
(``"B"``, ``"SPACE"``, ``"BRACKETRIGHT"``, ``"_1"`` → ``"1"``); pyglet's integer symbols are converted.
:data:`BINDINGS` (the rows of the help table in the overlay and docs/osc.md) is derived from :data:`KEYS`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from vj.clock import now_s
from vj.control.params import ParamRegistry

#: Parameters that L cycles through for MIDI learn (the ones worth a physical control).
LEARN_CYCLE: tuple[str, ...] = (
    "master", "blackout", "freeze", "strobe", "gan.truncation", "gan.pitch_sensitivity", "gan.tempo_sensitivity",
    "gan.depth", "gan.jitter", "gan.speed", "gan.beat_kick", "fx.flash.amount", "fx.zoom.amount",
    "fx.hue.amount", "fx.feedback.amount", "fx.kaleido.amount", "fx.rgbshift.amount", "transition.time_s",
)

_MOD_CTRL = 2  # pyglet.window.key.MOD_CTRL


@dataclass(frozen=True)
class KeyContext:
    """What a key action may act on: the registry, and the control surfaces when they run (else None)."""

    registry: ParamRegistry
    presets: object = None  #: :class:`vj.control.crossfade.PresetSwitcher`
    clock: object = None  #: :class:`vj.control.tempo.TempoClock`
    midi: object = None  #: :class:`vj.control.midi.MidiController`


@dataclass(frozen=True)
class Key:
    """One binding.

    Attributes:
        name: pyglet symbol name (``"B"``, ``"BRACKETRIGHT"``, ``"1"``).
        ctrl: the binding needs Ctrl held (and a key without ``ctrl`` does not fire with Ctrl held).
        needs: the :class:`KeyContext` field that must not be None (``"registry"``, ``"presets"``, ``"clock"``,
            ``"midi"``); the key is not handled when it is missing.
        action: ``action(ctx, now_s)`` does the work.
        label, doc: the help-table row this key belongs to (keys sharing a label share a row).
    """

    name: str
    action: Callable[[KeyContext, float], object]
    label: str
    doc: str
    needs: str = "registry"
    ctrl: bool = False


def _learn_next(ctx: KeyContext, now: float) -> None:
    current = ctx.midi.learning
    i = (LEARN_CYCLE.index(current) + 1) % len(LEARN_CYCLE) if current in LEARN_CYCLE else 0
    ctx.midi.learn(LEARN_CYCLE[i])


def _preset_key(n: int) -> Key:
    return Key(str(n), lambda c, now: c.presets.select(n - 1, now), "1 .. 9", "preset 1..9 of the bank (name order)",
               "presets")


#: Every key binding, in the order of the help table.
KEYS: tuple[Key, ...] = (
    Key("B", lambda c, now: c.registry.toggle("blackout"), "B", "blackout on/off"),
    Key("Z", lambda c, now: c.registry.toggle("freeze"), "Z", "freeze on/off"),
    Key("S", lambda c, now: c.registry.toggle("strobe"), "S", "strobe on/off"),
    Key("UP", lambda c, now: c.registry.nudge("master", 0.05), "UP / DOWN", "master +/- 5 %"),
    Key("DOWN", lambda c, now: c.registry.nudge("master", -0.05), "UP / DOWN", "master +/- 5 %"),
    Key("RIGHT", lambda c, now: c.registry.nudge("gan.truncation", 0.05), "RIGHT / LEFT", "truncation +/- 0.05"),
    Key("LEFT", lambda c, now: c.registry.nudge("gan.truncation", -0.05), "RIGHT / LEFT", "truncation +/- 0.05"),
    Key("BRACKETRIGHT", lambda c, now: c.presets.next(now), "] / [", "next / previous preset", "presets"),
    Key("BRACKETLEFT", lambda c, now: c.presets.prev(now), "] / [", "next / previous preset", "presets"),
    *(_preset_key(n) for n in range(1, 10)),
    Key("S", lambda c, now: c.presets.save(time.strftime("live-%Y%m%d-%H%M%S")), "Ctrl+S",
        "save the current look as a new preset (live-YYYYMMDD-HHMMSS)", "presets", ctrl=True),
    Key("T", lambda c, now: c.clock.tap(now), "T or SPACE", "tap tempo", "clock"),
    Key("SPACE", lambda c, now: c.clock.tap(now), "T or SPACE", "tap tempo", "clock"),
    Key("R", lambda c, now: c.clock.resync(now), "R", "resync: this instant is the downbeat", "clock"),
    Key("PERIOD", lambda c, now: c.clock.double(now), "PERIOD / COMMA", "tempo x2 / /2", "clock"),
    Key("COMMA", lambda c, now: c.clock.half(now), "PERIOD / COMMA", "tempo x2 / /2", "clock"),
    Key("L", _learn_next, "L", "MIDI learn: arm the next parameter (each press moves on); then move a control",
        "midi"),
    Key("L", lambda c, now: c.midi.cancel_learn(), "Ctrl+L", "cancel MIDI learn", "midi", ctrl=True),
)

_BY_KEY: dict[tuple[str, bool], Key] = {(k.name, k.ctrl): k for k in KEYS}
assert len(_BY_KEY) == len(KEYS), "a key is bound twice"


def _rows() -> tuple[tuple[str, str, str], ...]:
    rows: dict[str, tuple[str, str, str]] = {}
    for k in KEYS:
        rows.setdefault(k.label, (k.label, "ctrl" if k.ctrl else "", k.doc))
    return tuple(rows.values())


#: (keys, modifiers, description) — the help table's rows, in order (overlay, docs/osc.md).
BINDINGS: tuple[tuple[str, str, str], ...] = _rows()


def key_name(symbol) -> str:
    """pyglet's integer symbol or symbol string → the name used in :data:`KEYS` (``""`` if unknown)."""
    if isinstance(symbol, int):
        try:
            from pyglet.window import key

            symbol = key.symbol_string(symbol)
        except Exception:  # no pyglet (tests, headless tools)
            return ""
    name = str(symbol).upper()
    if len(name) == 2 and name[0] == "_" and name[1].isdigit():
        name = name[1]
    return {"NUM_MULTIPLY": "PERIOD", "NUM_DIVIDE": "COMMA", " ": "SPACE"}.get(name, name)


def handle_key(symbol, registry: ParamRegistry, surfaces=None, modifiers: int = 0,
               now: float | None = None) -> bool:
    """Act on one key press, as :data:`KEYS` says.

    Args:
        symbol: pyglet key symbol (int) or its name (``"B"``, ``"_1"``, ``"BRACKETRIGHT"``...).
        registry: the parameter registry.
        surfaces: the :class:`vj.control.surfaces.Surfaces` (presets, tempo clock, MIDI) or None (parameter keys
            only).
        modifiers: pyglet modifier bits (Ctrl = 2).
        now: time [s] for tempo and quantised presets (:func:`vj.clock.now_s` when None).

    Returns:
        True if the key is bound and what it needs is there (the window should not act on it too).
    """
    binding = _BY_KEY.get((key_name(symbol), bool(modifiers & _MOD_CTRL)))
    if binding is None:
        return False
    ctx = KeyContext(registry, getattr(surfaces, "presets", None), getattr(surfaces, "clock", None),
                     getattr(surfaces, "midi", None))
    if getattr(ctx, binding.needs) is None:
        return False
    binding.action(ctx, now_s() if now is None else now)
    return True


def attach(window, registry: ParamRegistry, surfaces=None) -> None:
    """Push :func:`handle_key` onto a pyglet window's handler stack, above the window's own keys.

    Args:
        window: a ``pyglet.window.Window`` (anything with ``push_handlers``).
        registry, surfaces: as for :func:`handle_key`.

    A key :data:`KEYS` handles stops there; any other key goes on to the window's handlers (Esc, F, H, Tab).
    """
    window.push_handlers(
        on_key_press=lambda symbol, modifiers: True if handle_key(symbol, registry, surfaces, modifiers) else None)
