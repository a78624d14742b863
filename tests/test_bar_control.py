"""The control side of bars and section events: the beat clock follows the analysis's downbeats (so bar-quantised
preset changes land on the "one"), a tap on the one reaches the analysis, presets react to drops and breakdowns,
the tablet hears ``/vj/event/<name>``, and the overlay shows the bar, the phrase and the last event."""

from __future__ import annotations

import types

import pytest

from vj.audio.features import Features
from vj.control.crossfade import PresetSwitcher
from vj.control.osc import OscFeedback
from vj.control.params import ParamRegistry
from vj.control.presets import PresetBank, load_preset
from vj.control.surfaces import Surfaces
from vj.control.tempo import TempoClock
from vj.errors import VJError


def write(folder, text, name):
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_clock_follows_the_analysis_downbeat():
    clock = TempoClock(120.0, clock=lambda: 0.0)
    # beats every 0.5 s; the analysis says the beat at 2.0 s is beat 3 of 4 (index 2): the next bar starts at 3.0 s
    for i, t in enumerate((0.5, 1.0, 1.5, 2.0)):
        clock.beat(t, 120.0, beat_in_bar=(i % 4 + 3) % 4 if i < 3 else 2, beats_per_bar=4)
    assert clock.next_bar_time(2.01) == pytest.approx(3.0)
    assert clock.bar_phase(2.0) == pytest.approx(0.5)
    # a waltz: meter 3 is adopted
    clock.beat(2.5, 120.0, beat_in_bar=0, beats_per_bar=3)
    assert clock.beats_per_bar == 3 and clock.next_bar_time(2.51) == pytest.approx(4.0)


def test_resync_wins_over_stale_analysis_beats_and_tells_listeners():
    clock = TempoClock(120.0, clock=lambda: 0.0)
    heard = []
    clock.on_resync.append(heard.append)
    clock.beat(1.0, 120.0, beat_in_bar=0, beats_per_bar=4)
    clock.resync(1.5)  # the performer says 1.5 s is the one
    assert heard == [1.5]
    clock.beat(1.5, 120.0, beat_in_bar=1)  # analysed before the tap reached the analysis: ignored for the bar
    assert clock.bar_phase(1.5) == pytest.approx(0.0)
    clock.beat(2.0, 120.0, beat_in_bar=1)  # the analysis now agrees
    assert clock.bar_phase(2.0) == pytest.approx(0.25)


def test_preset_reactions_parse_and_refuse_the_performers_switches(tmp_path):
    p = load_preset(write(tmp_path, 'on_drop = "next_preset"\non_breakdown = { "fx.feedback.amount" = 0.8, '
                                    '"fx.zoom.amount" = 0 }\non_build = "other"\n[params]\ngan.truncation = 0.4', "r"))
    assert p.reactions == {"drop": "next_preset", "breakdown": {"fx.feedback.amount": 0.8, "fx.zoom.amount": 0.0},
                           "build": "other"}
    for bad, msg in (('on_drop = { blackout = 1 }', "performer"), ('on_drop = { master = 0.2 }', "performer"),
                     ('on_drop = { "fx.zoom.amount" = 3 }', "out of range"), ('on_drop = "../x"', "expected"),
                     ('on_drop = 5', "expected"), ('on_crash = "next_preset"', "unknown field")):
        with pytest.raises(VJError, match=msg):
            load_preset(write(tmp_path, bad, "bad"))


def _surfaces(tmp_path, reg, sent):
    write(tmp_path, 'on_drop = "b"\non_breakdown = { "fx.feedback.amount" = 0.8 }\n[params]\ngan.truncation = 0.4',
          "a")
    write(tmp_path, '[params]\ngan.truncation = 0.9', "b")
    reg.set_now("transition.time_s", 0.0)
    reg.set_now("transition.quantize", 2)
    clock = TempoClock(120.0, clock=lambda: 0.0)
    sw = PresetSwitcher(reg, PresetBank([tmp_path]), clock=clock)
    s = Surfaces(reg, clock, sw)
    client = types.SimpleNamespace(send_message=lambda a, v: sent.append((a, v)))
    s.feedback = OscFeedback(reg, "127.0.0.1", 9, client=client)
    sw.select("a", now=0.0)
    return s


def test_drop_reaction_and_osc_event(tmp_path):
    reg = ParamRegistry()
    sent = []
    s = _surfaces(tmp_path, reg, sent)
    f = Features(hop_index=10, event_count=0)
    s.poll(0.0, f)  # bar-quantised change to "a" waits for the next bar
    s.poll(2.5, f)
    reg.apply_pending()
    assert s.presets.current == "a"
    s.poll(3.0, Features(hop_index=11, event_count=1, last_event="breakdown", last_event_confidence=0.7))
    reg.apply_pending()
    assert reg.get("fx.feedback.amount") == pytest.approx(0.8)
    assert ("/vj/event/breakdown", 0.7) in sent
    reg.set_now("blackout", 1)  # blackout stays above a reaction
    s.poll(3.1, Features(hop_index=12, event_count=2, last_event="drop", last_event_confidence=0.9))
    s.poll(3.1, Features(hop_index=12, event_count=2, last_event="drop", last_event_confidence=0.9))  # same event
    reg.apply_pending()
    assert s.presets.current == "b"  # at once, not at the next bar
    assert reg.get("gan.truncation") == pytest.approx(0.9) and reg.get("blackout") == 1.0
    assert [a for a, _ in sent].count("/vj/event/drop") == 1 and s.presets.reactions == 2
    assert s.last_event == "drop"


def test_overlay_bar_line():
    from vj.display.overlay import bar_line, overlay_text

    assert bar_line(None).startswith("bar -")
    f = Features(time_s=30.0, meter=4, beat_in_bar=2, bar_phase=0.55, phrase_pos=13.5, section="full",
                 last_event="drop", last_event_time_s=22.7, last_event_confidence=0.92)
    line = bar_line(f)
    assert "bar 3.2/4" in line and "8: 6.5" in line and "16: 14.5" in line and "32: 14.5" in line
    assert "last DROP 7.3 s ago (0.92)" in line and "section full" in line
    assert line in overlay_text({"features": f})
    assert "locking" not in overlay_text({"features": f, "bpm": 128.0})  # bpm 0 in f: the tempo is unknown
    unsure = Features(bpm=131.0, tempo_confidence=0.35)
    assert "bpm 131.0 (locking: confidence 0.35)" in overlay_text({"features": unsure, "bpm": 131.0})
    assert "locking" not in overlay_text({"features": Features(bpm=128.0, tempo_confidence=0.97), "bpm": 128.0})
