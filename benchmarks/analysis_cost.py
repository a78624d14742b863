"""CPU cost of :meth:`vj.audio.analysis.StreamingAnalyzer.process` per hop, as a share of the hop's duration.

    python benchmarks/analysis_cost.py [--seconds 20] [--hop 512]

Feeds the annotated pop clip (or the demo if the test data is absent) hop by hop and times every call with
``time.thread_time`` (CPU time) and ``time.perf_counter`` (wall); prints per-hop figures [µs] and the mean CPU
time as a percentage of the hop duration (hop_size / sample_rate), for the default configuration and a few variants. The goal is ≤ 5% of one core (≈ 580 µs for 512 samples at 44.1 kHz).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TESTDATA = Path(os.environ.get("VJ_TESTDATA", ROOT.parent / "shared" / "testdata"))

from vj.audio.analysis import AnalysisConfig, StreamingAnalyzer  # noqa: E402
from vj.audio.decode import load_audio  # noqa: E402


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def time_hops(y: np.ndarray, sr: int, hop: int, cfg: AnalysisConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-hop (CPU time of this thread, wall time) [s], without the first 2 s (warm-up)."""
    an = StreamingAnalyzer(sr, hop, cfg)
    n = len(y) // hop
    cpu = np.zeros(n)
    wall = np.zeros(n)
    tc, tw = time.thread_time, time.perf_counter
    for i in range(n):
        h = y[i * hop : (i + 1) * hop]
        c0, w0 = tc(), tw()
        an.process(h)
        cpu[i], wall[i] = tc() - c0, tw() - w0
    skip = int(2.0 * sr / hop)
    return cpu[skip:], wall[skip:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="audio to analyse per configuration [s]")
    ap.add_argument("--hop", type=int, default=512, help="hop size [samples]")
    args = ap.parse_args()
    src = TESTDATA / "annotated" / "easy_example.flac"
    y, sr = load_audio(src if src.is_file() else "demo")
    y = y[: int(args.seconds * sr)]
    hop_us = args.hop / sr * 1e6
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs visible), Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    print(f"hop {args.hop} samples at {sr} Hz = {hop_us:.0f} µs; {len(y) / sr:.0f} s of "
          f"{src.name if src.is_file() else 'demo'}\n")
    print("| configuration | CPU mean µs | CPU median µs | CPU p99 µs | CPU mean % of hop | wall median µs "
          "| wall p99 µs |")
    print("|---|---|---|---|---|---|---|")
    variants = [
        ("default (specflux, yinfast 1024, beat clock)", AnalysisConfig()),
        ("pitch yin 1024", AnalysisConfig(pitch_method="yin")),
        ("pitch yinfast 2048", AnalysisConfig(pitch_buf_size=2048)),
        ("beat tracker = aubio tempo", AnalysisConfig(beat_tracker="aubio")),
    ]
    for name, cfg in variants:
        c, w = (a * 1e6 for a in time_hops(y, sr, args.hop, cfg))
        print(f"| {name} | {c.mean():.0f} | {np.median(c):.0f} | {np.percentile(c, 99):.0f} "
              f"| {100 * c.mean() / hop_us:.1f}% | {np.median(w):.0f} | {np.percentile(w, 99):.0f} |")
    print("\nCPU = time.thread_time() (this thread's CPU time: not inflated when other processes hold the core);"
          "\nwall = time.perf_counter(), which on a shared machine also counts time spent preempted.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
