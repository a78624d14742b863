import math
import threading

import pytest

from vj.control.params import ParamRegistry


def test_set_is_queued_until_apply_and_clamped():
    reg = ParamRegistry()
    assert reg.set("gan.truncation", 5.0)
    assert reg.get("gan.truncation") == 0.7  # not applied yet
    assert reg.apply_pending() == {"gan.truncation": 1.0}
    assert reg.get("gan.truncation") == 1.0


def test_rejects_unknown_nan_inf_and_bad_types():
    reg = ParamRegistry()
    assert not reg.set("nope", 1)
    assert not reg.set("master", math.nan)
    assert not reg.set("master", math.inf)
    assert not reg.set("master", "abc")
    assert not reg.set_classes([1000])
    assert reg.rejected == 5
    assert reg.apply_pending() == {}


def test_unit_nudge_toggle_trigger_classes():
    reg = ParamRegistry()
    reg.set_unit("tempo.bpm", 0.5)
    reg.nudge("gan.depth", -0.25)
    reg.toggle("blackout")
    reg.trigger("fx.kaleido.segments")
    reg.set_classes([985, 107])
    changed = reg.apply_pending()
    assert changed["tempo.bpm"] == 160.0
    assert changed["gan.depth"] == 0.75
    assert changed["blackout"] == 1.0
    assert reg.classes == (985, 107)
    reg.toggle("blackout")
    assert reg.apply_pending() == {"blackout": 0.0}


def test_concurrent_writers_lose_nothing():
    reg = ParamRegistry()

    def worker():
        for _ in range(500):
            reg.nudge("tempo.bpm", 0.01)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reg.apply_pending()
    assert abs(reg.get("tempo.bpm") - 140.0) < 1e-6


def test_listener_sees_changes():
    reg = ParamRegistry()
    seen = []
    reg.add_listener(seen.append)
    reg.set("master", 0.25)
    reg.apply_pending()
    reg.apply_pending()
    assert seen == [{"master": 0.25}]


def test_a_broken_listener_does_not_stop_the_frame():
    reg = ParamRegistry()
    reg.set("master", 0.5)

    def broken(changed):
        raise RuntimeError("surface died")

    reg.add_listener(broken)
    assert reg.apply_pending() == {"master": 0.5}
    assert reg.listener_errors == 1 and reg.frame == 1


def test_palette_blend_and_weights():
    reg = ParamRegistry()
    reg.set_classes([1, 2])
    reg.apply_pending()
    assert reg.blend_classes([1, 2], [3], 0.25)
    assert not reg.blend_classes([1], [], 0.5)
    assert not reg.blend_classes([1], [5000], 0.5)
    assert not reg.blend_classes([1], [2], math.nan)
    assert reg.apply_pending() == {"classes": 1.0}
    pal = reg.palette
    assert (pal.source, pal.target, pal.mix) == ((1, 2), (3,), 0.25)
    assert reg.classes == (3,)
    assert pal.weights() == {1: 0.375, 2: 0.375, 3: 0.25}
    reg.set_classes([4])
    reg.apply_pending()
    assert reg.palette.source == (4,) and reg.palette.mix == 1.0


def test_one_declaration_feeds_registry_mapping_render_cli_and_docs():
    """vj.parameters is the only place a range or default is stated: everything else reads it."""
    import argparse
    from pathlib import Path

    from vj import parameters
    from vj.commands import render as render_cmd
    from vj.mapping import RANGES, Mapper, MappingSettings

    reg = ParamRegistry()
    assert reg.names() == [p.name for p in parameters.LIVE]
    assert all(reg.get(p.name) == p.default for p in parameters.LIVE)
    # the mapping's ranges and (render) defaults
    for field, (lo, hi) in RANGES.items():
        p = parameters.setting(field)
        assert (lo, hi) == (p.lo, p.hi) and getattr(MappingSettings(), field) == p.render_value
    assert MappingSettings().truncation == 1.0 and reg.get("gan.truncation") == 0.7  # the two contexts, on purpose
    # every live parameter with a mapping field reaches the mapper, in the field's unit
    m = Mapper()
    live = {p.name: p.hi for p in parameters.LIVE if p.mapping}
    m.apply_params(live)
    for p in parameters.LIVE:
        if p.mapping:
            want = min(p.hi * m.settings.fps, RANGES[p.mapping][1]) if p.per_second else p.hi
            assert getattr(m.settings, p.mapping) == want, p.name
    # vj render's flags: same ranges and defaults
    parser = argparse.ArgumentParser()
    render_cmd.configure(parser)
    args = parser.parse_args(["demo"])
    assert args.truncation == MappingSettings().truncation and args.smooth_factor == MappingSettings().smooth_factor
    assert args.beat_kick == 0.0 and args.fps == 30.0
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--truncation", "1.5"])
    # docs/osc.md's table is the generated one
    doc = (Path(__file__).resolve().parent.parent / "docs" / "osc.md").read_text()
    assert parameters.osc_table() in doc
