"""vj live's control-surface glue: flags, start-up preset, frame hook (crossfade, tempo sync, follow), keys."""

import argparse
import logging
import types

import pytest

from vj.control.keyboard import BINDINGS, handle_key
from vj.control.params import ParamRegistry
from vj.control.presets import load_preset
from vj.control.surfaces import SurfaceOptions, add_arguments, start_surfaces
from vj.control.tempo import TempoClock
from vj.errors import VJError


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_flags_parse_and_reject_bad_values(capsys):
    args = parse("--osc-host", "0.0.0.0", "--osc-port", "9100", "--osc-feedback", "192.168.1.20:9001",
                 "--osc-allow", "192.168.1.0/24", "--midi", "nano", "--midi-map", "m.toml", "--preset", "ocean")
    assert args.osc_feedback == ("192.168.1.20", 9001) and args.osc_port == 9100
    assert args.midi == "nano" and args.preset == "ocean" and len(args.osc_allow) == 1
    defaults = parse()
    assert (defaults.osc_host, defaults.osc_port, defaults.no_osc) == ("127.0.0.1", 9000, False)
    for bad in (["--osc-port", "70000"], ["--osc-feedback", "nohost"], ["--osc-allow", "x.y"]):
        with pytest.raises(SystemExit):
            parse(*bad)
    assert "--osc-allow" in capsys.readouterr().err


def test_start_with_preset_no_osc_and_bad_preset():
    reg = ParamRegistry()
    s = start_surfaces(SurfaceOptions(osc=False, preset="ocean"), reg)
    try:
        assert reg.classes == load_preset("ocean").classes
        assert reg.get("gan.truncation") == load_preset("ocean").params["gan.truncation"]
        assert s.osc is None and s.presets.current == "ocean"
    finally:
        s.close()
    with pytest.raises(VJError, match="no preset named 'oceans'"):
        start_surfaces(SurfaceOptions(osc=False, preset="oceans"), ParamRegistry())


def test_poll_crossfades_and_syncs_tempo_both_ways():
    reg = ParamRegistry()
    t = [100.0]
    clock = TempoClock(120.0, clock=lambda: t[0])
    s = start_surfaces(SurfaceOptions(osc=False), reg, tempo_clock=clock)
    s._time = s.presets._time = lambda: t[0]

    def frame():  # what the frame loop does once per display frame
        s.poll()
        reg.apply_pending()

    try:
        reg.set_now("transition.time_s", 1.0)
        assert s.presets.select("fire", now=t[0])
        target = load_preset("fire").params["gan.truncation"]
        values = []
        for _ in range(12):  # the frame loop: poll, then apply, once per frame
            frame()
            values.append(reg.get("gan.truncation"))
            t[0] += 0.1
        assert values[0] < values[5] < values[-1] == target
        clock.set_bpm(128.0)
        frame()
        frame()
        assert reg.get("tempo.bpm") == 128.0  # the clock's tempo reaches the registry (and the tablet)
        reg.set("tempo.bpm", 90.0)  # e.g. a MIDI fader bound to tempo.bpm
        frame()
        frame()
        assert clock.bpm == 90.0
    finally:
        s.close()


def test_follow_mode_takes_beats_from_features_unless_off():
    reg = ParamRegistry()
    clock = TempoClock(120.0, clock=lambda: 0.0)
    s = start_surfaces(SurfaceOptions(osc=False), reg, tempo_clock=clock)
    try:
        s.poll(0.0, types.SimpleNamespace(beat_count=4, bpm=0.0))
        s.poll(0.7, types.SimpleNamespace(beat_count=5, bpm=100.0))
        assert clock.bpm == 100.0 and clock.phase(0.7) == pytest.approx(0.0, abs=1e-9)
        # a latest-wins slot, as vj live passes it, with the beat's capture time (perf_counter) and phase since
        slot = types.SimpleNamespace(get=lambda: (7, types.SimpleNamespace(
            beat_count=6, bpm=120.0, beat_phase=0.2, capture_time_s=0.5)))
        s.poll(0.6, slot)
        assert clock.bpm == 120.0 and clock.phase(0.4) == pytest.approx(0.0, abs=1e-9)  # 0.5 - 0.2 beats
        reg.set("tempo.follow", 0)
        reg.apply_pending()
        s.poll(1.0, types.SimpleNamespace(beat_count=7, bpm=140.0))
        assert clock.bpm == 120.0
    finally:
        s.close()


def test_keyboard_bindings(tmp_path):
    reg = ParamRegistry()
    s = start_surfaces(SurfaceOptions(osc=False, midi_map=str(tmp_path / "m.toml")), reg)
    s.presets.save_dir = tmp_path
    reg.set_now("transition.time_s", 0.0)
    try:
        assert handle_key("B", reg, s) and handle_key("UP", reg, s) is True
        assert handle_key("_2", reg, s)  # preset 2 of the bank
        s.poll()
        reg.apply_pending()
        assert reg.get("blackout") == 1.0
        assert s.presets.current == s.presets.bank.names()[1]
        for _ in range(3):
            handle_key("T", reg, s, now=10.0 + 0.5 * _)
        assert s.clock.bpm == pytest.approx(120.0)
        handle_key("PERIOD", reg, s)
        assert s.clock.bpm == pytest.approx(240.0)
        assert handle_key("L", reg, s) and s.midi.learning == "master"
        assert handle_key("L", reg, s) and s.midi.learning == "blackout"
        assert handle_key("L", reg, s, modifiers=2) and s.midi.learning is None
        assert handle_key("S", reg, s, modifiers=2)
        assert list(tmp_path.glob("live-*.toml"))
        assert not handle_key("ESCAPE", reg, s) and not handle_key("F", reg, s)  # the window's own keys
        assert not handle_key("T", reg)  # no surfaces: parameter keys only
    finally:
        s.close()
    assert len(BINDINGS) >= 10
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "osc.md").read_text()
    for keys, _, what in BINDINGS:  # the keyboard table of docs/osc.md is the table the code runs
        assert f"| {keys} | {what} |" in doc, keys


def test_midi_flag_on_a_machine_without_midi_is_one_notice(caplog, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    reg = ParamRegistry()
    with caplog.at_level(logging.INFO, logger="vj.control"):
        s = start_surfaces(SurfaceOptions(osc=False, midi="anything"), reg)
    s.close()
    notices = [r for r in caplog.records if "MIDI control is off" in r.getMessage()]
    if s.midi_port is None:
        assert len(notices) == 1
    assert s.midi is not None  # learn and mapping still work (e.g. for a port that appears later)
    assert s.midi.map_path == tmp_path / "vj" / "midi.toml"  # learned bindings persist by default


def test_window_hook_converts_pyglet_symbols(monkeypatch):
    import sys

    codes = {98: "B", 49: "_1", 65362: "UP"}
    fake_key = types.SimpleNamespace(symbol_string=lambda code: codes.get(code, f"user_key({code})"))
    monkeypatch.setitem(sys.modules, "pyglet.window", types.SimpleNamespace(key=fake_key))

    class Window:
        handlers = []

        def push_handlers(self, **kw):
            self.handlers.append(kw["on_key_press"])

    reg = ParamRegistry()
    window = Window()
    s = start_surfaces(SurfaceOptions(osc=False), reg, window=window)
    try:
        press = window.handlers[0]
        assert press(98, 0) is True  # B: blackout, handled (the window's own handler is not called)
        assert press(12345, 0) is None  # not ours: passed on to the window's handlers
        reg.apply_pending()
        assert reg.get("blackout") == 1.0
    finally:
        s.close()
