"""Time for ``vj``'s live input to recover after the sound server is killed and restarted (docs/reliability.md).

A private PulseAudio daemon with a null sink stands in for the club's sound card (tests/pulse.py). The script
opens vj's :class:`LiveInputSource` on it with the ``vj live`` defaults, kills the daemon mid-stream, restarts
it after ``--gone-s`` seconds, and reports, per round, the seconds from the kill until the source noticed (state
error/retrying) and from the restart until it was running again and until the first new hop arrived.

Usage::

    python benchmarks/pulse_recover.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pulse import PulseServer  # noqa: E402


def _wait(pred, timeout_s: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.005)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--gone-s", type=float, default=2.0, help="seconds the server stays dead (default 2)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = PulseServer(Path(tmp))
        server.start()
        os.environ.update(PULSE_SERVER=server.server, PULSE_CLIENTCONFIG=str(server.client_conf))
        from vj.audio.sources import LiveInputSource, SourceState, refresh_devices

        refresh_devices()
        hops = [0]
        src = LiveInputSource("pulse", hop_size=512)
        src.start(lambda hop, t: hops.__setitem__(0, hops[0] + 1))
        rounds = []
        try:
            assert _wait(lambda: src.state is SourceState.RUNNING, 10) is not None, src.status_line()
            for _ in range(a.rounds):
                time.sleep(1.0)
                server.kill()
                noticed = _wait(lambda: src.state is not SourceState.RUNNING, 10)
                time.sleep(a.gone_s)
                server.start()
                t_running = _wait(lambda: src.state is SourceState.RUNNING, 30)
                n = hops[0]
                t_hop = _wait(lambda: hops[0] > n, 10)
                rounds.append({"noticed_s": noticed, "running_again_s": t_running,
                               "first_hop_after_running_s": t_hop})
        finally:
            src.stop()
            server.stop()
    ok = [r["running_again_s"] for r in rounds if r["running_again_s"] is not None]
    print(json.dumps({"rounds": rounds, "recovered": f"{len(ok)}/{len(rounds)}",
                      "running_again_s_median": statistics.median(ok) if ok else None,
                      "running_again_s_max": max(ok) if ok else None}))


if __name__ == "__main__":
    main()
