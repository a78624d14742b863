"""PSNR of fp16 / bf16 BigGAN-deep against fp32, across truncation and mixed class vectors.

Weights: realistic random weights in the published format (:func:`vj.commands.bench.cached_random_weights`:
converged spectral-norm vectors, batch-norm statistics calibrated on the model's activations), or ``--weights``.

For each truncation in 0.1, 0.2, ..., 1.0 it draws ``--batch`` images (truncated noise, soft mixes of 3 classes,
one one-hot) and compares, over all images and pixels in [-1, 1] (peak-to-peak 2):

* ``mixed`` — :func:`vj.models.fast.to_precision` (low-precision convolutions, fp32 batch-norm maths);
* ``cpu-fast`` — (CPU, bf16) the CPU runner's model: :func:`vj.models.fast.prepare_cpu` (``mixed`` plus NHWC
  and the two-matmul attention with an fp32 softmax);
* ``naive`` — the whole model cast with ``.to(dtype)`` (statistics and truncation in low precision too),
  for comparison (``--naive``).

Prints one JSON line per (dtype, variant, truncation) and a summary line per (dtype, variant) with the worst and
the mean PSNR [dB]. fp16 convolutions on CPUs without native fp16 arithmetic are very slow: on the CPU fp16 runs
only at the truncations given by ``--fp16-truncations``.

Usage::

    python benchmarks/numerics.py --device cpu --dtype bfloat16 --dtype float16 --naive
    python benchmarks/numerics.py --device cuda --resolution 256 --dtype float16 --dtype bfloat16 --naive
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--resolution", type=int, default=128, choices=(128, 256, 512))
    p.add_argument("--channel-width", type=int, default=128)
    p.add_argument("--weights", default=None)
    p.add_argument("--dtype", action="append", choices=("float16", "bfloat16"), default=None)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--naive", action="store_true", help="also time the naive whole-model cast")
    p.add_argument("--fp16-truncations", default="0.1,0.5,1.0", help="CPU only: truncations for fp16")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from vj.commands.bench import cached_random_weights
    from vj.models import load_generator
    from vj.models.fast import physical_cores, psnr, to_precision

    torch.set_num_threads(args.threads or physical_cores())
    device = torch.device(args.device)
    weights = args.weights or cached_random_weights(args.resolution, args.channel_width, args.seed)
    name = f"biggan-deep-{args.resolution}"

    def load():
        return load_generator(name, weights=weights, device=device, download=False)

    ref = load()
    dtypes = args.dtype or ["bfloat16", "float16"]
    truncs = [round(0.1 * k, 1) for k in range(1, 11)]
    fp16_cpu = [float(x) for x in args.fp16_truncations.split(",")]
    summary = []
    for dt_name in dtypes:
        dt = getattr(torch, dt_name)
        variants = {"mixed": to_precision(load(), dt)}
        if device.type == "cpu" and dt == torch.bfloat16:
            from vj.models.fast import prepare_cpu

            variants["cpu-fast"] = prepare_cpu(load(), dtype=dt, threads=torch.get_num_threads())
        if args.naive:
            variants["naive"] = load().to(dt)
        for vname, gen in variants.items():
            values = []
            ts = fp16_cpu if (dt == torch.float16 and device.type == "cpu") else truncs
            for i, t in enumerate(ts):
                g = torch.Generator().manual_seed(1000 + i)
                z = (torch.randn(args.batch, 128, generator=g).clamp(-2, 2) * t).to(device)
                c = torch.zeros(args.batch, 1000)
                for j in range(args.batch):
                    idx = torch.randperm(1000, generator=g)[:3]
                    c[j, idx] = torch.rand(3, generator=g) + 0.1
                    c[j] /= c[j].sum()
                c[0] = 0.0
                c[0, (37 * i) % 1000] = 1.0
                c = c.to(device)
                t0 = time.perf_counter()
                with torch.inference_mode():
                    y32 = ref(z, c, t)
                    if vname == "naive":
                        y = gen(z.to(dt), c.to(dt), t)
                    else:
                        y = gen(z, c, t)
                finite = bool(torch.isfinite(y).all())
                db = psnr(y, y32)
                values.append(db)
                print(json.dumps({"dtype": dt_name, "variant": vname, "truncation": t, "psnr_db": round(db, 2),
                                  "finite": finite, "s": round(time.perf_counter() - t0, 2)}), flush=True)
            finite_vals = [v for v in values if not math.isnan(v)]
            row = {"dtype": dt_name, "variant": vname, "summary": True, "n_truncations": len(values),
                   "psnr_min_db": round(min(finite_vals), 2) if finite_vals else None,
                   "psnr_mean_db": round(sum(finite_vals) / len(finite_vals), 2) if finite_vals else None,
                   "nan": len(values) - len(finite_vals), "device": device.type,
                   "resolution": args.resolution, "batch": args.batch}
            summary.append(row)
            print(json.dumps(row), flush=True)
            del gen
    for row in summary:
        print(f"| {row['dtype']} | {row['variant']} | {row['n_truncations']} | {row['psnr_min_db']} | "
              f"{row['psnr_mean_db']} |", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
