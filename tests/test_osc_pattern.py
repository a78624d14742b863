"""OSC 1.0 address patterns: the bit-parallel matcher against a simple reference, and its worst cases.

The reference expands ``{...}`` into every combination and matches each part with the standard library's
``fnmatch.fnmatchcase`` (whose ``*``, ``?``, ``[...]`` and ``[!...]`` mean what OSC 1.0 says) — a different method
from :mod:`vj.control.osc_pattern`, exponential but fine on the small random cases hypothesis draws.
"""

import fnmatch
import itertools
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vj.control.osc_pattern import MAX_PATTERN, AddressSpace, PatternError, compile_pattern, is_pattern
from vj.control.params import ParamRegistry


def reference(pattern: str, address: str) -> bool:
    pieces = re.split(r"(\{[^}]*\})", pattern)
    choices = [p[1:-1].split(",") if p.startswith("{") else [p] for p in pieces]
    for combo in itertools.product(*choices):
        parts, words = "".join(combo).split("/"), address.split("/")
        if len(parts) == len(words) and all(fnmatch.fnmatchcase(w, p) for p, w in zip(parts, words)):
            return True
    return False


letters = st.sampled_from("abc")
token = st.one_of(
    letters, letters, st.just("/"), st.just("*"), st.just("?"),
    st.builds(lambda s: f"[{s}]", st.text("abc", min_size=1, max_size=3)),
    st.builds(lambda s: f"[!{s}]", st.text("abc", min_size=1, max_size=2)),
    st.sampled_from(["[a-b]", "[!b-c]", "[a-]", "[c-a]"]),
    st.builds(lambda alts: "{" + ",".join(alts) + "}", st.lists(st.text("abc", max_size=3), min_size=1, max_size=3)),
)
patterns = st.lists(token, max_size=8).map(lambda ts: "/" + "".join(ts))
addresses = st.lists(st.text("abc", max_size=4), min_size=1, max_size=3).map(lambda ws: "/" + "/".join(ws))


@settings(max_examples=2000, deadline=None)
@given(patterns, addresses)
def test_matches_the_fnmatch_reference(pattern, address):
    assert compile_pattern(pattern).match(address) == reference(pattern, address), (pattern, address)


@settings(max_examples=300, deadline=None)
@given(patterns, st.lists(addresses, min_size=1, max_size=12, unique=True))
def test_address_space_returns_the_matching_addresses_in_order(pattern, addrs):
    space = AddressSpace((a, a) for a in addrs)
    assert space.match(pattern) == [a for a in addrs if reference(pattern, a)]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab/*?[]{},!-"), max_size=40))
def test_any_text_compiles_or_raises_pattern_error(text):
    try:
        p = compile_pattern(text)
    except PatternError:
        return
    p.match("/a/b")


def test_spec_examples_and_errors():
    assert compile_pattern("/vj/fx/*/amount").match("/vj/fx/zoom/amount")
    assert not compile_pattern("/vj/fx/*/amount").match("/vj/fx/zoom/rate")
    assert not compile_pattern("/vj/*").match("/vj/fx/zoom")  # '*' stays inside a part
    assert compile_pattern("/vj/gan/{depth,jitter}").match("/vj/gan/jitter")
    assert compile_pattern("/vj/[a-c]x").match("/vj/bx") and not compile_pattern("/vj/[!a-c]x").match("/vj/bx")
    assert compile_pattern("/vj/[[a]").match("/vj/[")  # a '[' inside brackets is just a character
    assert is_pattern("/vj/*") and not is_pattern("/vj/master")
    for bad in ("/vj/[", "/vj/[]", "/vj/{a", "/vj/a]", "/vj/a}", "/vj/[a/b]", "/vj/{a,/b}", "/" + "a" * MAX_PATTERN):
        with pytest.raises(PatternError):
            compile_pattern(bad)


WORST = [
    "/vj/" + "*" * 250,
    "/vj/" + "*" * 250 + "x",
    "/vj/" + "*a" * 126,
    "/vj/" + "{,a}" * 63,
    "/vj/" + "*{,}" * 63,
    "/vj/{" + ",".join(f"{a}{b}" for a in "abcdefghijklm" for b in "abcdefgh")[:250] + "}",
    "/vj/" + "[" * 251 + "]",
    "/vj/" + "[[[[]" * 50,
    "/vj/fx/" + "*?" * 124,
    "/vj/" + "*/" * 126,
    "/vj/" + "?*" * 60 + "/*",
]


def test_worst_cases_cost_microseconds_not_seconds():
    """The old regex translation took 1 s for 20 '*' and 7.5 s for 25 (per address, on this machine); every case
    here, against all 58 parameter addresses, must stay far below one 60 Hz frame."""
    reg = ParamRegistry()
    space = AddressSpace([(f"/vj/{n.replace('.', '/')}", n) for n in reg.names()]
                         + [(f"/vj/raw/{n.replace('.', '/')}", n) for n in reg.names()])
    worst = 0.0
    for p in WORST:
        assert len(p) <= MAX_PATTERN, p
        t0 = time.perf_counter()
        try:
            space.match(compile_pattern.__wrapped__(p))  # no cache: every packet may be a new pattern
        except PatternError:
            pass
        worst = max(worst, time.perf_counter() - t0)
    assert worst < 0.004, worst
    assert len(space.match("/vj/" + "*" * 250)) == len([n for n in reg.names() if "." not in n])
