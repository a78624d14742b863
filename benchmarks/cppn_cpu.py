"""Throughput of the CPPN generator on the CPU; prints a markdown table.

    python benchmarks/cppn_cpu.py [--resolution 128] [--batch 1 8] [--threads 1 2] [--repeat 40]

For each (threads, batch) it times ``repeat`` calls of :class:`vj.models.cppn.CPPN` on fresh random inputs
(after 3 warm-up calls) and reports the best and the median time per call and the frames per second they imply
(``batch / time``). The best time is what the code can do; the median is what it did on a machine that may be
shared (the load average before the run is printed with the CPU model).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from vj.models.cppn import CPPN  # noqa: E402


def cpu_model() -> str:
    """``lscpu``'s model name (or platform.processor() where lscpu is missing)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def time_calls(gen: CPPN, batch: int, repeat: int) -> list[float]:
    """Seconds per call of ``gen`` on ``batch`` random inputs, ``repeat`` times (after 3 warm-up calls)."""
    g = torch.Generator().manual_seed(0)
    times = []
    for i in range(repeat + 3):
        noise = torch.randn(batch, 128, generator=g).clamp(-2, 2) * 0.6
        cv = torch.zeros(batch, 1000)
        cv[torch.arange(batch), torch.randint(0, 1000, (batch,), generator=g)] = 1.0
        t0 = time.perf_counter()
        gen(noise, cv, 0.6)
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=40)
    args = p.parse_args(argv)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical cores), load average {load:.2f}; "
          f"torch {torch.__version__}, Python {platform.python_version()}")
    print()
    print("| resolution | threads | batch | best ms/call | median ms/call | fps (best) | fps (median) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    gen = CPPN(resolution=args.resolution, seed=0)
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch in args.batch:
            ts = time_calls(gen, batch, args.repeat)
            best, med = min(ts), statistics.median(ts)
            print(f"| {args.resolution} | {threads} | {batch} | {best * 1e3:.1f} | {med * 1e3:.1f} | "
                  f"{batch / best:.0f} | {batch / med:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
