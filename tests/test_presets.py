import math
import os

import pytest

from vj.control.crossfade import Crossfade, PresetSwitcher
from vj.control.params import ParamRegistry
from vj.control.presets import (
    Preset,
    PresetBank,
    load_preset,
    save_preset,
    shipped_preset_dir,
)
from vj.control.tempo import TempoClock
from vj.errors import VJError

SHIPPED = sorted(p.stem for p in shipped_preset_dir().glob("*.toml"))


def test_at_least_eight_distinct_shipped_presets():
    assert len(SHIPPED) >= 8
    palettes = {load_preset(n).classes for n in SHIPPED}
    assert len(palettes) == len(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_preset_loads_and_applies(name):
    preset = load_preset(name)
    assert 1 <= len(preset.classes) <= 12 and len(set(preset.classes)) == len(preset.classes)
    assert preset.description
    reg = ParamRegistry()
    for pname, value in preset.params.items():
        p = reg.param(pname)
        assert p.lo <= value <= p.hi
        assert reg.set(pname, value)
    assert reg.set_classes(preset.classes)
    reg.apply_pending()
    assert reg.rejected == 0


def write(tmp_path, text, name="bad"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, field, problem",
    [
        ("classes = [1\nparams = {}", "bad TOML", "line"),
        ('classes = [1]\n[params]\n"gan.trunction" = 0.5', "params.gan.trunction", "gan.truncation"),
        ("classes = [1]\n[params]\ngan.truncation = 7.0", "params.gan.truncation", "out of range"),
        ("classes = [1]\n[params]\ngan.truncation = nan", "params.gan.truncation", "finite"),
        ('classes = [1]\n[params]\ngan.truncation = "high"', "params.gan.truncation", "number"),
        ('classes = ["jellyfsh"]', "classes", "jellyfish"),
        ("classes = [1000]", "classes", "out of range"),
        ("classes = []", "classes", "1 to 12"),
        ("classes = [1]\ncolour = 3", "colour", "unknown field"),
        ("classes = [1]\n[params]\ntempo.bpm = 128", "params.tempo.bpm", "performer"),
    ],
)
def test_invalid_preset_names_file_field_and_problem(tmp_path, text, field, problem):
    path = write(tmp_path, text)
    with pytest.raises(VJError) as err:
        load_preset(path)
    msg = str(err.value)
    assert str(path) in msg and field in msg and problem in msg
    assert "\n" not in msg


def test_invalid_preset_keeps_the_current_look(tmp_path):
    good = write(tmp_path, 'classes = ["daisy"]\n[params]\ngan.truncation = 0.3', "good")
    write(tmp_path, 'classes = ["daisy"]\n[params]\ngan.truncation = inf', "broken")
    reg = ParamRegistry()
    reg.set_now("transition.time_s", 0.0)
    sw = PresetSwitcher(reg, PresetBank([tmp_path]))
    assert sw.select("good", now=0.0)
    sw.poll(0.0)
    reg.apply_pending()
    before = (reg.snapshot(), reg.classes)
    assert not sw.select("broken", now=1.0)
    assert not sw.select("no-such-preset", now=1.0)
    sw.poll(1.0)
    reg.apply_pending()
    assert (reg.snapshot(), reg.classes) == before
    assert reg.get("gan.truncation") == 0.3
    assert sw.errors == 2 and sw.current == "good"
    assert load_preset(good).params == {"gan.truncation": 0.3}


def test_nested_and_quoted_parameter_keys_and_bools(tmp_path):
    path = write(tmp_path, 'classes = [107, "daisy"]\n[params]\n"fx.zoom.amount" = 0.2\nfreeze = true\n'
                           "[params.fx.kaleido]\nsegments = 8\n", "nested")
    preset = load_preset(path)
    assert preset.classes == (107, 985)
    assert preset.params == {"fx.zoom.amount": 0.2, "freeze": 1.0, "fx.kaleido.segments": 8.0}


def test_save_reload_round_trip_and_no_clobber(tmp_path):
    reg = ParamRegistry()
    reg.set("gan.truncation", 0.42)
    reg.set("fx.kaleido.segments", 9)
    reg.set("blackout", 1)
    reg.set_classes([107, 985])
    reg.apply_pending()
    first = save_preset("my look", reg.classes, reg.snapshot(), tmp_path)
    assert first.name == "my-look.toml"
    preset = load_preset(first)
    assert preset.classes == (107, 985)
    assert preset.params["gan.truncation"] == pytest.approx(0.42)
    assert preset.params["fx.kaleido.segments"] == 9
    assert "blackout" not in preset.params and "tempo.bpm" not in preset.params
    original = first.read_bytes()
    second = save_preset("my-look", [1], {}, tmp_path)
    third = save_preset("my-look", [2], {}, tmp_path, taken=["my-look-3"])
    assert (second.name, third.name) == ("my-look-2.toml", "my-look-4.toml")
    assert first.read_bytes() == original
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # no temp files left behind
    with pytest.raises(VJError, match="bad preset name"):
        save_preset("../escape", [1], {}, tmp_path)


def test_switcher_save_never_shadows_a_shipped_preset(tmp_path):
    reg = ParamRegistry()
    reg.set_classes([1])
    reg.apply_pending()
    sw = PresetSwitcher(reg, PresetBank([shipped_preset_dir(), tmp_path]), save_dir=tmp_path)
    assert sw.save("ocean") == "ocean-2"
    assert load_preset(tmp_path / "ocean-2.toml").classes == (1,)


def test_bank_next_prev_wrap_and_skip_past_a_broken_file(tmp_path):
    for n in ("a", "c"):
        write(tmp_path, f"classes = [{ord(n)}]", n)
    write(tmp_path, "classes = [", "b")
    bank = PresetBank([tmp_path])
    assert bank.names() == ["a", "b", "c"]
    assert bank.next().name == "a"
    with pytest.raises(VJError, match="b.toml"):
        bank.next()
    assert bank.current == "a"
    assert bank.next().name == "c"
    assert bank.next().name == "a"
    assert bank.prev().name == "c"
    assert bank.select(0).name == "a"


def test_crossfade_interpolates_and_reaches_target_in_transition_time():
    reg = ParamRegistry()
    reg.set_classes([1, 2])
    reg.set("gan.truncation", 0.2)
    reg.apply_pending()
    preset = Preset("t", (107, 108), {"gan.truncation": 1.0, "freeze": 1.0, "fx.kaleido.segments": 16})
    fade = Crossfade(reg, preset, duration_s=2.0, start_s=10.0)
    seen = []
    t = 10.0
    while not fade.advance(t):
        reg.apply_pending()
        seen.append((t, reg.get("gan.truncation"), reg.palette))
        t += 0.25
    reg.apply_pending()
    assert t == pytest.approx(12.0)
    truncs = [v for _, v, _ in seen]
    assert truncs == sorted(truncs) and 0.2 <= truncs[1] < truncs[-1] < 1.0  # a fade, not a cut
    mid = [pal for tt, _, pal in seen if tt == pytest.approx(11.0)][0]
    assert mid.source == (1, 2) and mid.target == (107, 108) and mid.mix == pytest.approx(0.5)
    assert sum(mid.weights().values()) == pytest.approx(1.0)
    assert reg.get("gan.truncation") == 1.0 and reg.get("freeze") == 1.0
    assert reg.get("fx.kaleido.segments") == 16
    assert reg.palette.source == reg.palette.target == (107, 108) and reg.palette.mix == 1.0


def test_crossfade_time_zero_is_a_cut_and_performer_takes_over():
    reg = ParamRegistry()
    fade = Crossfade(reg, Preset("t", (5,), {"master": 0.0}), 0.0, 0.0)
    assert fade.advance(0.0)
    reg.apply_pending()
    assert reg.get("master") == 0.0 and reg.classes == (5,)

    fade = Crossfade(reg, Preset("u", (), {"master": 1.0, "gan.depth": 0.0}), 1.0, 0.0)
    fade.advance(0.1)
    reg.apply_pending()
    reg.set("master", 0.05)  # the performer grabs the master fader mid-fade
    reg.apply_pending()
    while not fade.advance(fade.start_s + 1.0):
        reg.apply_pending()
    reg.apply_pending()
    assert fade.released == {"master"}
    assert reg.get("master") == 0.05 and reg.get("gan.depth") == 0.0


def test_quantised_change_waits_for_the_next_bar(tmp_path):
    write(tmp_path, "classes = [7]\n[params]\ngan.depth = 0.5", "q")
    reg = ParamRegistry()
    reg.set("transition.quantize", 2)
    reg.set("transition.time_s", 0)
    reg.apply_pending()
    clock = TempoClock(120.0, clock=lambda: 0.0)  # bars every 2 s
    sw = PresetSwitcher(reg, PresetBank([tmp_path]), clock=clock)
    assert sw.select("q", now=0.3)
    sw.poll(1.9)
    reg.apply_pending()
    assert reg.classes == () and sw.pending
    sw.poll(2.0)
    reg.apply_pending()
    assert reg.classes == (7,) and reg.get("gan.depth") == 0.5 and not sw.pending
    assert not math.isnan(reg.get("gan.depth"))
