"""MIDI control: bindings from controls (CC, 14-bit CC, notes) to parameters and actions, MIDI learn, soft
takeover, relative encoders, MIDI clock in. Message handling is pure: :meth:`MidiController.handle` takes mido
``Message`` objects, so it is tested without a port; :mod:`vj.control.midi_port` opens the real input.

Binding kinds and modes:

* ``cc`` (7-bit, 0..127) and ``cc14`` (14-bit: MSB on CC 0..31, LSB on CC+32; receiving the MSB resets the LSB to 0,
  as the MIDI 1.0 spec says) with mode ``absolute`` (a fader or knob; soft takeover unless ``soft = false``),
  ``relative-2c`` (encoder, two's complement: 1..63 up, 127..65 down) or ``relative-64`` (encoder, offset 64:
  65.. up, ..63 down). An absolute CC on an on/off parameter is on at >= 64; on a trigger or action it fires when
  it crosses 64 upwards.
* ``note`` with mode ``trigger`` (fire on note-on), ``toggle`` (flip on note-on) or ``momentary`` (on while held).

Targets are parameter names (``master``, ``fx.zoom.amount``) or actions (:data:`ACTIONS`).

Soft takeover: an absolute control bound to a parameter moves it only after the control has reached or crossed the
parameter's current value (so a fader left at the bottom does not yank a value a preset or the tablet has set).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vj.clock import now_s
from vj.control.budget import InputBudget
from vj.control.params import ParamRegistry
from vj.control.ratelog import RateLimitedLog
from vj.errors import VJError

_log = logging.getLogger("vj.control")

ACTIONS = ("preset.next", "preset.prev", "tempo.tap", "tempo.resync", "tempo.double", "tempo.half")
"""Targets that are actions rather than parameters."""
CC_MODES = ("absolute", "relative-2c", "relative-64")
"""Modes of ``cc`` and ``cc14`` bindings."""
NOTE_MODES = ("trigger", "toggle", "momentary")
"""Modes of ``note`` bindings."""
KINDS = ("cc", "cc14", "note")
"""Binding kinds."""
LSB_WINDOW_S = 0.5
"""During learn, an LSB (CC n+32) arriving this soon after CC n makes the binding 14-bit [s]."""
PICKUP_7BIT = 1.5 / 127
"""Soft takeover: a 7-bit control this close to the value (0..1 scale) picks it up."""
PICKUP_14BIT = 0.004
"""Soft takeover: a 14-bit control this close to the value (0..1 scale) picks it up."""
MESSAGES_PER_S = 2000.0
"""Sustained MIDI messages per second handled (a 5-pin DIN cable carries at most ~1500; a controller's fader
sweep a few hundred; MIDI clock at 300 bpm 120)."""
MESSAGE_BURST = 500.0
"""Messages that may arrive at once above the sustained rate."""
CPU_PER_S = 0.1
"""CPU time MIDI handling may take per second [s/s]."""
LOG_INTERVAL_S = 5.0
"""At most one "ignored" log line per this many seconds [s]."""


@dataclass
class Binding:
    """One control bound to one target.

    Attributes:
        target: a parameter name or an action from :data:`ACTIONS`.
        kind: ``"cc"``, ``"cc14"`` or ``"note"``.
        channel: MIDI channel 0..15 (the map file says 1..16).
        number: CC number (for ``cc14`` the MSB's, 0..31) or note number, 0..127.
        mode: see :data:`CC_MODES` and :data:`NOTE_MODES`.
        soft: soft takeover for absolute controls.
    """

    target: str
    kind: str
    channel: int
    number: int
    mode: str
    soft: bool = True

    def key(self) -> tuple[str, int, int]:
        return ("note" if self.kind == "note" else "cc", self.channel, self.number)

    def label(self) -> str:
        what = {"cc": "CC", "cc14": "CC14", "note": "note"}[self.kind]
        return f"{what} {self.number} ch {self.channel + 1} ({self.mode})"


class _State:
    """Per-binding runtime state: 14-bit halves, soft takeover, last value for edges."""

    __slots__ = ("msb", "lsb", "picked", "last_unit", "sent", "sent_frame", "last_raw")

    def __init__(self):
        self.msb = 0
        self.lsb = 0
        self.picked = False
        self.last_unit: float | None = None
        self.sent: float | None = None  # value this binding last wrote
        self.sent_frame = -1
        self.last_raw = 0


class MidiController:
    """Turn MIDI messages into registry writes and actions; learn and persist bindings.

    Args:
        registry: the parameter registry.
        clock: a :class:`vj.control.tempo.TempoClock` for MIDI clock and tempo actions, or None.
        presets: a :class:`vj.control.crossfade.PresetSwitcher` for preset actions, or None.
        map_path: TOML file the bindings are loaded from (if it exists) and saved to after each learn/forget.
        time_fn: time source [s] (:func:`vj.clock.now_s`).

    Raises:
        VJError: ``map_path`` exists but is not a valid map.

    :meth:`handle` may be called from the MIDI thread, :meth:`learn` and friends from any thread.
    """

    def __init__(self, registry: ParamRegistry, clock=None, presets=None, map_path: str | Path | None = None,
                 time_fn: Callable[[], float] = now_s):
        self.registry = registry
        self.clock = clock
        self.presets = presets
        self.map_path = Path(map_path).expanduser() if map_path else None
        self._time = time_fn
        self._lock = threading.RLock()
        self.bindings: list[Binding] = []
        self._state: dict[int, _State] = {}
        self._learn: tuple[str, str | None] | None = None
        self._lsb_upgrade: tuple[Binding, float] | None = None
        self.ignored = 0  #: messages that matched no binding (or could not be used)
        self.budget = InputBudget(MESSAGES_PER_S, MESSAGE_BURST, CPU_PER_S, clock=time_fn)
        self.drops = RateLimitedLog(_log, "midi", LOG_INTERVAL_S, clock=time_fn)  #: messages over budget
        if self.map_path is not None and self.map_path.exists():
            self.bindings = load_map(self.map_path, registry)

    # -- learn -----------------------------------------------------------------------------------------------
    def check_target(self, target: str) -> str:
        """Validate a binding target. Raises VJError for an unknown parameter or action."""
        if target in ACTIONS or target in self.registry:
            return target
        raise VJError(f"MIDI: unknown target {target!r} (a parameter name or one of {', '.join(ACTIONS)})")

    def learn(self, target: str, mode: str | None = None) -> None:
        """Arm MIDI learn: the next CC or note received is bound to ``target``.

        Args:
            target: a parameter name or an action.
            mode: a mode from :data:`CC_MODES` or :data:`NOTE_MODES` (used if it fits the control moved);
                default: ``absolute`` for CCs, ``trigger``/``toggle`` for notes by target kind.

        Raises:
            VJError: unknown target or mode.
        """
        self.check_target(target)
        if mode is not None and mode not in CC_MODES + NOTE_MODES:
            raise VJError(f"MIDI: unknown mode {mode!r} (one of {', '.join(CC_MODES + NOTE_MODES)})")
        with self._lock:
            self._learn = (target, mode)
        _log.info("midi: learn %s — move a control", target)

    def cancel_learn(self) -> None:
        """Disarm MIDI learn."""
        with self._lock:
            self._learn = None

    @property
    def learning(self) -> str | None:
        """The target armed for learn, or None."""
        with self._lock:
            return self._learn[0] if self._learn else None

    def forget(self, target: str) -> int:
        """Remove every binding to ``target``; save the map. Returns how many were removed."""
        with self._lock:
            before = len(self.bindings)
            self.bindings = [b for b in self.bindings if b.target != target]
            removed = before - len(self.bindings)
            self._state.clear()
        if removed:
            self._save()
        return removed

    def bind(self, binding: Binding) -> None:
        """Add ``binding``, replacing any binding of the same control; save the map."""
        with self._lock:
            self.bindings = [b for b in self.bindings if b.key() != binding.key()]
            self.bindings.append(binding)
            self._state.clear()
        self._save()

    def _save(self) -> None:
        if self.map_path is None:
            return
        try:
            save_map(self.map_path, self.bindings)
        except VJError as exc:
            _log.warning("%s", exc)

    def _learn_from(self, msg, now: float) -> bool:
        target, mode = self._learn
        if msg.type == "control_change":
            kind = "cc"
            m = mode if mode in CC_MODES else "absolute"
        elif msg.type == "note_on" and msg.velocity > 0:
            kind = "note"
            if mode in NOTE_MODES:
                m = mode
            elif target in ACTIONS or self.registry.param(target).kind == "trigger":
                m = "trigger"
            else:
                m = "toggle"
        else:
            return False
        b = Binding(target, kind, msg.channel, msg.control if kind == "cc" else msg.note, m)
        self._learn = None
        self.bind(b)
        if kind == "cc" and b.number < 32:
            self._lsb_upgrade = (b, now + LSB_WINDOW_S)
        _log.info("midi: %s → %s", b.label(), target)
        return True

    # -- messages ----------------------------------------------------------------------------------------------
    def handle(self, msg, now: float | None = None) -> bool:
        """Act on one MIDI message.

        Args:
            msg: a ``mido.Message``.
            now: receive time [s] (MIDI clock timing); the time source when None.

        Returns:
            True if the message did something (a bound control, clock, or learn); False if it did not, or was
            dropped for being over the budget (:data:`MESSAGES_PER_S`, :data:`CPU_PER_S`; counted in
            :attr:`drops`, logged at most once per :data:`LOG_INTERVAL_S`).
        """
        over = self.budget.take()
        if over is not None:
            self.drops.drop(over)
            return False
        t0 = time.thread_time()
        try:
            return self._handle(msg, now)
        finally:
            self.budget.spend(time.thread_time() - t0)

    def _handle(self, msg, now: float | None) -> bool:
        now = self._time() if now is None else float(now)
        t = msg.type
        if t in ("clock", "start", "stop", "continue"):
            if self.clock is None:
                return False
            {"clock": self.clock.midi_clock, "start": self.clock.midi_start, "stop": self.clock.midi_stop,
             "continue": self.clock.midi_continue}[t](now)
            return True
        if t not in ("control_change", "note_on", "note_off"):
            return False  # active sensing, aftertouch, sysex...: not ours, not worth counting
        with self._lock:
            if self._lsb_upgrade is not None and t == "control_change":
                b, deadline = self._lsb_upgrade
                if now > deadline:
                    self._lsb_upgrade = None
                elif msg.channel == b.channel and msg.control == b.number + 32:
                    self._lsb_upgrade = None
                    b.kind = "cc14"
                    self._state.clear()
                    self._save()
                    _log.info("midi: %s is 14-bit → %s", b.label(), b.target)
                    return True
            if self._learn is not None and self._learn_from(msg, now):
                return True
            if t == "control_change":
                return self._cc(msg, now)
            return self._note(msg)

    def _cc(self, msg, now: float) -> bool:
        ch, num, val = msg.channel, msg.control, msg.value
        for i, b in enumerate(self.bindings):
            if b.channel != ch or b.kind == "note":
                continue
            st = self._state.setdefault(i, _State())
            if b.kind == "cc" and b.number == num:
                return self._control(b, st, val / 127.0, val, PICKUP_7BIT)
            if b.kind == "cc14" and b.number == num:
                st.msb, st.lsb = val, 0
            elif b.kind == "cc14" and b.number + 32 == num:
                st.lsb = val
            else:
                continue
            if b.mode != "absolute":  # a 14-bit encoder: the MSB carries the step
                return self._control(b, st, 0.0, st.msb, PICKUP_14BIT) if num == b.number else True
            raw14 = (st.msb << 7) | st.lsb
            return self._control(b, st, raw14 / 16383.0, raw14 >> 7, PICKUP_14BIT)
        self.ignored += 1
        return False

    def _act(self, target: str) -> None:
        now = self._time()
        if target == "preset.next" and self.presets is not None:
            self.presets.next(now)
        elif target == "preset.prev" and self.presets is not None:
            self.presets.prev(now)
        elif target.startswith("tempo.") and self.clock is not None:
            getattr(self.clock, target.split(".", 1)[1])(now)

    def _control(self, b: Binding, st: _State, unit: float, raw7: int, pickup: float) -> bool:
        reg = self.registry
        target = b.target
        if b.mode in ("relative-2c", "relative-64"):
            ticks = (raw7 - 128 if raw7 >= 64 else raw7) if b.mode == "relative-2c" else raw7 - 64
            if target in ACTIONS:
                if ticks > 0:
                    self._act(target)
                return True
            if ticks == 0:
                return True
            p = reg.param(target)
            if p.kind == "bool":
                reg.set(target, 1.0 if ticks > 0 else 0.0)
            elif p.kind == "trigger":
                if ticks > 0:
                    reg.trigger(target)
            else:
                step = 1.0 if p.kind == "int" else (p.hi - p.lo) / 128.0
                reg.nudge(target, ticks * step)
            return True
        edge = raw7 >= 64 > st.last_raw
        st.last_raw = raw7
        if target in ACTIONS:
            if edge:
                self._act(target)
            return True
        p = reg.param(target)
        if p.kind == "trigger":
            if edge:
                reg.trigger(target)
            return True
        if p.kind == "bool":
            reg.set(target, 1.0 if raw7 >= 64 else 0.0)
            return True
        current = p.to_unit(reg.get(target))
        if st.picked and st.sent is not None and reg.frame > st.sent_frame and abs(reg.get(target) - st.sent) > 1e-9:
            st.picked = False  # someone else (tablet, preset, keyboard) moved it: pick up again
        if b.soft and not st.picked:
            crossed = st.last_unit is not None and (st.last_unit - current) * (unit - current) <= 0
            if crossed or abs(unit - current) <= pickup:
                st.picked = True
            st.last_unit = unit
            if not st.picked:
                return True
        st.last_unit = unit
        reg.set_unit(target, unit)
        st.sent = p.from_unit(unit)
        st.sent_frame = reg.frame
        return True

    def _note(self, msg) -> bool:
        on = msg.type == "note_on" and msg.velocity > 0
        for b in self.bindings:
            if b.kind != "note" or b.channel != msg.channel or b.number != msg.note:
                continue
            if b.target in ACTIONS:
                if on:
                    self._act(b.target)
                return True
            p = self.registry.param(b.target)
            if b.mode == "momentary":
                self.registry.set(b.target, p.hi if on else p.lo)
            elif on and p.kind == "trigger":
                self.registry.trigger(b.target)
            elif on:  # "toggle", or "trigger" on a non-trigger parameter: flip it
                self.registry.toggle(b.target)
            return True
        if on:
            self.ignored += 1
        return False


# -- the map file ---------------------------------------------------------------------------------------------
def load_map(path: str | Path, registry: ParamRegistry) -> list[Binding]:
    """Read a MIDI map file.

    Args:
        path: the TOML file (``[[binding]]`` tables with target, type, channel 1..16, number, mode, soft).
        registry: to check the targets.

    Returns:
        the bindings.

    Raises:
        VJError: unreadable file, bad TOML, or a bad field (the message names the file, the binding and field).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise VJError(f"{path}: cannot read MIDI map ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise VJError(f"{path}: bad TOML: {exc}") from None
    extra = set(data) - {"binding"}
    if extra:
        raise VJError(f"{path}: {sorted(extra)[0]}: unknown field (a MIDI map holds [[binding]] tables)")
    items = data.get("binding", [])
    if not isinstance(items, list):
        raise VJError(f"{path}: binding: expected [[binding]] tables")
    out = []
    for i, item in enumerate(items, 1):
        where = f"{path}: binding {i}"
        if not isinstance(item, dict):
            raise VJError(f"{where}: expected a table")
        unknown = set(item) - {"target", "type", "channel", "number", "mode", "soft"}
        if unknown:
            raise VJError(f"{where}: {sorted(unknown)[0]}: unknown field")
        target = item.get("target")
        if not isinstance(target, str) or not (target in ACTIONS or target in registry):
            raise VJError(f"{where}: target: unknown parameter or action {target!r}")
        kind = item.get("type", "cc")
        if kind not in KINDS:
            raise VJError(f"{where}: type: {kind!r} is not one of {', '.join(KINDS)}")
        ch = item.get("channel", 1)
        if isinstance(ch, bool) or not isinstance(ch, int) or not 1 <= ch <= 16:
            raise VJError(f"{where}: channel: expected 1..16, got {ch!r}")
        num = item.get("number")
        top = 31 if kind == "cc14" else 127
        if isinstance(num, bool) or not isinstance(num, int) or not 0 <= num <= top:
            raise VJError(f"{where}: number: expected 0..{top}, got {num!r}")
        modes = NOTE_MODES if kind == "note" else CC_MODES
        mode = item.get("mode", modes[0])
        if mode not in modes:
            raise VJError(f"{where}: mode: {mode!r} is not one of {', '.join(modes)}")
        soft = item.get("soft", True)
        if not isinstance(soft, bool):
            raise VJError(f"{where}: soft: expected true or false")
        out.append(Binding(target, kind, ch - 1, num, mode, soft))
    return out


def save_map(path: str | Path, bindings: list[Binding]) -> None:
    """Write the bindings to ``path`` atomically (temporary file in the same folder, then rename).

    Raises:
        VJError: the folder cannot be created or written.
    """
    import tomli_w

    path = Path(path)
    doc = {"binding": [{"target": b.target, "type": b.kind, "channel": b.channel + 1, "number": b.number,
                        "mode": b.mode, "soft": b.soft} for b in bindings]}
    text = "# vj MIDI map (written by MIDI learn; safe to edit while vj is not running)\n" + tomli_w.dumps(doc)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        raise VJError(f"cannot save MIDI map {path}: {exc.strerror or exc}") from None
