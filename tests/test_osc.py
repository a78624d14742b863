"""OSC address space, pure logic: scaling, raw, edges, toggles, relative, classes, garbage."""

import math
import time

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from vj.control.crossfade import PresetSwitcher
from vj.control.osc import OscFeedback, OscServer, parse_allowlist, parse_host_port
from vj.control.osc_router import OscRouter
from vj.control.params import ParamRegistry
from vj.control.presets import PresetBank, shipped_preset_dir
from vj.control.tempo import TempoClock
from vj.errors import VJError


@pytest.fixture
def reg():
    return ParamRegistry()


def send(router, address, *args):
    reason = router.handle(address, args, now=0.0)
    router.registry.apply_pending()
    return reason


def test_floats_scale_to_range_and_raw_sets_units(reg):
    r = OscRouter(reg)
    assert send(r, "/vj/master", 0.5) is None
    assert reg.get("master") == 0.5
    assert send(r, "/vj/gan/pitch_sensitivity", 1.0) is None
    assert reg.get("gan.pitch_sensitivity") == 295.0
    assert send(r, "/vj/gan/truncation", 0.0) is None
    assert reg.get("gan.truncation") == 0.05
    assert send(r, "/vj/raw/gan/pitch_sensitivity", 250) is None
    assert reg.get("gan.pitch_sensitivity") == 250.0
    assert send(r, "/vj/raw/gan/speed", 9.0) is None  # clamped, not rejected
    assert reg.get("gan.speed") == 4.0
    assert send(r, "/vj/fx/kaleido/segments", 1.0) is None
    assert reg.get("fx.kaleido.segments") == 16
    assert send(r, "/vj/gan/speed", "0.25") is None  # numeric strings are numbers
    assert reg.get("gan.speed") == 1.0


def test_bool_toggle_and_relative_strings(reg):
    r = OscRouter(reg)
    assert send(r, "/vj/blackout", 1) is None and reg.get("blackout") == 1.0
    assert send(r, "/vj/blackout", 0.0) is None and reg.get("blackout") == 0.0
    assert send(r, "/vj/blackout", True) is None and reg.get("blackout") == 1.0
    assert send(r, "/vj/freeze", "!") is None and reg.get("freeze") == 1.0
    assert send(r, "/vj/freeze", "!") is None and reg.get("freeze") == 0.0
    assert send(r, "/vj/strobe") is None and reg.get("strobe") == 1.0  # no argument toggles
    send(r, "/vj/master", 0.5)
    assert send(r, "/vj/master", "+0.1") is None and reg.get("master") == pytest.approx(0.6)
    assert send(r, "/vj/master", "-0.25") is None and reg.get("master") == pytest.approx(0.35)
    send(r, "/vj/raw/gan/pitch_sensitivity", 250)
    assert send(r, "/vj/gan/pitch_sensitivity", "+0.1") is None  # a tenth of the range (95)
    assert reg.get("gan.pitch_sensitivity") == pytest.approx(259.5)
    assert send(r, "/vj/raw/gan/pitch_sensitivity", "-9.5") is None
    assert reg.get("gan.pitch_sensitivity") == pytest.approx(250.0)


def test_triggers_and_actions_fire_on_the_rising_edge_only():
    reg = ParamRegistry()
    clock = TempoClock(120.0, clock=lambda: 0.0)
    taps = []
    clock.tap = lambda now=None: taps.append(now)
    r = OscRouter(reg, clock=clock)
    for v in (1.0, 1.0, 0.0, 1.0, 0.0, 0.0):
        assert r.handle("/vj/tempo/tap", (v,), now=len(taps)) is None
    assert len(taps) == 2
    assert r.handle("/vj/tempo/tap", (), now=5.0) is None  # no argument fires
    assert len(taps) == 3


def test_tempo_addresses_drive_the_clock():
    reg = ParamRegistry()
    clock = TempoClock(120.0, clock=lambda: 0.0)
    r = OscRouter(reg, clock=clock)
    assert r.handle("/vj/tempo/bpm", (128.0,), now=0.0) is None
    assert clock.bpm == 128.0
    assert r.handle("/vj/tempo/double", (1,), now=0.0) is None
    assert clock.bpm == 256.0
    assert r.handle("/vj/tempo/half", (1.0,), now=0.0) is None
    assert r.handle("/vj/tempo/bpm", ("+2",), now=0.0) is None
    assert clock.bpm == 130.0
    r.handle("/vj/tempo/resync", (), now=3.3)
    assert clock.phase(3.3) == pytest.approx(0.0, abs=1e-9)
    r.handle("/vj/tempo/tap", (1.0,), now=10.0)
    r.handle("/vj/tempo/tap", (0.0,), now=10.1)
    r.handle("/vj/tempo/tap", (1.0,), now=10.5)
    assert clock.bpm == pytest.approx(120.0)


def test_classes_by_index_and_name(reg):
    r = OscRouter(reg)
    assert send(r, "/vj/gan/classes", 107, "daisy", 1.0) is None
    assert reg.classes == (107, 985, 1)
    assert send(r, "/vj/gan/classes", "golden retriever, jellyfish") is None
    assert reg.classes == (207, 107)
    reason = send(r, "/vj/gan/classes", "jellyfsh")
    assert "jellyfish" in reason  # closest matches in the log line
    assert send(r, "/vj/gan/classes", 1000) is not None
    assert send(r, "/vj/gan/classes") is not None
    assert send(r, "/vj/gan/classes", *range(13)) is not None
    assert reg.classes == (207, 107)


def test_unknown_addresses_and_wrong_types_are_ignored_and_counted(reg):
    r = OscRouter(reg)
    server = OscServer(r)
    before = reg.snapshot()
    bad = [
        ("/vj/nope", (1.0,)),
        ("/other/master", (1.0,)),
        ("/vj/master", (b"\x00\x01",)),
        ("/vj/master", ("loud",)),
        ("/vj/master", (1.0, 2.0)),
        ("/vj/master", ()),
        ("/vj/master", (math.nan,)),
        ("/vj/master", (math.inf,)),
        ("/vj/master", ("x" * 10_000,)),
        ("/vj/raw/master", ("+nan",)),
        ("/vj/preset/select", ("ocean",)),  # no presets attached
        ("/vj/" + "a/" * 500, (1.0,)),
        ("/vj/raw/", (1.0,)),
    ]
    for address, args in bad:
        server.handle_message(address, args)
    reg.apply_pending()
    assert reg.snapshot() == before
    assert server.drops.count == len(bad) and r.handled == 0
    assert server.drops.lines == 1  # rate-limited: one line for the burst


def test_preset_addresses(tmp_path):
    reg = ParamRegistry()
    reg.set_now("transition.time_s", 0.0)
    switcher = PresetSwitcher(reg, PresetBank([shipped_preset_dir()]), save_dir=tmp_path)
    r = OscRouter(reg, presets=switcher)
    assert r.handle("/vj/preset/select", ("ocean",), now=0.0) is None
    switcher.poll(0.0)
    reg.apply_pending()
    assert 107 in reg.classes and switcher.current == "ocean"
    r.handle("/vj/preset/next", (1.0,), now=0.0)
    r.handle("/vj/preset/next", (1.0,), now=0.0)  # no edge: ignored
    switcher.poll(0.0)
    assert switcher.current == PresetBank([shipped_preset_dir()]).names()[
        PresetBank([shipped_preset_dir()]).names().index("ocean") + 1]
    assert r.handle("/vj/preset/select", ("no such look",), now=0.0) is not None
    assert r.handle("/vj/preset/save", ("mine",), now=0.0) is None
    assert (tmp_path / "mine.toml").is_file()
    assert r.handle("/vj/preset/save", ("../../etc/passwd",), now=0.0) is not None


def test_datagrams_bundles_allowlist_and_garbage(reg):
    server = OscServer(OscRouter(reg), allow=parse_allowlist("10.0.0.0/8,192.168.1.20"))
    msg = OscMessageBuilder("/vj/master")
    msg.add_arg(0.25)
    bundle = OscBundleBuilder(IMMEDIATELY)
    bundle.add_content(msg.build())
    future = OscBundleBuilder(time.time() + 3600)  # a time tag an hour ahead must not stall the thread
    m2 = OscMessageBuilder("/vj/gan/depth")
    m2.add_arg(0.5)
    future.add_content(m2.build())
    server.handle_datagram(bundle.build().dgram, ("192.168.1.20", 5000))
    t0 = time.monotonic()
    server.handle_datagram(future.build().dgram, ("10.1.2.3", 5000))
    assert time.monotonic() - t0 < 1.0
    server.handle_datagram(msg.build().dgram, ("192.168.1.21", 5000))  # not allowed
    server.handle_datagram(b"/vj/master\x00\x00,i\x00\x00", ("10.0.0.1", 1))  # truncated int
    server.handle_datagram(b"\xff" * 100, ("10.0.0.1", 1))
    reg.apply_pending()
    assert reg.get("master") == 0.25 and reg.get("gan.depth") == 0.5
    assert server.drops.count == 3


def test_flag_parsers():
    assert parse_host_port("192.168.1.20:9001") == ("192.168.1.20", 9001)
    assert parse_host_port("[::1]:9001") == ("::1", 9001)
    for bad in ("nohost", ":9000", "host:0", "host:99999", "host:port"):
        with pytest.raises(VJError, match="HOST:PORT"):
            parse_host_port(bad)
    assert parse_allowlist("") is None
    with pytest.raises(VJError, match="--osc-allow"):
        parse_allowlist("10.0.0.1,evil.example")


class FakeClient:
    def __init__(self):
        self.sent = []

    def send_message(self, address, value):
        self.sent.append((address, value))


def test_feedback_sends_fader_positions_on_the_same_addresses(reg):
    client = FakeClient()
    OscFeedback(reg, "127.0.0.1", 9, client=client).attach()
    reg.set("gan.pitch_sensitivity", 295)
    reg.set("blackout", 1)
    reg.set("tempo.bpm", 128)
    reg.set_classes([107, 985])
    reg.apply_pending()
    assert sorted(client.sent) == sorted([
        ("/vj/gan/pitch_sensitivity", 1.0), ("/vj/blackout", 1), ("/vj/tempo/bpm", 128.0),
        ("/vj/gan/classes", [107, 985]),
    ])


def test_docs_list_every_parameter_address_and_action():
    from pathlib import Path

    from vj.control.osc_router import ACTIONS

    doc = (Path(__file__).resolve().parent.parent / "docs" / "osc.md").read_text()
    for name in ParamRegistry().names():
        assert f"`/vj/{name.replace('.', '/')}`" in doc, name
    for path in ACTIONS:  # the router's table: a new action without a docs row fails here
        assert f"/vj/{path}" in doc, path
    assert "127.0.0.1" in doc and "9000" in doc


def test_osc_address_patterns_reach_every_matching_parameter(reg):
    r = OscRouter(reg)
    assert send(r, "/vj/fx/*/amount", 0.0) is None
    assert all(reg.get(n) == 0.0 for n in reg.names() if n.startswith("fx.") and n.endswith(".amount"))
    assert send(r, "/vj/gan/{depth,jitter}", 0.5) is None
    assert reg.get("gan.depth") == reg.get("gan.jitter") == 0.5
    assert send(r, "/vj/raw/gan/[p]itch_*", 250) is None
    assert reg.get("gan.pitch_sensitivity") == 250.0
    assert send(r, "/vj/gan/classes*", 1) is not None  # actions are not pattern targets
    assert send(r, "/vj/[", 1.0) is not None and send(r, "/vj/nothing*", 1.0) is not None
    assert reg.get("master") == 1.0
