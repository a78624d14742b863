"""``vj bench``: time BigGAN-deep implementations side by side in one process.

Prints one JSON object per line (stdout), one per implementation the machine can run::

    {"impl": "ours", "device": "cpu", "dtype": "float32", "batch": 1, "resolution": 128,
     "ms_median": 183.2, "ms_p99": 190.1, "fps": 5.46, ...}

``fps`` is images per second (``batch * 1000 / ms_median``); ``ms_min`` is the fastest iteration;
``speedup_vs_reference`` is the median over rounds of (reference ms / this ms) in the same round — the
implementations run interleaved, one call each per round, so this ratio is robust to load on a shared machine.
Implementations:

* ``reference`` — the pytorch-pretrained-biggan package (test-only dependency), eager fp32;
* ``ours`` — :func:`vj.models.load_generator`, eager, in the chosen dtypes (fp32 and, where the device runs
  them, fp16/bf16 via :func:`vj.models.fast.to_precision`);
* ``ours-fast`` — the runner the live engine uses (:func:`vj.engine.gpu.make_runner`): on CPU the fast path
  (channels_last, inference_mode, uint8 RGBA out); on CUDA fp16 + CUDA graph, uint8 RGBA out;
* ``cppn`` — :mod:`vj.models.cppn`, when that module exists.

All run on the same inputs; warm-up iterations are excluded. One timer and one span for every implementation:
``time.perf_counter`` from the call until its result is complete — on CUDA until ``torch.cuda.synchronize``
returns after the call, so queued GPU work is inside the span. What the result is differs and is stated per row
(``span``): ``reference``/``ours``/``cppn`` end with float images in device memory, ``ours-fast`` with uint8 RGBA
frames in host memory (it includes the host-to-device input copy and the device-to-host frame copy).
Something the machine cannot run is skipped with one note line on stderr.

By default the weights are random but realistic (converged spectral-norm vectors, batch-norm statistics
calibrated on the model's own activations and jittered per truncation slot), written in the published
``pytorch_model.bin`` + ``config.json`` format to a temporary folder, so no download is needed.
"""

from __future__ import annotations

HELP = "time BigGAN-deep implementations (reference, ours, fp16/bf16, CUDA graph) side by side"

IMPLS = ("reference", "ours", "ours-fast", "cppn")

def configure(parser) -> None:
    """Add the ``bench`` arguments."""
    from vj.commands._args import ranged

    parser.add_argument("--device", default="auto",
                        help="auto (CUDA when available, else the CPU), cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--batch", type=ranged(int, 1, 256), action="append", default=None,
                        help="images per forward pass (repeatable; default 1)")
    parser.add_argument("--resolution", type=int, choices=(128, 256, 512), action="append", default=None,
                        help="model resolution in pixels (repeatable; default 128)")
    parser.add_argument("--iters", type=ranged(int, 1, 100000), default=20, help="timed iterations (default 20)")
    parser.add_argument("--warmup", type=ranged(int, 0, 10000), default=3,
                        help="untimed warm-up iterations (default 3)")
    parser.add_argument("--weights", default=None,
                        help="folder with pytorch_model.bin + config.json (default: realistic random weights)")
    parser.add_argument("--impl", action="append", choices=IMPLS, default=None,
                        help="only these implementations (repeatable; default all the machine can run)")
    parser.add_argument("--dtype", action="append", choices=("float32", "float16", "bfloat16"), default=None,
                        help="only these dtypes for 'ours' (repeatable; default fp32 + the device's fast dtypes)")
    parser.add_argument("--threads", type=ranged(int, 1, 1024), default=None,
                        help="CPU threads (default: physical cores)")
    parser.add_argument("--channel-width", type=ranged(int, 4, 128), default=128,
                        help="channel width of the random weights (default 128, the published size; "
                             "smaller is for quick checks only)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random weights and inputs")


# --------------------------------------------------------------------------------------------------------
# Realistic random weights in the published format
# --------------------------------------------------------------------------------------------------------


def realistic_state_dict(resolution: int = 128, channel_width: int = 128, seed: int = 0):
    """Random BigGAN-deep weights in the published state-dict format, realistic enough for numerics and timing.

    Starts from :func:`vj.models.biggan.random_state_dict` (Gaussian weights, converged spectral-norm vectors,
    non-zero attention gamma) and replaces every batch norm's 51 per-truncation statistics with ones measured on
    the model's own activations (:func:`_calibrate`), so activations stay normalised through all blocks and the
    image has a realistic range (per-channel std ~0.3-0.4 in [-1, 1], not flat, not saturated).

    Args:
        resolution: 128, 256 or 512 [pixels].
        channel_width: 128 for the published size; 4-32 for tiny, fast test models.
        seed: random seed (same seed, same weights).

    Returns:
        ``(config, state_dict)``: :class:`vj.models.biggan.BigGANConfig` and ``{key: float32 tensor}`` loadable by
        :func:`vj.models.load_generator` and by pytorch-pretrained-biggan.

    Raises:
        VJError: resolution not 128, 256 or 512.
    """
    import dataclasses

    import torch

    from vj.errors import VJError
    from vj.models import biggan

    key = f"biggan-deep-{int(resolution)}"
    if key not in biggan.CONFIGS:
        raise VJError(f"resolution {resolution} not supported (choose 128, 256 or 512)")
    config = dataclasses.replace(biggan.CONFIGS[key], channel_width=int(channel_width))
    config.validate()
    sd = biggan.random_state_dict(config, seed=int(seed))
    _calibrate(sd, config, torch.Generator().manual_seed(int(seed) + 1))
    return config, sd


def _calibrate(sd, config, g, batch: int = 4, anchors=(0.2, 0.6, 1.0)) -> None:
    """Fill every ``running_means``/``running_vars`` from the activations of a plain fp32 forward pass.

    The pass normalises each batch norm's input with that input's own per-channel batch statistics and
    records them, at each anchor truncation; slot k (truncation k/(n_stats-1)) then gets the statistics
    linearly interpolated between anchors, times a small per-slot jitter.
    """
    import torch
    import torch.nn.functional as F

    def baked(prefix):
        w = sd[prefix + ".weight_orig"]
        sigma = torch.dot(sd[prefix + ".weight_u"], w.reshape(w.shape[0], -1) @ sd[prefix + ".weight_v"])
        return w / sigma

    z_dim, n_stats, ch = config.z_dim, config.n_stats, config.channel_width
    eps, num_classes = config.eps, config.num_classes
    measured: dict[str, list] = {}

    def norm(x, prefix, cvec):
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        measured.setdefault(prefix, []).append((mean, var))
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var + eps)[None, :, None, None]
        if cvec is None:
            return y * sd[prefix + ".weight"][None, :, None, None] + sd[prefix + ".bias"][None, :, None, None]
        scale = 1.0 + cvec @ baked(prefix + ".scale").t()
        offset = cvec @ baked(prefix + ".offset").t()
        return y * scale[:, :, None, None] + offset[:, :, None, None]

    with torch.inference_mode():
        for t in anchors:
            z = torch.randn(batch, z_dim, generator=g).clamp(-2, 2) * t
            cls = torch.zeros(batch, num_classes)
            idx = torch.randint(0, num_classes, (batch, 2), generator=g)
            cls[torch.arange(batch), idx[:, 0]] = 1.0
            cls[torch.arange(batch), idx[:, 1]] += torch.rand(batch, generator=g)
            cvec = torch.cat([z, cls @ sd["embeddings.weight"].t()], dim=1)
            x = F.linear(cvec, baked("generator.gen_z"), sd["generator.gen_z.bias"])
            x = x.view(batch, 4, 4, 16 * ch).permute(0, 3, 1, 2).contiguous()
            i = 0
            for pos, (up, cin, cout) in enumerate(config.layers):
                if pos == config.attention_layer_position:
                    p = f"generator.layers.{i}"
                    n, c, h, w = x.shape
                    theta = F.conv2d(x, baked(p + ".snconv1x1_theta")).flatten(2)
                    phi = F.max_pool2d(F.conv2d(x, baked(p + ".snconv1x1_phi")), 2).flatten(2)
                    gg = F.max_pool2d(F.conv2d(x, baked(p + ".snconv1x1_g")), 2).flatten(2)
                    attn = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)
                    o = (gg @ attn.transpose(1, 2)).view(n, c // 2, h, w)
                    x = x + sd[p + ".gamma"] * F.conv2d(o, baked(p + ".snconv1x1_o_conv"))
                    i += 1
                p = f"generator.layers.{i}"
                x0 = x
                y = F.relu(norm(x, p + ".bn_0", cvec))
                y = F.conv2d(y, baked(p + ".conv_0"), sd[p + ".conv_0.bias"])
                y = F.relu(norm(y, p + ".bn_1", cvec))
                if up:
                    y = F.interpolate(y, scale_factor=2, mode="nearest")
                y = F.conv2d(y, baked(p + ".conv_1"), sd[p + ".conv_1.bias"], padding=1)
                y = F.relu(norm(y, p + ".bn_2", cvec))
                y = F.conv2d(y, baked(p + ".conv_2"), sd[p + ".conv_2.bias"], padding=1)
                y = F.relu(norm(y, p + ".bn_3", cvec))
                y = F.conv2d(y, baked(p + ".conv_3"), sd[p + ".conv_3.bias"])
                if cin != cout:
                    x0 = x0[:, : x0.shape[1] // 2]
                if up:
                    x0 = F.interpolate(x0, scale_factor=2, mode="nearest")
                x = y + x0
                i += 1
            norm(x, "generator.bn", None)

    ts = torch.tensor(anchors)
    for prefix, stats in measured.items():
        means = torch.stack([m for m, _ in stats])  # [anchors, C]
        vars_ = torch.stack([v for _, v in stats])
        slots_t = torch.linspace(0.0, 1.0, n_stats)
        hi = torch.searchsorted(ts, slots_t).clamp(1, len(anchors) - 1)
        lo = hi - 1
        w = ((slots_t - ts[lo]) / (ts[hi] - ts[lo])).clamp(0.0, 1.0)[:, None]
        mean = means[lo] * (1 - w) + means[hi] * w
        var = vars_[lo] * (1 - w) + vars_[hi] * w
        std = var.sqrt()
        sd[prefix + ".running_means"] = mean + 0.05 * std * torch.randn(mean.shape, generator=g)
        sd[prefix + ".running_vars"] = var * torch.exp(0.05 * torch.randn(var.shape, generator=g))


def write_random_weights(folder, resolution: int = 128, channel_width: int = 128, seed: int = 0):
    """Write :func:`realistic_state_dict` weights as ``pytorch_model.bin`` + ``config.json`` (published format).

    Args:
        folder: destination folder (created if missing).
        resolution: 128, 256 or 512 [pixels].
        channel_width: 128 for the published size; 4-32 for tiny, fast test models.
        seed: random seed.

    Returns:
        pathlib.Path of ``folder``.
    """
    import json
    from pathlib import Path

    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config, sd = realistic_state_dict(resolution, channel_width, seed)
    torch.save(sd, folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    return folder


def cached_random_weights(resolution: int = 128, channel_width: int = 128, seed: int = 0):
    """:func:`write_random_weights` into ``$XDG_CACHE_HOME/vj/bench-weights`` once; later calls reuse it.

    Building full-size weights takes ~20 s on 2 cores (power iterations and calibration); the folder is
    ~200 MB at 128 px. Written to a temporary folder and renamed, so an interrupted build leaves no half files.

    Returns:
        pathlib.Path of the folder holding ``pytorch_model.bin`` + ``config.json``.
    """
    import os
    import shutil
    import tempfile
    from pathlib import Path

    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vj" / "bench-weights"
    folder = root / f"biggan-deep-{resolution}-w{channel_width}-s{seed}-v1"
    if (folder / "pytorch_model.bin").is_file() and (folder / "config.json").is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".build-"))
    try:
        write_random_weights(tmp, resolution, channel_width, seed)
        try:
            tmp.rename(folder)
        except OSError:  # another process finished first
            if not (folder / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _note(text: str) -> None:
    import sys

    print(f"vj bench: note: {text}", file=sys.stderr, flush=True)


class _Case:
    """One implementation to time: ``fn()`` does one forward pass of ``batch`` images."""

    def __init__(self, impl, dtype, fn, resolution, flush_denormal=False, timer="perf_counter", **extra):
        self.impl, self.dtype, self.fn, self.resolution = impl, dtype, fn, resolution
        self.flush_denormal, self.timer, self.extra = flush_denormal, timer, extra
        self.times_ms: list[float] = []


def _inputs(batch: int, seed: int, device):
    """Same inputs for every implementation: truncated noise (truncation 0.5) and soft mixes of 3 classes."""
    import torch

    g = torch.Generator().manual_seed(seed + 7)
    trunc = 0.5
    z = torch.randn(batch, 128, generator=g).clamp_(-2.0, 2.0) * trunc
    c = torch.zeros(batch, 1000)
    for i in range(batch):
        idx = torch.randperm(1000, generator=g)[:3]
        c[i, idx] = torch.rand(3, generator=g) + 0.1
        c[i] /= c[i].sum()
    return z.to(device), c.to(device), trunc


_SPAN_DEVICE = "device inputs -> float images in device memory (synchronized)"
_SPAN_CPU = "inputs -> float images"


def _cases(args, device, weights, resolution: int, batch: int, wanted_impls, wanted_dtypes):
    """Build the implementations the machine can run (notes on stderr for the others)."""
    import torch

    from vj.models import load_generator
    from vj.models.fast import to_precision

    cuda = device.type == "cuda"
    z, c, trunc = _inputs(batch, args.seed, device)
    name = f"biggan-deep-{resolution}"
    cases: list[_Case] = []
    timer = "perf_counter"

    def load():
        return load_generator(name, weights=weights, device=device, download=False)

    if "reference" in wanted_impls:
        try:
            from pytorch_pretrained_biggan import BigGAN
        except ImportError:
            _note("reference skipped: pytorch-pretrained-biggan is not installed "
                  "(pip install pytorch-pretrained-biggan)")
        else:
            import logging

            logging.getLogger("pytorch_pretrained_biggan").setLevel(logging.CRITICAL)
            try:
                ref = BigGAN.from_pretrained(str(weights)).to(device).eval()
            except Exception as exc:  # noqa: BLE001 - e.g. safetensors-only weights: skip, keep timing ours
                _note(f"reference skipped: pytorch-pretrained-biggan cannot read {weights} "
                      f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})")
            else:
                cases.append(_Case("reference", "float32", lambda: ref(z, c, trunc), resolution, timer=timer,
                                   span=_SPAN_DEVICE if cuda else _SPAN_CPU))
    if "ours" in wanted_impls:
        for dt in wanted_dtypes:
            if dt == "float16" and not cuda and not args.dtype:
                _note("ours float16 on cpu skipped: CPUs without native fp16 arithmetic run it ~100x slower "
                      "(pass --dtype float16 to time it anyway)")
                continue
            gen = load()
            if dt != "float32":
                gen = to_precision(gen, getattr(torch, dt))
            cases.append(_Case("ours", dt, (lambda g: lambda: g(z, c, trunc))(gen), resolution, timer=timer,
                               span=_SPAN_DEVICE if cuda else _SPAN_CPU))
    if "ours-fast" in wanted_impls:
        from vj.engine.gpu import make_runner

        fast_dtypes = ["float16"] if cuda else [d for d in wanted_dtypes if d in ("float32", "bfloat16")]
        if args.dtype:
            fast_dtypes = [d for d in fast_dtypes if d in args.dtype] or list(args.dtype)
        for dt in fast_dtypes:
            if dt == "float16" and not cuda:
                _note("ours-fast float16 on cpu skipped (no native fp16 arithmetic on CPUs)")
                continue
            runner = make_runner(load(), batch, args.device, getattr(torch, dt), threads=args.threads)
            zc, cc = z.cpu().numpy(), c.cpu().numpy()
            cases.append(_Case("ours-fast", dt, (lambda r: lambda: r.run(zc, cc, trunc))(runner), resolution,
                               flush_denormal=not cuda, timer="perf_counter", graph=bool(runner.graphed),
                               runner=runner.describe(), output="uint8 rgba, host",
                               span=("host inputs -> uint8 RGBA in host memory" + (" (synchronized)" if cuda
                                                                                    else ""))))
            if cuda and not runner.graphed:
                _note("ours-fast: CUDA graph capture failed, timed eagerly (graph=false)")
    if "cppn" in wanted_impls:
        from vj.models.cppn import CPPN

        cppn = CPPN(resolution=resolution, seed=0).to(device).eval().requires_grad_(False)
        cases.append(_Case("cppn", "float32", lambda: cppn(z, c, trunc), resolution, timer=timer,
                           span=_SPAN_DEVICE if cuda else _SPAN_CPU))
    return cases


def _time(cases, iters: int, warmup: int, device) -> None:
    """Warm up each case, then time them interleaved (one call of each per round), filling ``times_ms``."""
    import time

    import torch

    cuda = device.type == "cuda"
    flush_default = False
    with torch.inference_mode():
        for case in cases:
            torch.set_flush_denormal(case.flush_denormal)
            for _ in range(warmup):
                case.fn()
        if cuda:
            torch.cuda.synchronize(device)
        for _ in range(iters):
            for case in cases:
                torch.set_flush_denormal(case.flush_denormal)
                t0 = time.perf_counter()  # one timer and one span for every implementation (module docstring)
                case.fn()
                if cuda:
                    torch.cuda.synchronize(device)
                case.times_ms.append((time.perf_counter() - t0) * 1000.0)
    torch.set_flush_denormal(flush_default)


def _percentile(values, q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run(args) -> int:
    """Build the implementations, time them interleaved, print one JSON line each.

    Returns:
        0.

    Raises:
        VJError: bad ``--device`` (or CUDA asked for and missing), unreadable ``--weights``.
    """
    import json
    import platform

    import torch

    from vj.errors import VJError
    from vj.models import resolve_device
    from vj.models.fast import physical_cores

    device = resolve_device(args.device)
    threads = args.threads or physical_cores()
    torch.set_num_threads(threads)
    impls = args.impl or list(IMPLS)
    if args.dtype:
        dtypes = list(dict.fromkeys(args.dtype))
    elif device.type == "cuda":
        dtypes = ["float32", "float16", "bfloat16"]
    else:
        dtypes = ["float32", "bfloat16", "float16"]
    if device.type == "cuda" and "bfloat16" in dtypes and not torch.cuda.is_bf16_supported():
        _note("bfloat16 skipped: this GPU does not support it")
        dtypes.remove("bfloat16")
    batches = args.batch or [1]
    if args.weights:
        from vj.models.biggan import BigGANConfig
        from pathlib import Path

        cfg_path = Path(args.weights) / "config.json"
        if not cfg_path.is_file():
            raise VJError(f"--weights {args.weights}: no config.json there (expected the published format)")
        res_list = [BigGANConfig.from_json_file(cfg_path).output_dim]
        if args.resolution and args.resolution != res_list:
            _note(f"--resolution ignored: the weights in {args.weights} are {res_list[0]} px")
    else:
        res_list = args.resolution or [128]
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        from vj.engine.ladder import cpu_name

        name = cpu_name() or platform.machine()
    for resolution in res_list:
        if args.weights:
            weights = args.weights
        else:
            weights = cached_random_weights(resolution, args.channel_width, args.seed)
        for batch in batches:
            cases = _cases(args, device, weights, resolution, batch, impls, dtypes)
            _time(cases, args.iters, args.warmup, device)
            for case in cases:
                med = _percentile(case.times_ms, 0.5)
                row = {
                    "impl": case.impl, "device": device.type, "dtype": case.dtype, "batch": batch,
                    "resolution": case.resolution, "ms_median": round(med, 3),
                    "ms_p99": round(_percentile(case.times_ms, 0.99), 3),
                    "fps": round(batch * 1000.0 / med, 3) if med > 0 else None,
                    "ms_min": round(min(case.times_ms), 3), "iters": len(case.times_ms), "warmup": args.warmup,
                    "timer": case.timer, "threads": threads if device.type == "cpu" else None,
                    "channel_width": None if args.weights else args.channel_width, "machine": name,
                }
                ref = next((x for x in cases if x.impl == "reference"), None)
                if ref is not None and ref is not case:
                    # paired per round (the cases run interleaved), so load spikes on a shared machine cancel
                    ratios = [r / t for r, t in zip(ref.times_ms, case.times_ms) if t > 0]
                    row["speedup_vs_reference"] = round(_percentile(ratios, 0.5), 3) if ratios else None
                row.update(case.extra)
                print(json.dumps(row), flush=True)
            del cases
    return 0
