"""BigGAN-deep-128 forward time on the CPU: vj's implementation vs the reference package, same process, fp32.

Both models hold the same full-size random weights in the published format (vj.models.biggan.random_state_dict:
spectral-norm vectors converged, batch-norm statistics randomised), so the work is that of the real model.
Calls alternate between the two implementations (ours, reference, ours, ...) so that changes in machine load hit
both alike. Prints a Markdown table: best and median ms per image, and the reference/ours ratio of the medians.

Usage: python benchmarks/biggan_cpu.py [--batch 1 4] [--repeat 5] [--threads N] [--truncation 0.4]
Needs the test extra (pytorch-pretrained-biggan).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time

import torch


def _cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--repeat", type=int, default=5, help="timed calls per implementation and batch size")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--truncation", type=float, default=0.4)
    ap.add_argument("--channels-last", action="store_true", help="also time ours in channels_last")
    args = ap.parse_args()

    from pytorch_pretrained_biggan import BigGAN, BigGANConfig as RefConfig

    from vj.models.biggan import CONFIGS, BigGANDeep, random_state_dict

    if args.threads:
        torch.set_num_threads(args.threads)
    config = CONFIGS["biggan-deep-128"]
    sd = random_state_dict(config, seed=0)
    ref = BigGAN(RefConfig())
    ref.load_state_dict(sd, strict=True)
    ref.eval()
    models = {"vj": BigGANDeep.from_published(config, sd), "reference": ref}
    if args.channels_last:
        models["vj channels_last"] = BigGANDeep.from_published(config, sd).to(memory_format=torch.channels_last)

    print(f"CPU: {_cpu_name()}, {os.cpu_count()} logical cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} at start")
    print()
    print("| batch | implementation | best ms/image | median ms/image | reference/vj (median) |")
    print("|---:|---|---:|---:|---:|")
    g = torch.Generator().manual_seed(1)
    for n in args.batch:
        z = 0.5 * torch.randn(n, 128, generator=g)
        c = torch.softmax(3 * torch.randn(n, 1000, generator=g), dim=1)
        times: dict[str, list[float]] = {k: [] for k in models}
        with torch.no_grad():
            for m in models.values():  # warm-up (allocator, oneDNN primitive caches)
                m(z, c, args.truncation)
            for _ in range(args.repeat):
                for name, m in models.items():
                    t0 = time.perf_counter()
                    m(z, c, args.truncation)
                    times[name].append((time.perf_counter() - t0) / n * 1e3)
        ref_med = statistics.median(times["reference"])
        for name, ts in times.items():
            med = statistics.median(ts)
            ratio = f"{ref_med / med:.2f}" if name != "reference" else ""
            print(f"| {n} | {name} | {min(ts):.0f} | {med:.0f} | {ratio} |")
    print()
    print(f"load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
