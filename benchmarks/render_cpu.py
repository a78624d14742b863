"""Render throughput of `vj render` at 128 px: CPPN vs BigGAN-deep-128 (random weights in the published format).

Renders the bundled demo with each generator in one process, interleaved over several rounds (the machine is shared
and noisy: compare the ratios), and prints one JSON line per run plus a median table. Throughput is frames written
per second of wall time for the whole render call (decoding, analysis, mapping, model loading, generation,
encoding): what a user waits for.

    python benchmarks/render_cpu.py --duration 10 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from vj.commands.bench import _cpu_name, cached_random_weights
from vj.mapping import MappingSettings
from vj.render import RenderOptions, render


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of the demo to render")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--resolution", type=int, default=128)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    weights = str(cached_random_weights(128))
    cases = [("cppn", "cppn", None, "fp32"), ("biggan-deep-128", "biggan-deep-128", weights, "fp32"),
             ("biggan-deep-128", "biggan-deep-128", weights, "bf16")]
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for label, model, w, precision in cases:
                key = f"{label} {precision}"
                out = Path(tmp) / "bench.mp4"
                t0 = time.perf_counter()
                render(RenderOptions(audio="demo", output=out, duration_s=args.duration, model=model, weights=w,
                                     resolution=(args.resolution, args.resolution), batch_size=args.batch_size,
                                     precision=precision, progress=False, settings=MappingSettings()))
                wall = time.perf_counter() - t0
                frames = round(args.duration * 30)
                fps = frames / wall
                results.setdefault(key, []).append(fps)
                print(json.dumps({"round": r, "impl": key, "frames": frames, "wall_s": round(wall, 2),
                                  "fps": round(fps, 2)}), flush=True)
    print(f"\nmachine: {_cpu_name()}, torch threads = physical cores; demo {args.duration:g} s at 30 fps, "
          f"{args.resolution} px, batch {args.batch_size}")
    base = statistics.median(results["cppn fp32"])
    print(f"{'generator':<26}{'median fps':>12}{'vs CPPN':>10}")
    for key, vals in results.items():
        med = statistics.median(vals)
        print(f"{key:<26}{med:>12.2f}{med / base:>10.2f}")


if __name__ == "__main__":
    main()
