"""Bounded OSC work: bundle framing caps, per-packet and per-second budgets, the open-port warning."""

import logging
import struct

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from vj.control import osc
from vj.control.budget import InputBudget
from vj.control.osc import MAX_MESSAGES_PER_PACKET, OscServer, PacketError, parse_allowlist, split_packet
from vj.control.osc_router import OscRouter
from vj.control.params import ParamRegistry


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def message(address, *args):
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build()


def bundle(*contents):
    b = OscBundleBuilder(IMMEDIATELY)
    for c in contents:
        b.add_content(c)
    return b.build()


def server(budget=None):
    reg = ParamRegistry()
    return reg, OscServer(OscRouter(reg), budget=budget)


def test_split_packet_unpacks_nested_bundles_in_order_and_refuses_bad_framing():
    a, b, c = message("/vj/a", 1.0), message("/vj/b"), message("/vj/c", "x")
    assert split_packet(bundle(a, bundle(b, bundle(c))).dgram) == [a.dgram, b.dgram, c.dgram]
    deep = c
    for _ in range(5):
        deep = bundle(deep)
    with pytest.raises(PacketError, match="nested deeper"):
        split_packet(deep.dgram)
    good = bundle(a).dgram
    for lie in (len(a.dgram) + 4, 3, 0, -8, 2**31 - 1):  # element sizes that do not fit the bundle
        with pytest.raises(PacketError, match="size"):
            split_packet(good[:16] + struct.pack(">i", lie) + good[20:])
    with pytest.raises(PacketError, match="not an OSC"):
        split_packet(b"\xff\x00\x00\x00")
    with pytest.raises(PacketError, match="time tag"):
        split_packet(b"#bundle\x00\x00")


def test_a_bundle_of_many_messages_is_cut_at_the_per_packet_cap():
    reg, srv = server()
    n = 200
    srv.handle_datagram(bundle(*[message("/vj/master", i / n) for i in range(n)]).dgram)
    assert srv.router.handled == MAX_MESSAGES_PER_PACKET
    assert srv.drops.count == n - MAX_MESSAGES_PER_PACKET
    reg.apply_pending()
    assert reg.get("master") == pytest.approx((MAX_MESSAGES_PER_PACKET - 1) / n)


def test_per_packet_time_budget_drops_the_rest(monkeypatch):
    reg, srv = server()
    ticks = iter(x * 0.001 for x in range(10_000))  # every CPU-clock read is 1 ms later
    monkeypatch.setattr(osc.time, "thread_time", lambda: next(ticks))
    srv.handle_datagram(bundle(*[message("/vj/master", 0.5)] * 20).dgram)
    assert 1 <= srv.router.handled <= 5  # 4 ms of 1 ms steps
    assert srv.router.handled + srv.drops.count == 20


def test_message_rate_budget_lets_a_fader_sweep_through_and_drops_a_flood():
    clock = FakeClock()
    reg, srv = server(InputBudget(osc.MESSAGES_PER_S, osc.MESSAGE_BURST, clock=clock))
    sweep = [message("/vj/fx/zoom/amount", i / 600).dgram for i in range(600)]
    for i, d in enumerate(sweep):  # 300 messages/s for 2 s: a tablet fader sweep
        clock.t = i / 300
        srv.handle_datagram(d)
    assert srv.drops.count == 0 and srv.router.handled == 600
    clock.t += 10.0
    for _ in range(10_000):  # 10,000 at one instant: the burst passes, the rest is dropped and counted
        srv.handle_datagram(sweep[0])
    assert srv.router.handled == 600 + osc.MESSAGE_BURST
    assert srv.drops.count == 10_000 - osc.MESSAGE_BURST
    assert srv.budget.over_rate == srv.drops.count
    clock.t += 1.0  # one second later the rate has refilled
    srv.handle_datagram(sweep[0])
    assert srv.router.handled == 601 + osc.MESSAGE_BURST


def test_cpu_budget_refuses_messages_once_spent_and_refills():
    clock = FakeClock()
    b = InputBudget(1000, 1000, cpu_per_s=0.1, clock=clock)
    assert b.take() is None
    b.spend(0.05)  # more than the 25 ms burst
    assert "CPU" in b.take()
    clock.t = 0.3
    assert b.take() is None and b.over_cpu == 1


def test_cheap_refusals_before_parsing():
    reg, srv = server()
    srv.handle_datagram(b"/other/thing\x00\x00\x00\x00,f\x00\x00\x00\x00\x00\x00")
    srv.handle_datagram(b"/vj/master\x00\x00,"+ b"T" * 5000 + b"\x00")  # 5000 arguments that need no data
    srv.handle_datagram(b"/vj/" + b"a" * 300 + b"\x00")
    blob = message("/vj/master", b"abcd").dgram
    srv.handle_datagram(blob[:-8] + struct.pack(">i", 10**6) + blob[-4:])  # a blob that lies about its size
    assert srv.drops.count == 4 and srv.router.handled == 0


def bind_log(caplog, host, allow=None):
    reg = ParamRegistry()
    s = OscServer(OscRouter(reg), host=host, port=0, allow=allow)
    with caplog.at_level(logging.INFO, logger="vj.control"):
        s.start()
        s.close()
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_listening_on_the_network_without_an_allowlist_warns_once(caplog):
    warned = bind_log(caplog, "0.0.0.0")
    assert len(warned) == 1 and "anyone on that network can control the show" in warned[0]
    caplog.clear()
    assert bind_log(caplog, "0.0.0.0", allow=parse_allowlist("192.168.1.20")) == []
    caplog.clear()
    assert bind_log(caplog, "127.0.0.1") == []
    caplog.clear()
    assert bind_log(caplog, "localhost") == []


def test_library_warnings_go_to_the_log_not_the_console(caplog, capsys):
    import warnings

    from vj.control.ratelog import WarningsToLog

    log = logging.getLogger("vj.test")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with caplog.at_level(logging.DEBUG, logger="vj.test"), WarningsToLog(log, interval_s=60.0) as routed:
            for i in range(100):
                warnings.warn(f"Possible nested set at position {i}", FutureWarning)
        assert routed.count == 100
    assert capsys.readouterr().err == ""
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(info) == 1 and "FutureWarning: Possible nested set at position 0" in info[0]
    assert len(debug) == 100
