"""Keyboard bindings of the live window: key name → registry / preset / tempo / MIDI-learn action.

The window (:mod:`vj.display.window`, which keeps Esc, F, H and Tab for itself) calls :func:`handle_key` for every
key press. Key names are pyglet's symbol strings (``"B"``, ``"SPACE"``, ``"BRACKETRIGHT"``, ``"_1"``); pyglet's
integer symbols are converted. :data:`BINDINGS` is the table docs/osc.md shows.
"""

from __future__ import annotations

import time

from vj.clock import now_s
from vj.control.params import ParamRegistry

#: (keys, modifiers, description) — the documented bindings, in the order shown in the overlay's help.
BINDINGS: tuple[tuple[str, str, str], ...] = (
    ("B", "", "blackout on/off"),
    ("Z", "", "freeze on/off"),
    ("S", "", "strobe on/off"),
    ("UP / DOWN", "", "master +/- 5 %"),
    ("RIGHT / LEFT", "", "truncation +/- 0.05"),
    ("] / [", "", "next / previous preset"),
    ("1 .. 9", "", "preset 1..9 of the bank (name order)"),
    ("Ctrl+S", "ctrl", "save the current look as a new preset (live-YYYYMMDD-HHMMSS)"),
    ("T or SPACE", "", "tap tempo"),
    ("R", "", "resync: this instant is the downbeat"),
    ("PERIOD / COMMA", "", "tempo x2 / /2"),
    ("L", "", "MIDI learn: arm the next parameter (each press moves on); then move a control"),
    ("Ctrl+L", "ctrl", "cancel MIDI learn"),
)

#: Parameters that L cycles through for MIDI learn (the ones worth a physical control).
LEARN_CYCLE: tuple[str, ...] = (
    "master", "blackout", "freeze", "strobe", "gan.truncation", "gan.pitch_sensitivity", "gan.tempo_sensitivity",
    "gan.depth", "gan.jitter", "gan.speed", "gan.beat_kick", "fx.flash.amount", "fx.zoom.amount",
    "fx.hue.amount", "fx.feedback.amount", "fx.kaleido.amount", "fx.rgbshift.amount", "transition.time_s",
)

_MOD_CTRL = 2  # pyglet.window.key.MOD_CTRL
_MOD_SHIFT = 1  # pyglet.window.key.MOD_SHIFT


def _name(symbol) -> str:
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
    """Act on one key press.

    Args:
        symbol: pyglet key symbol (int) or its name (``"B"``, ``"_1"``, ``"BRACKETRIGHT"``...).
        registry: the parameter registry.
        surfaces: the :class:`vj.control.surfaces.Surfaces` (presets, beat clock, MIDI) or None (parameter keys
            only).
        modifiers: pyglet modifier bits (Ctrl = 2).
        now: time [s] for tempo and quantised presets (:func:`vj.clock.now_s` when None).

    Returns:
        True if the key is one of :data:`BINDINGS` (the window should not act on it too).
    """
    name = _name(symbol)
    ctrl = bool(modifiers & _MOD_CTRL)
    now = now_s() if now is None else now
    presets = getattr(surfaces, "presets", None)
    clock = getattr(surfaces, "clock", None)
    midi = getattr(surfaces, "midi", None)
    if ctrl:
        if name == "S" and presets is not None:
            presets.save(time.strftime("live-%Y%m%d-%H%M%S"))
            return True
        if name == "L" and midi is not None:
            midi.cancel_learn()
            return True
        return False
    simple = {"B": ("toggle", "blackout"), "Z": ("toggle", "freeze"), "S": ("toggle", "strobe"),
              "UP": ("nudge", "master", 0.05), "DOWN": ("nudge", "master", -0.05),
              "RIGHT": ("nudge", "gan.truncation", 0.05), "LEFT": ("nudge", "gan.truncation", -0.05)}
    if name in simple:
        op, *rest = simple[name]
        getattr(registry, op)(*rest)
        return True
    if presets is not None:
        if name == "BRACKETRIGHT":
            presets.next(now)
            return True
        if name == "BRACKETLEFT":
            presets.prev(now)
            return True
        if len(name) == 1 and name in "123456789":
            presets.select(int(name) - 1, now)
            return True
    if clock is not None:
        action = {"T": "tap", "SPACE": "tap", "R": "resync", "PERIOD": "double", "COMMA": "half"}.get(name)
        if action is not None:
            getattr(clock, action)(now)
            return True
    if name == "L" and midi is not None:
        current = midi.learning
        i = (LEARN_CYCLE.index(current) + 1) % len(LEARN_CYCLE) if current in LEARN_CYCLE else 0
        midi.learn(LEARN_CYCLE[i])
        return True
    return False
