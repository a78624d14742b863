"""Control surfaces of ``vj live``, started together: OSC in and feedback, MIDI, presets, the tempo clock, keys.

The live command calls :func:`add_arguments` on its parser, turns the parsed flags into :class:`SurfaceOptions`
(:meth:`SurfaceOptions.from_args`) and calls :func:`start_surfaces` once its registry exists. The frame loop
(:meth:`vj.display.show.Show.frame`) calls :meth:`Surfaces.poll` once per frame, before the registry applies its
queue, so crossfades, quantised preset changes and tempo sync advance every frame. ``close()`` at exit.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vj.clock import now_s
from vj.control.crossfade import PresetSwitcher
from vj.control.params import ParamRegistry
from vj.control.presets import Preset, PresetBank, load_preset
from vj.control.tempo import TempoClock
from vj.errors import VJError

_log = logging.getLogger("vj.control")


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a UDP port (0..65535; 0 = any free port)")
    return int(text)


def _host_port(text: str):
    from vj.control.osc import parse_host_port

    try:
        return parse_host_port(text)
    except VJError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None


def _allow(text: str):
    from vj.control.osc import parse_allowlist

    try:
        return parse_allowlist(text)
    except VJError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the control-surface flags to ``vj live``'s parser.

    Flags: ``--osc-host``, ``--osc-port``, ``--no-osc``, ``--osc-feedback HOST:PORT``, ``--osc-allow ADDR,...``,
    ``--midi NAME``, ``--midi-map FILE``, ``--preset NAME|FILE``.
    """
    g = parser.add_argument_group("control surfaces (see docs/osc.md, docs/midi.md, docs/presets.md)")
    g.add_argument("--osc-host", default="127.0.0.1", metavar="ADDR",
                   help="OSC listen address (default 127.0.0.1: this machine only; 0.0.0.0 for the LAN)")
    g.add_argument("--osc-port", type=_port, default=9000, metavar="PORT",
                   help="OSC UDP port (default 9000; 0 = any free port, logged)")
    g.add_argument("--no-osc", action="store_true", help="do not listen for OSC")
    g.add_argument("--osc-feedback", type=_host_port, metavar="HOST:PORT",
                   help="send state changes to this tablet so its faders follow")
    g.add_argument("--osc-allow", type=_allow, metavar="ADDR,...",
                   help="accept OSC only from these IP addresses or networks (e.g. 192.168.1.20,10.0.0.0/24)")
    g.add_argument("--midi", metavar="NAME",
                   help="open the MIDI input whose name contains NAME ('' = the first one)")
    g.add_argument("--midi-map", metavar="FILE",
                   help="MIDI bindings file (TOML), read at start and written by MIDI learn "
                        "(default with --midi: ~/.config/vj/midi.toml)")
    g.add_argument("--preset", metavar="NAME|FILE", help="start with this preset (a name or a .toml path)")


@dataclass(frozen=True)
class SurfaceOptions:
    """What the control surfaces should do at start-up (the flags of :func:`add_arguments`).

    Attributes:
        osc: listen for OSC.
        osc_host: listen address; osc_port: UDP port (0 = any free port).
        osc_feedback: ``(host, port)`` of a tablet to send state changes to, or None.
        osc_allow: accepted senders as parsed by :func:`vj.control.osc.parse_allowlist`, or None (any).
        midi: part of a MIDI input's name to open ('' = the first), or None (no MIDI input).
        midi_map: MIDI bindings file, or None (``~/.config/vj/midi.toml`` when ``midi`` is given).
        preset: the starting preset (a name or a .toml path), or None.
    """

    osc: bool = True
    osc_host: str = "127.0.0.1"
    osc_port: int = 9000
    osc_feedback: tuple[str, int] | None = None
    osc_allow: tuple | None = None
    midi: str | None = None
    midi_map: str | None = None
    preset: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "SurfaceOptions":
        """The options from ``vj live``'s parsed flags (a parser that :func:`add_arguments` configured)."""
        return cls(osc=not args.no_osc, osc_host=args.osc_host or "127.0.0.1", osc_port=args.osc_port,
                   osc_feedback=args.osc_feedback, osc_allow=args.osc_allow, midi=args.midi,
                   midi_map=args.midi_map, preset=args.preset)


class Surfaces:
    """The running control surfaces (see :func:`start_surfaces`).

    Attributes:
        registry: the parameter registry.
        clock: the :class:`TempoClock` (tap, follow, MIDI clock).
        presets: the :class:`PresetSwitcher`.
        midi: the :class:`vj.control.midi.MidiController` (None without ``--midi``/``--midi-map``).
        osc: the :class:`vj.control.osc.OscServer` (None with ``--no-osc``).
        feedback: the :class:`vj.control.osc.OscFeedback` (None without ``--osc-feedback``).
    """

    def __init__(self, registry: ParamRegistry, clock: TempoClock, presets: PresetSwitcher,
                 time_fn: Callable[[], float] = now_s, features=None):
        self.registry = registry
        self.clock = clock
        self.presets = presets
        self.features = features
        self.midi = None
        self.midi_port = None
        self.osc = None
        self.feedback = None
        self._time = time_fn
        self._last_beat_count: int | None = None
        self._last_event_count: int | None = None
        self.last_event = ""  #: the latest section event followed (build, drop, breakdown), for the overlay
        self._reg_bpm_seen = registry.get("tempo.bpm")
        self._bpm_written: float | None = None
        self._preset_sent: str | None = None
        self._closed = False
        self.errors = 0  #: failed :meth:`poll` calls

    def poll(self, now: float | None = None, features=None) -> None:
        """Per-frame work (main thread): follow the analysis beats and downbeats, sync the tempo with the registry,
        pass section events on (``/vj/event/<name>`` to the tablet, the preset's ``on_<event>`` reaction), start due
        preset changes and advance the crossfade, report the preset to the tablet.

        The frame loop calls it once per frame, before :meth:`ParamRegistry.apply_pending`, so what it queues is
        applied in the same frame. A failure is counted in :attr:`errors` (the first is logged); the show goes on.

        Args:
            now: time [s] on the vj clock (:func:`vj.clock.now_s`) (the default).
            features: the latest :class:`vj.audio.features.Features` (or a slot with ``get() -> (id, f)``);
                default: the ``features`` given to :func:`start_surfaces`.
        """
        if self._closed:
            return
        now = self._time() if now is None else now
        try:
            self._follow(now, features if features is not None else self.features)
            self._sync_tempo()
            self.presets.poll(now)
            if self.feedback is not None and self.presets.current != self._preset_sent:
                self._preset_sent = self.presets.current
                self.feedback.preset(self._preset_sent)
        except Exception:  # a broken surface must not stop the frame loop
            self.errors += 1
            if self.errors == 1:
                _log.exception("control: polling the surfaces failed (further failures are counted)")

    def _follow(self, now: float, features) -> None:
        self.clock.follow = self.registry.get("tempo.follow") >= 0.5
        if features is None:
            return
        if hasattr(features, "get") and not hasattr(features, "beat_count"):
            features = features.get()[1]  # a latest-wins slot
        count = getattr(features, "beat_count", None)
        if count is None:
            return
        if self._last_beat_count is not None and count > self._last_beat_count:
            bpm = getattr(features, "bpm", 0.0) or 0.0
            bib = getattr(features, "beat_in_bar", -1)
            self.clock.beat(self._beat_time(now, features, bpm), bpm or None,
                            beat_in_bar=bib if bib is not None and bib >= 0 else None,
                            beats_per_bar=getattr(features, "meter", None) if bib is not None and bib >= 0 else None)
        self._last_beat_count = count
        self._section_event(now, features)

    def _section_event(self, now: float, features) -> None:
        """A new section event (``features.event_count`` went up): tell the tablet, run the preset's reaction."""
        count = getattr(features, "event_count", None)
        if count is None:
            return
        seen, self._last_event_count = self._last_event_count, count
        if seen is None or count <= seen:
            return
        name = getattr(features, "last_event", "")
        if not name:
            return
        self.last_event = name
        if self.feedback is not None:
            self.feedback.event(name, float(getattr(features, "last_event_confidence", 0.0) or 0.0))
        self.presets.react(name, now)

    def _beat_time(self, now: float, features, bpm: float) -> float:
        """When the tracker's latest beat happened: the hop's capture time (on the vj clock, as ``now``) minus
        the beat phase since; ``now`` when that is unknown or implausible (audio and display lag are then ignored)."""
        capture = getattr(features, "capture_time_s", 0.0) or 0.0
        phase = getattr(features, "beat_phase", 0.0) or 0.0
        if capture <= 0.0 or bpm <= 0.0:
            return now
        t = capture - phase * 60.0 / bpm  # capture times are on the vj clock too
        return t if now - 2.0 <= t <= now else now

    def _sync_tempo(self) -> None:
        reg = self.registry
        value = reg.get("tempo.bpm")
        if value != self._reg_bpm_seen:  # applied since the last frame: ours, or someone else's?
            self._reg_bpm_seen = value
            if self._bpm_written is None or abs(value - self._bpm_written) > 1e-6:
                self.clock.set_bpm(value)  # a fader, a MIDI control or /vj/raw/tempo/bpm set it
        bpm = round(self.clock.bpm, 1)
        if abs(bpm - value) >= 0.05 and bpm != self._bpm_written:
            reg.set("tempo.bpm", bpm)
            self._bpm_written = bpm

    def close(self) -> None:
        """Stop OSC and MIDI; :meth:`poll` does nothing afterwards (idempotent)."""
        self._closed = True
        if self.osc is not None:
            self.osc.close()
        if self.midi_port is not None:
            try:
                self.midi_port.close()
            except Exception:  # noqa: BLE001 — closing at exit must not fail the exit
                pass
            self.midi_port = None


def default_midi_map() -> Path:
    """Where MIDI learn saves when ``--midi`` is given without ``--midi-map``: ``~/.config/vj/midi.toml``
    (``$XDG_CONFIG_HOME/vj/midi.toml``)."""
    from vj.control.presets import user_preset_dir

    return user_preset_dir().parent / "midi.toml"


def _apply_now(registry: ParamRegistry, preset: Preset) -> None:
    for name, value in preset.params.items():
        registry.set_now(name, value)
    if preset.classes:
        registry.set_classes(preset.classes)
    registry.apply_pending()


def start_surfaces(options: SurfaceOptions, registry: ParamRegistry, tempo_clock: TempoClock | None = None, log=None,
                   window=None, features=None, preset_dirs=None) -> Surfaces:
    """Start what the options ask for: the starting preset, OSC in/feedback, MIDI, and the keyboard bindings.

    Args:
        options: the :class:`SurfaceOptions`.
        registry: the live parameter registry.
        tempo_clock: the tempo clock to drive (a new :class:`TempoClock` at ``tempo.bpm`` when None).
        log: a logger for start-up lines (``vj.control`` by default).
        window: the pyglet window, to push the keyboard bindings onto (its own keys — Esc, F, H, Tab — stay).
        features: the analysis ``Features`` slot (``get() -> (id, Features)``) for the tempo clock's follow mode
            (when :meth:`Surfaces.poll` is not given features).
        preset_dirs: preset folders (default: shipped, then ``~/.config/vj/presets``).

    Returns:
        the running :class:`Surfaces`; ``close()`` it at exit.

    Raises:
        VJError: an invalid ``--preset`` or ``--midi-map`` file, or an OSC port that cannot be bound.
    """
    from vj.control.osc import OscFeedback, OscServer
    from vj.control.osc_router import OscRouter

    log = log or _log
    clock = tempo_clock or TempoClock(registry.get("tempo.bpm"))
    bank = PresetBank(preset_dirs)
    switcher = PresetSwitcher(registry, bank, clock=clock)
    s = Surfaces(registry, clock, switcher, features=features)
    opt = options
    try:
        if opt.preset:
            preset = load_preset(opt.preset, dirs=bank.dirs)
            _apply_now(registry, preset)
            switcher.current = bank.current = preset.name
            switcher.current_preset = preset
            log.info("preset: %s", preset.name)
        if opt.midi is not None or opt.midi_map:
            from vj.control.midi import MidiController

            s.midi = MidiController(registry, clock=clock, presets=switcher,
                                    map_path=opt.midi_map or default_midi_map())
            log.info("midi: map %s (%d bindings)", s.midi.map_path, len(s.midi.bindings))
            if opt.midi is not None:
                from vj.control.midi_port import open_midi_input

                s.midi_port = open_midi_input(opt.midi, s.midi.handle)
        if opt.osc_feedback:
            host, port = opt.osc_feedback
            s.feedback = OscFeedback(registry, host, port).attach()
            log.info("osc: feedback to %s:%d", host, port)
        if opt.osc:
            router = OscRouter(registry, presets=switcher, clock=clock, midi=s.midi,
                               on_refresh=s.feedback.send_all if s.feedback else None)
            s.osc = OscServer(router, opt.osc_host, opt.osc_port, allow=opt.osc_allow).start()
    except BaseException:
        s.close()
        raise
    if window is not None and hasattr(window, "push_handlers"):
        from vj.control import keyboard

        keyboard.attach(window, registry, s)
    return s
