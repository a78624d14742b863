"""MIDI with mido Message objects and no port: mapping, learn, 14-bit, soft takeover, encoders, clock."""

import logging

import pytest
from mido import Message

from vj.control import midi_port
from vj.control.midi import Binding, MidiController, load_map, save_map
from vj.control.params import ParamRegistry
from vj.control.tempo import PPQN, TempoClock
from vj.errors import VJError


def cc(control, value, channel=0):
    return Message("control_change", channel=channel, control=control, value=value)


def feed(ctl, *msgs, now=0.0):
    for m in msgs:
        ctl.handle(m, now=now)
    ctl.registry.apply_pending()


def test_7bit_cc_with_soft_takeover():
    reg = ParamRegistry()
    ctl = MidiController(reg)
    ctl.bind(Binding("master", "cc", 0, 7, "absolute"))
    feed(ctl, cc(7, 0))  # master is 1.0: a fader at the bottom does not yank it
    assert reg.get("master") == 1.0
    feed(ctl, cc(7, 60), cc(7, 120))
    assert reg.get("master") == 1.0
    feed(ctl, cc(7, 127))  # reached: picked up
    feed(ctl, cc(7, 64))
    assert reg.get("master") == pytest.approx(64 / 127)
    reg.set("master", 0.1)  # the tablet moves it: the fader must pick up again
    reg.apply_pending()
    feed(ctl, cc(7, 100))
    assert reg.get("master") == pytest.approx(0.1)
    feed(ctl, cc(7, 5))  # crossed 0.1 on the way down
    assert reg.get("master") == pytest.approx(5 / 127)
    feed(ctl, cc(7, 5, channel=3))  # other channel: not bound
    assert ctl.ignored == 1


def test_soft_takeover_off_jumps():
    reg = ParamRegistry()
    ctl = MidiController(reg)
    ctl.bind(Binding("gan.depth", "cc", 0, 1, "absolute", soft=False))
    feed(ctl, cc(1, 0))
    assert reg.get("gan.depth") == 0.0


def test_14bit_cc_msb_lsb_pairs():
    reg = ParamRegistry()
    ctl = MidiController(reg)
    ctl.bind(Binding("gan.pitch_sensitivity", "cc14", 0, 2, "absolute", soft=False))
    feed(ctl, cc(2, 64), cc(34, 0))
    p = reg.param("gan.pitch_sensitivity")
    assert reg.get("gan.pitch_sensitivity") == pytest.approx(p.from_unit(8192 / 16383))
    feed(ctl, cc(2, 127), cc(34, 127))
    assert reg.get("gan.pitch_sensitivity") == 295.0
    feed(ctl, cc(2, 0), cc(34, 1))  # the finest step is resolved: 1/16383 of the range
    assert reg.get("gan.pitch_sensitivity") == pytest.approx(200 + 95 / 16383)


def test_relative_encoders_twos_complement_and_offset_64():
    reg = ParamRegistry()
    ctl = MidiController(reg)
    ctl.bind(Binding("gan.speed", "cc", 0, 16, "relative-2c"))
    ctl.bind(Binding("fx.kaleido.segments", "cc", 0, 17, "relative-64"))
    step = 4.0 / 128
    feed(ctl, cc(16, 3))
    assert reg.get("gan.speed") == pytest.approx(1.0 + 3 * step)
    feed(ctl, cc(16, 127), cc(16, 126))  # -1, -2
    assert reg.get("gan.speed") == pytest.approx(1.0)
    feed(ctl, cc(17, 66))  # +2 segments
    assert reg.get("fx.kaleido.segments") == 8
    feed(ctl, cc(17, 61))  # -3
    assert reg.get("fx.kaleido.segments") == 5


def test_notes_trigger_toggle_momentary_and_actions():
    reg = ParamRegistry()
    clock = TempoClock(120.0, clock=lambda: 0.0)
    taps = []
    clock.tap = lambda now=None: taps.append(now)
    ctl = MidiController(reg, clock=clock)
    ctl.bind(Binding("blackout", "note", 9, 36, "toggle"))
    ctl.bind(Binding("freeze", "note", 9, 37, "momentary"))
    ctl.bind(Binding("tempo.tap", "note", 9, 38, "trigger"))
    on = lambda n: Message("note_on", channel=9, note=n, velocity=100)  # noqa: E731
    off = lambda n: Message("note_off", channel=9, note=n)  # noqa: E731
    feed(ctl, on(36), off(36))
    assert reg.get("blackout") == 1.0
    feed(ctl, on(36), Message("note_on", channel=9, note=36, velocity=0))
    assert reg.get("blackout") == 0.0
    feed(ctl, on(37))
    assert reg.get("freeze") == 1.0
    feed(ctl, off(37))
    assert reg.get("freeze") == 0.0
    feed(ctl, on(38), off(38), on(38))
    assert len(taps) == 2


def test_learn_cc_then_14bit_upgrade_note_and_map_file(tmp_path):
    reg = ParamRegistry()
    path = tmp_path / "map.toml"
    ctl = MidiController(reg, map_path=path)
    ctl.learn("gan.truncation")
    assert ctl.learning == "gan.truncation"
    ctl.handle(cc(5, 10, channel=2), now=1.0)
    assert ctl.learning is None
    ctl.handle(cc(37, 3, channel=2), now=1.1)  # its LSB follows at once: a 14-bit control
    assert [(b.kind, b.channel, b.number) for b in ctl.bindings] == [("cc14", 2, 5)]
    ctl.learn("strobe")
    ctl.handle(Message("note_on", channel=0, note=60, velocity=90), now=2.0)
    ctl.learn("fx.zoom.amount", "relative-64")
    ctl.handle(cc(40, 65), now=3.0)
    ctl.handle(cc(72, 1), now=3.1)  # CC 40 is no MSB (not < 32): no 14-bit upgrade; 72 is unbound
    with pytest.raises(VJError, match="unknown target"):
        ctl.learn("fx.nope")
    again = MidiController(reg, map_path=path)
    got = {(b.target, b.kind, b.channel, b.number, b.mode) for b in again.bindings}
    assert got == {("gan.truncation", "cc14", 2, 5, "absolute"), ("strobe", "note", 0, 60, "toggle"),
                   ("fx.zoom.amount", "cc", 0, 40, "relative-64")}
    assert "channel = 3" in path.read_text()  # channels are 1-based in the file
    assert again.forget("strobe") == 1
    assert len(load_map(path, reg)) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("text, problem", [
    ("[[binding]]\ntarget = 'nope'\nnumber = 1", "target"),
    ("[[binding]]\ntarget = 'master'\nnumber = 1\nchannel = 17", "channel"),
    ("[[binding]]\ntarget = 'master'\ntype = 'cc14'\nnumber = 40", "number"),
    ("[[binding]]\ntarget = 'master'\nnumber = 1\nmode = 'wild'", "mode"),
    ("[[binding]\n", "bad TOML"),
])
def test_bad_map_files_name_file_and_field(tmp_path, text, problem):
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(VJError) as err:
        MidiController(ParamRegistry(), map_path=path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_midi_clock_at_128_bpm_drives_the_beat_clock():
    reg = ParamRegistry()
    clock = TempoClock(100.0, clock=lambda: 0.0)
    ctl = MidiController(reg, clock=clock)
    ctl.handle(Message("start"), now=0.0)
    dt = 60.0 / (128 * PPQN)
    for i in range(PPQN * 4):
        ctl.handle(Message("clock"), now=0.01 + i * dt)
    assert abs(clock.bpm - 128.0) <= 1.0
    ctl.handle(Message("stop"), now=1.0)
    assert not ctl.handle(Message("active_sensing"), now=1.0)


def test_save_map_round_trip(tmp_path):
    b = [Binding("preset.next", "note", 15, 127, "trigger"), Binding("master", "cc14", 0, 31, "absolute", False)]
    save_map(tmp_path / "sub" / "m.toml", b)
    assert load_map(tmp_path / "sub" / "m.toml", ParamRegistry()) == b


def test_no_midi_machine_gives_one_notice_and_no_crash(caplog, capfd, monkeypatch):
    with caplog.at_level(logging.INFO, logger="vj.control"):
        port = midi_port.open_midi_input("nanoKONTROL", lambda m, t: None)
    out, err = capfd.readouterr()
    if port is not None:  # a machine with a real sequencer and a matching port
        port.close()
        pytest.skip("this machine has MIDI")
    assert len(caplog.records) == 1 and "MIDI control is off" in caplog.records[0].getMessage()
    assert "ALSA" not in err  # ALSA's own complaint never reaches stderr

    import builtins

    real_import = builtins.__import__

    def no_rtmidi(name, *args, **kwargs):
        if name == "rtmidi":
            raise ImportError("no rtmidi")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rtmidi)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vj.control"):
        assert midi_port.open_midi_input("x", lambda m, t: None) is None
    assert len(caplog.records) == 1 and "pip install" in caplog.records[0].getMessage()


def test_10000_messages_in_one_burst_through_the_input_callback(caplog, monkeypatch):
    """A controller (or a loop in a MIDI patchbay) spews 10,000 messages at once into rtmidi's callback: the burst
    allowance is handled, the rest dropped and counted in one rate-limited line, and the burst costs little."""
    import os
    import threading
    import time

    import mido

    from vj.control import midi as midi_mod

    captured = {}
    exists = os.path.exists
    monkeypatch.setattr(midi_port.os.path, "exists", lambda p: True if p == "/dev/snd/seq" else exists(p))
    monkeypatch.setattr(mido, "get_input_names", lambda: ["Fake Controller MIDI 1"])
    monkeypatch.setattr(mido, "open_input", lambda name, callback: captured.setdefault("cb", callback) and
                        type("Port", (), {"close": lambda self: None})())
    reg = ParamRegistry()
    ctl = MidiController(reg)
    ctl.bind(Binding("fx.zoom.amount", "cc", 0, 1, "absolute", soft=False))
    with caplog.at_level(logging.INFO, logger="vj.control"):
        port = midi_port.open_midi_input("fake", ctl.handle)
        assert port is not None
        burst = [cc(1, i % 128) for i in range(10_000)]
        t0 = time.perf_counter()
        worker = threading.Thread(target=lambda: [captured["cb"](m) for m in burst])  # rtmidi's thread
        worker.start()
        worker.join(timeout=30)
        elapsed = time.perf_counter() - t0
    handled = 10_000 - ctl.drops.count
    assert midi_mod.MESSAGE_BURST <= handled <= midi_mod.MESSAGE_BURST + midi_mod.MESSAGES_PER_S * elapsed + 1
    assert ctl.drops.count == ctl.budget.over_rate + ctl.budget.over_cpu > 5000
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("midi: ignored")]
    assert len(lines) == 1 + int(elapsed // midi_mod.LOG_INTERVAL_S), lines
    assert "messages/s" in lines[0] or "CPU" in lines[0]
    reg.apply_pending()
    assert 0.0 <= reg.get("fx.zoom.amount") <= 1.0
    assert elapsed < 2.0, elapsed  # dropping costs a counter, not a handler call
