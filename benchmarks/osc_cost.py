"""CPU cost of OSC input per datagram: the worst address patterns, and each kind of packet in the soak flood.

Matches every worst case of tests/test_osc_pattern.py against vj's 58 parameter addresses without the compile
cache (every packet may be a new pattern), and times ``OscServer.handle_datagram`` (thread CPU time, no budget)
over 300 packets of each kind that benchmarks/soak.py sends. For comparison it also times the regex translation
vj used before (``*`` → ``[^/]*``, a backtracking search) on 15, 18 and 20 stars.

Usage::

    python benchmarks/osc_cost.py
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from soak import flood_packet  # noqa: E402
from test_osc_pattern import WORST  # noqa: E402
from vj.control.budget import InputBudget  # noqa: E402
from vj.control.osc import OscServer  # noqa: E402
from vj.control.osc_pattern import AddressSpace, PatternError, compile_pattern  # noqa: E402
from vj.control.osc_router import OscRouter  # noqa: E402
from vj.control.params import ParamRegistry  # noqa: E402


def main() -> None:
    import logging

    logging.disable(logging.WARNING)
    reg = ParamRegistry()
    addrs = [f"/vj/{n.replace('.', '/')}" for n in reg.names()] + [f"/vj/raw/{n.replace('.', '/')}" for n in
                                                                    reg.names()]
    space = AddressSpace((a, a) for a in addrs)
    patterns = {}
    for p in WORST:
        t0 = time.thread_time()
        for _ in range(50):
            try:
                space.match(compile_pattern.__wrapped__(p))
            except PatternError:
                pass
        patterns[p[:24] + ("…" if len(p) > 24 else "") + f" ({len(p)} chars)"] = round(
            (time.thread_time() - t0) / 50 * 1e6, 1)
    old = {}
    for stars in (15, 18, 20):
        rx = re.compile(re.escape("/vj/") + "[^/]*" * stars + "x")
        t0 = time.thread_time()
        for a in addrs:
            rx.fullmatch(a)
        old[f"{stars} stars + x"] = round((time.thread_time() - t0) * 1e3, 1)
    server = OscServer(OscRouter(reg), budget=InputBudget(1e9, 1e9))
    rng = random.Random(1)
    kinds = {"valid fader": 0, "random bytes": 60, "NaN/inf": 67, "oversized string": 72, "lying blob": 77,
             "bundle": 85, "wild pattern": 95}
    per_kind = {}
    for name, k in kinds.items():
        packets = [flood_packet(rng, k)[:8192] for _ in range(300)]
        t0 = time.thread_time()
        for d in packets:
            server.handle_datagram(d)
        per_kind[name] = round((time.thread_time() - t0) / len(packets) * 1e6, 1)
    print(json.dumps({"worst_pattern_us_all_58_addresses": patterns,
                      "old_regex_ms_all_58_addresses": old,
                      "handle_datagram_us_per_packet": per_kind}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
