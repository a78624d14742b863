"""Soak ``vj live`` in a real window (Xvfb) on a looped recording while a mixed OSC flood hits its port.

Starts ``vj live --input file:REC --loop --stats FILE`` (or ``--input demo``) in a private Xvfb, waits for the
first stats rows, lets it run ``--baseline-s`` seconds without traffic, then sends the flood for ``--minutes`` at
``--rate`` packets/s, sampling vj's resident memory (``/proc/PID/status`` VmRSS) every 5 s. Then Ctrl-C (SIGINT)
and one JSON summary on stdout:

* ``display_fps_median_no_flood`` / ``display_fps_median_flood`` and their ``display_ratio`` (from ``--stats``;
  the first 3 rows after start and after the flood starts are skipped as warm-up);
* ``longest_stats_gap_s`` (rows are due once a second; a stalled main thread shows as a longer gap);
* ``rss_mb_at_1min`` (one minute after the first stats row), ``rss_mb_end``, ``rss_growth_pct`` between them;
* ``packets_sent``, and what vj counted at exit (``vj_packets``, ``vj_handled``, ``vj_ignored``,
  ``vj_over_budget``);
* ``exit_code``, ``alive_at_end``, ``traceback``, ``warnings`` (lines on vj's stderr that mention a warning
  category).

The flood (fixed seed) per 100 packets: 55 valid fader moves on parameters that do not change the rendering cost,
10 random byte strings, 5 NaN/inf arguments, 5 oversized strings, 5 blobs that lie about their size, 10 bundles
(nested, mixing the above), 10 wild address patterns (random ``*?[]{}`` mixes and the known worst cases).

Usage::

    python benchmarks/soak.py                       # 60 min at 1000 packets/s on the club recording
    python benchmarks/soak.py --minutes 10 --rate 1000 --baseline-s 60
    python benchmarks/soak.py --input demo --minutes 0.67 --baseline-s 20 --size 640x360   # the test's version
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from xvfb import XvfbServer  # noqa: E402

from vj.engine.stats import read_stats  # noqa: E402

TESTDATA = Path(os.environ.get("VJ_TESTDATA", ROOT.parent / "shared" / "testdata"))
DEFAULT_INPUT = TESTDATA / "club" / "gtzan_disco00000.wav"
FADERS = ["/vj/master", "/vj/gan/depth", "/vj/gan/jitter", "/vj/gan/pitch_sensitivity", "/vj/gan/tempo_sensitivity",
          "/vj/gan/speed", "/vj/gan/truncation", "/vj/fx/hue/shift", "/vj/transition/time_s"]
"""Fader addresses of the valid part: none of them changes what a frame costs to draw."""
WORST = ["/vj/" + "*" * 250, "/vj/" + "*" * 250 + "x", "/vj/" + "[" * 250 + "a]", "/vj/" + "{,a}" * 63,
         "/vj/{" + ",".join(f"a{i}" for i in range(300)) + "}", "/vj/" + "*/" * 120 + "*"]


# -- OSC encoding (by hand: the flood must be able to lie) ------------------------------------------------------
def _s(text: str | bytes) -> bytes:
    b = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return b + b"\x00" * (4 - len(b) % 4)


def message(address: str, tags: str = "", *payload: bytes) -> bytes:
    return _s(address) + _s("," + tags) + b"".join(payload)


def f32(x: float) -> bytes:
    return struct.pack(">f", x)


def bundle(*elements: bytes) -> bytes:
    return b"#bundle\x00" + b"\x00" * 7 + b"\x01" + b"".join(struct.pack(">i", len(e)) + e for e in elements)


def wild_pattern(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return rng.choice(WORST)
    parts = []
    for _ in range(rng.randint(1, 4)):
        toks = []
        for _ in range(rng.randint(1, 40)):
            r = rng.random()
            if r < 0.3:
                toks.append("*" * rng.randint(1, 20))
            elif r < 0.45:
                toks.append("?")
            elif r < 0.6:
                toks.append("[" + "".join(rng.choice("abcdefz-!") for _ in range(rng.randint(1, 5))) + "]")
            elif r < 0.75:
                toks.append("{" + ",".join(rng.choice(["a", "mount", "", "gan", "zoom", "x"])
                                           for _ in range(rng.randint(1, 12))) + "}")
            else:
                toks.append(rng.choice("abcdefghijklmnopqrstuvwxyz_"))
        parts.append("".join(toks))
    return ("/vj/" + "/".join(parts))[:256]


def flood_packet(rng: random.Random, kind: int | None = None) -> bytes:
    k = rng.randrange(100) if kind is None else kind
    if k < 55:
        return message(rng.choice(FADERS), "f", f32(rng.random()))
    if k < 65:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 512)))
    if k < 70:
        return message(rng.choice(FADERS), "f", f32(rng.choice([float("nan"), float("inf"), float("-inf")])))
    if k < 75:
        return message(rng.choice(FADERS), "s", _s("+" + "9" * rng.randint(300, 2000)))
    if k < 80:
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 32)))
        return message(rng.choice(FADERS), "b", struct.pack(">i", rng.choice([10**6, 2**31 - 1, -5, len(blob) + 64])),
                       blob)
    if k < 90:
        inner = [flood_packet(rng, rng.choice([0, 30, 60, 67, 72, 77, 95])) for _ in range(rng.randint(2, 8))]
        inner = [e for e in inner if len(e) % 4 == 0 and e[:1] in (b"/", b"#")]
        if rng.random() < 0.3:
            inner = [bundle(*inner)]
        return bundle(*inner) if inner else bundle(message(FADERS[0], "f", f32(0.9)))
    return message(wild_pattern(rng), "f", f32(rng.random()))


def packet_pool(n: int, seed: int = 0, valid_only: bool = False) -> list[bytes]:
    rng = random.Random(seed)
    return [flood_packet(rng, 0 if valid_only else None)[:8192] for _ in range(n)]


# -- the run ----------------------------------------------------------------------------------------------------
def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _cpu_s(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far [s] (/proc/PID/stat fields 14 and 15)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _send(port: int, rate: float, pool: list[bytes], on: threading.Event, stop: threading.Event) -> int:
    """Send ``rate`` packets/s from ``pool`` while ``on`` is set, until ``stop``; returns the number sent."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    sent, i = 0, 0
    try:
        while not stop.is_set():
            if not on.wait(0.05):
                continue
            t0, n0 = time.monotonic(), 0
            while on.is_set() and not stop.is_set():
                due = int((time.monotonic() - t0) * rate)
                while n0 < due:
                    try:
                        sock.sendto(pool[i % len(pool)], ("127.0.0.1", port))
                    except OSError:
                        pass  # a full socket buffer: that packet is lost, as on a network
                    n0 += 1
                    i += 1
                time.sleep(0.005)
            sent += n0
    finally:
        sock.close()
    return sent


def run_soak(minutes: float = 60.0, rate: float = 1000.0, baseline_s: float = 60.0, input_spec: str | None = None,
             model: str = "cppn", size: str = "1280x720", extra: list[str] | None = None,
             startup_timeout_s: float = 120.0, valid_only: bool = False, interleave_s: float = 0.0) -> dict:
    """Run one soak and return the summary (see the module docstring).

    With ``interleave_s`` > 0 the flood period alternates ``interleave_s`` seconds of flood with as many quiet
    (their rows count as no-flood), so slow changes in the machine's other load cancel out.
    """
    phases = [(False, baseline_s)]
    if interleave_s > 0:
        left = minutes * 60
        while left > 0:
            phases += [(True, min(interleave_s, left)), (False, interleave_s)]
            left -= interleave_s
    else:
        phases.append((True, minutes * 60))
    input_spec = input_spec or f"file:{DEFAULT_INPUT}"
    w, h = (int(x) for x in size.split("x"))
    server = XvfbServer((w, h))
    display = server.start()
    port = _free_udp_port()
    pool = packet_pool(5000, valid_only=valid_only)
    rss: list[tuple[float, float]] = []
    sent = 0
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.jsonl"
        cmd = [sys.executable, "-m", "vj", "live", "--model", model, "--input", input_spec, "--size", size,
               "--stats", str(stats), "--osc-port", str(port), *(extra or [])]
        if input_spec.startswith("file:"):
            cmd.append("--loop")
        env = dict(os.environ, DISPLAY=display, XDG_CONFIG_HOME=str(Path(tmp) / "config"))
        err_path = Path(tmp) / "stderr.txt"
        with open(err_path, "w") as err_fh:
            proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err_fh)
        stop = threading.Event()
        alive = False
        try:
            deadline = time.monotonic() + startup_timeout_s
            while not read_stats(stats) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            t_start = time.monotonic()

            def sample_for(seconds: float) -> None:
                end = time.monotonic() + seconds
                while time.monotonic() < end and proc.poll() is None:
                    r = _rss_mb(proc.pid)
                    if r is not None:
                        rss.append((time.monotonic() - t_start, r))
                    time.sleep(min(5.0, max(0.0, end - time.monotonic())))

            on, result, bounds = threading.Event(), {}, []
            sender = threading.Thread(target=lambda: result.setdefault("sent", _send(port, rate, pool, on, stop)))
            sender.start()
            cpu = {True: [0.0, 0.0], False: [0.0, 0.0]}  # phase kind → [CPU seconds, wall seconds]
            for flooding, seconds in phases:
                bounds.append((len(read_stats(stats)), flooding))
                (on.set if flooding else on.clear)()
                c0, w0 = _cpu_s(proc.pid), time.monotonic()
                sample_for(seconds)
                c1 = _cpu_s(proc.pid)
                if c0 is not None and c1 is not None:
                    cpu[flooding][0] += c1 - c0
                    cpu[flooding][1] += time.monotonic() - w0
            on.clear()
            stop.set()
            sender.join()
            sent = result.get("sent", 0)
            time.sleep(1.0)
            alive = proc.poll() is None
            if alive:
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            stop.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            server.stop()
        rows = read_stats(stats)
        err = err_path.read_text(errors="replace")
    bounds.append((len(rows), False))
    base_rows, flood_rows = [], []
    for k, ((start, flooding), (end, _)) in enumerate(zip(bounds, bounds[1:])):
        (flood_rows if flooding else base_rows).extend(rows[start + (3 if k == 0 else 2) : end])
    base = [r["display_fps"] for r in base_rows]
    flood = [r["display_fps"] for r in flood_rows]
    gaps = [b["t_s"] - a["t_s"] for a, b in zip(rows, rows[1:])]
    m = re.search(r"osc: (\d+) packets, (\d+) messages handled, (\d+) ignored \((\d+) over budget\)", err)
    rss_end = rss[-1][1] if rss else None
    rss_1min = next((r for t, r in rss if t >= 60.0), rss[0][1] if rss else None)
    med_base = statistics.median(base) if base else None
    med_flood = statistics.median(flood) if flood else None
    return {
        "machine": _cpu(),
        "input": input_spec.replace(str(TESTDATA), "testdata"),
        "model": model,
        "size": size,
        "minutes": minutes,
        "rate_packets_s": rate,
        "flood": "valid fader moves only" if valid_only else "mixed",
        "baseline_s": baseline_s,
        "interleave_s": interleave_s,
        "rows_no_flood": len(base), "rows_flood": len(flood),
        "stats_rows": len(rows),
        "display_fps_median_no_flood": med_base,
        "display_fps_median_flood": med_flood,
        "display_ratio": round(med_flood / med_base, 3) if med_base and med_flood else None,
        "gan_fps_median_no_flood": statistics.median(r["gan_fps"] for r in base_rows) if base else None,
        "gan_fps_median_flood": statistics.median(r["gan_fps"] for r in flood_rows) if flood else None,
        "vj_cpu_cores_no_flood": round(cpu[False][0] / cpu[False][1], 3) if cpu[False][1] else None,
        "vj_cpu_cores_flood": round(cpu[True][0] / cpu[True][1], 3) if cpu[True][1] else None,
        "longest_stats_gap_s": round(max(gaps), 3) if gaps else None,
        "rss_mb_at_1min": round(rss_1min, 1) if rss_1min else None,
        "rss_mb_end": round(rss_end, 1) if rss_end else None,
        "rss_growth_pct": round(100.0 * (rss_end - rss_1min) / rss_1min, 2) if rss_end and rss_1min else None,
        "packets_sent": sent,
        "vj_packets": int(m.group(1)) if m else None,
        "vj_handled": int(m.group(2)) if m else None,
        "vj_ignored": int(m.group(3)) if m else None,
        "vj_over_budget": int(m.group(4)) if m else None,
        "exit_code": proc.returncode,
        "alive_at_end": alive,
        "traceback": "Traceback" in err,
        "warnings": [line for line in err.splitlines() if "Warning" in line][:5],
        "stderr_tail": err.strip().splitlines()[-3:],
    }


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = re.search(r"Model name:\s*(.+)", out).group(1).strip()
        return f"{name}, {os.cpu_count()} cores"
    except Exception:  # noqa: BLE001
        return f"{os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="flood duration [min] (default 60)")
    ap.add_argument("--rate", type=float, default=1000.0, help="flood packets per second (default 1000)")
    ap.add_argument("--baseline-s", type=float, default=60.0, help="seconds without traffic first (default 60)")
    ap.add_argument("--input", help=f"vj live --input (default file:{DEFAULT_INPUT}, looped)")
    ap.add_argument("--model", default="cppn")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--interleave-s", type=float, default=0.0,
                    help="alternate this many seconds of flood and of quiet after the baseline (default 0: flood "
                         "throughout)")
    ap.add_argument("--valid-only", action="store_true", help="flood with valid fader moves only (comparison)")
    ap.add_argument("rest", nargs="*", help="extra vj live arguments (after --)")
    a = ap.parse_args()
    print(json.dumps(run_soak(a.minutes, a.rate, a.baseline_s, a.input, a.model, a.size, a.rest,
                              valid_only=a.valid_only, interleave_s=a.interleave_s)))


if __name__ == "__main__":
    main()
