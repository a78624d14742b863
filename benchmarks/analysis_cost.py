"""CPU cost of :meth:`vj.audio.analysis.StreamingAnalyzer.process` per hop, as a share of the hop's duration.

    python benchmarks/analysis_cost.py [--seconds 20] [--hop 512]

Feeds the annotated pop clip (or the demo if the test data is absent) hop by hop and times every call with
``time.perf_counter``; prints mean / median / 99th percentile / max per hop [µs] and the mean as a percentage of
the hop duration (hop_size / sample_rate), for the default configuration and a few variants. The goal is ≤ 5% of one core (≈ 580 µs for 512 samples at 44.1 kHz).
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


def time_hops(y: np.ndarray, sr: int, hop: int, cfg: AnalysisConfig) -> np.ndarray:
    an = StreamingAnalyzer(sr, hop, cfg)
    n = len(y) // hop
    out = np.zeros(n)
    clock = time.perf_counter
    for i in range(n):
        h = y[i * hop : (i + 1) * hop]
        t0 = clock()
        an.process(h)
        out[i] = clock() - t0
    return out[int(2.0 * sr / hop) :]  # skip the first 2 s (warm-up: caches, beat clock not yet running)


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
    print("| configuration | mean µs | median µs | p99 µs | max µs | mean % of hop |")
    print("|---|---|---|---|---|---|")
    variants = [
        ("default (specflux, yinfast 1024, beat clock)", AnalysisConfig()),
        ("pitch yin 1024", AnalysisConfig(pitch_method="yin")),
        ("pitch yinfast 2048", AnalysisConfig(pitch_buf_size=2048)),
        ("beat tracker = aubio tempo", AnalysisConfig(beat_tracker="aubio")),
    ]
    for name, cfg in variants:
        t = time_hops(y, sr, args.hop, cfg) * 1e6
        print(f"| {name} | {t.mean():.0f} | {np.median(t):.0f} | {np.percentile(t, 99):.0f} | {t.max():.0f} "
              f"| {100 * t.mean() / hop_us:.1f}% |")
    print("\n(max includes scheduler noise on a shared machine; p99 is the better guide to worst-case cost)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
