"""Benchmark ``vj live`` in a real window (Xvfb + Mesa llvmpipe here): display fps, generator fps, latency.

Runs ``vj live --model MODEL --input file:RECORDING --duration S --stats FILE`` in a private Xvfb, then summarises
the per-second stats lines after a warm-up: medians of display_fps and gan_fps, the median over seconds of the
per-second latency p50, and the 95th percentile over seconds of the per-second p95 (all from ``--stats``).

Usage::

    python benchmarks/live_xvfb.py --model cppn --duration 20
    python benchmarks/live_xvfb.py --model biggan-deep-128 --weights ~/.cache/vj/bench-weights/... --duration 40

Extra arguments after ``--`` go to ``vj live`` (e.g. ``-- --headless``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from xvfb import XvfbServer  # noqa: E402


def pct(values, q):
    v = sorted(values)
    if not v:
        return None
    pos = (len(v) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="cppn")
    ap.add_argument("--weights")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of stats to ignore at the start")
    ap.add_argument("--input", default=str(ROOT.parent / "shared/testdata/annotated/easy_example.flac"))
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("rest", nargs="*", help="extra vj live arguments (after --)")
    a = ap.parse_args()
    server = XvfbServer((1280, 720))
    display = server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stats = Path(tmp) / "stats.jsonl"
            cmd = [sys.executable, "-m", "vj", "live", "--model", a.model, "--input", f"file:{a.input}",
                   "--duration", str(a.duration), "--stats", str(stats), "--size", a.size, "--osc-port", "0",
                   *a.rest]
            if a.weights:
                cmd += ["--weights", a.weights]
            env = dict(os.environ, DISPLAY=display)
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
            if out.returncode != 0:
                sys.exit(out.stderr)
            lines = [json.loads(x) for x in stats.read_text().splitlines()]
    finally:
        server.stop()
    rows = [r for r in lines if r["t_s"] >= a.warmup and r["t_s"] <= a.duration - 0.5]
    p50 = [r["latency_ms_p50"] for r in rows if r["latency_ms_p50"] is not None]
    p95 = [r["latency_ms_p95"] for r in rows if r["latency_ms_p95"] is not None]
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[0]
    summary = {
        "model": a.model,
        "seconds": len(rows),
        "display_fps_median": statistics.median(r["display_fps"] for r in rows),
        "gan_fps_median": statistics.median(r["gan_fps"] for r in rows),
        "latency_ms_p50_median": statistics.median(p50) if p50 else None,
        "latency_ms_p95_p95": pct(p95, 95),
        "dropped_frames": rows[-1]["dropped_frames"],
        "audio_overflows": rows[-1]["audio_overflows"],
        "load_average_1min_after": float(load),
    }
    print(json.dumps(summary))
    print(out.stderr.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
