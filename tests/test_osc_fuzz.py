"""Property-based fuzzing of the OSC input: garbage datagrams, random addresses, random argument types.

Whatever arrives, the handler never raises and every parameter stays finite and within its range.
"""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pythonosc.osc_message_builder import OscMessageBuilder

from vj.control.osc import OscServer
from vj.control.osc_router import OscRouter
from vj.control.params import ParamRegistry

REG = ParamRegistry()
NAMES = REG.names()
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fresh():
    reg = ParamRegistry()
    server = OscServer(OscRouter(reg))
    reasons = []
    drop = server.drops.drop
    server.drops.drop = lambda reason: (reasons.append(reason), drop(reason))
    reg.reasons = reasons
    return reg, server


def check(reg):
    # the router's catch-all must never be what saved us: every ignored message has a real reason
    assert not [r for r in reg.reasons if r.startswith("internal error")]
    reg.apply_pending()
    for name, value in reg.snapshot().items():
        p = reg.param(name)
        assert math.isfinite(value) and p.lo <= value <= p.hi, (name, value)
    assert all(0 <= c < 1000 for c in reg.classes) and len(reg.classes) <= 12


addresses = st.one_of(
    st.sampled_from(["/vj/" + n.replace(".", "/") for n in NAMES]),
    st.sampled_from(["/vj/raw/" + n.replace(".", "/") for n in NAMES]),
    st.sampled_from(["/vj/gan/classes", "/vj/preset/select", "/vj/preset/next", "/vj/tempo/tap", "/vj/tempo/bpm",
                     "/vj/midi/learn", "/vj/refresh", "/vj/", "/vj//", "/vj/raw/", "/vj/*", "/vj/{a,b}"]),
    st.text(max_size=40).map(lambda s: "/vj/" + s),
    st.text(max_size=40),
)
osc_args = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.booleans(),
    st.none(),
    st.text(max_size=300),
    st.sampled_from(["!", "+0.1", "-0.5", "+inf", "-nan", "+", "-", "1e999", "+1e308", "daisy, jellyfish"]),
    st.binary(max_size=64),
)


@SETTINGS
@given(st.binary(max_size=512))
def test_random_bytes_never_raise(data):
    reg, server = fresh()
    server.handle_datagram(data, ("127.0.0.1", 1))
    server.handle_datagram(b"/vj/" + data, ("127.0.0.1", 1))
    server.handle_datagram(b"#bundle\x00" + data, ("127.0.0.1", 1))
    check(reg)


@SETTINGS
@given(st.lists(st.tuples(addresses, st.lists(osc_args, max_size=4)), max_size=8))
def test_random_messages_keep_values_finite_and_in_range(messages):
    reg, server = fresh()
    for address, args in messages:
        # straight into the router, with Python values python-osc could never produce too
        reason = server.router.handle(address, tuple(args), now=0.0)
        assert reason is None or isinstance(reason, str)
        if reason is not None:
            reg.reasons.append(reason)
        server.handle_message(address, args)
        try:  # and as a real encoded packet through the dispatcher, where the types are encodable
            builder = OscMessageBuilder(address)
            for a in args:
                builder.add_arg(a)
            dgram = builder.build().dgram
        except Exception:
            continue
        server.handle_datagram(dgram, ("127.0.0.1", 1))
    check(reg)


@SETTINGS
@given(st.lists(osc_args, min_size=1, max_size=3), st.binary(min_size=1, max_size=8))
def test_encoded_then_corrupted_packets(args, junk):
    reg, server = fresh()
    builder = OscMessageBuilder("/vj/master")
    for a in args:
        try:
            builder.add_arg(a)
        except Exception:
            return
    try:
        dgram = builder.build().dgram
    except Exception:
        return
    for cut in (len(dgram) // 2, len(dgram) - 1):
        server.handle_datagram(dgram[:cut] + junk, ("127.0.0.1", 1))
    check(reg)
