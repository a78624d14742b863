"""Precision conversion and the CPU fast path for the BigGAN-deep generator.

* :func:`to_precision` — fp16 / bf16 weights and activations, with every batch-norm statistic, the truncation
  interpolation and the per-channel normalisation coefficients computed in float32 (see
  :class:`MixedPrecisionBigGAN`).
* :func:`prepare_cpu` — the CPU fast path: ``torch.set_num_threads`` = physical cores, NHWC (channels_last)
  convolutions, denormals flushed, attention as two matmuls with an fp32 softmax (:func:`use_cpu_attention`),
  optional bf16. Call the result under :func:`torch.inference_mode`.
* :func:`physical_cores` — physical cores this process may run on (SMT siblings counted once).

Why the statistics stay fp32: the generator normalises with ``scale = gamma * rsqrt(var + eps)`` and
``shift = beta - mean * scale``, where ``var`` is interpolated between two of the 51 stored truncation values. In
fp16, ``var + eps`` with ``eps = 1e-4`` loses most of its digits for small variances and the interpolation weight
``frac`` has only 11 bits; bf16 is worse (8 bits). Computing ``scale``/``shift`` in fp32 and rounding only the
result to the activation dtype leaves one rounding per coefficient, which costs nothing measurable (they are
``[N, C_total]`` vectors, ~20 k numbers at 128 px).
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MixedPrecisionBigGAN", "to_precision", "prepare_cpu", "physical_cores", "native_bf16_cpu", "cpu_dtype",
           "use_cpu_attention", "psnr"]

log = logging.getLogger("vj")

_LOW = (torch.float16, torch.bfloat16)


def _require_biggan(gen: nn.Module) -> None:
    need = ("class_embed", "bn_proj", "bn_stats", "bn_statistics", "gen_z", "layers", "to_rgb", "_bn_total",
            "_bn_sizes", "_c0", "bn_eps")
    missing = [a for a in need if not hasattr(gen, a)]
    if missing:
        raise TypeError(f"{type(gen).__name__} is not vj's BigGANDeep (missing {', '.join(missing)}); "
                        "mixed precision needs the generator from vj.models.load_generator")


class MixedPrecisionBigGAN(nn.Module):
    """A :class:`vj.models.biggan.BigGANDeep` running its convolutions in fp16/bf16 with fp32 batch-norm maths.

    Float32 (kept): the class embedding, the condition vector, the merged batch-norm projection ``bn_proj``, the
    ``bn_stats`` table (means/variances for the 51 truncation values), their interpolation at ``truncation`` and
    the resulting per-sample, per-channel ``scale``/``shift``. Low precision: ``gen_z``, every residual block and
    the attention block, the final convolution and tanh, and the activations between them. Each normalisation is
    then one fused ``relu(x * scale + shift)`` in the low dtype with coefficients rounded once from fp32.

    Build with :func:`to_precision`. Same call and attributes as the wrapped generator (``resolution``,
    ``model_name``, ``dim_z``, ``num_classes``); the output is in the low dtype. ``self.generator`` is the
    wrapped module (shared, not copied).
    """

    def __init__(self, gen: nn.Module, dtype: torch.dtype):
        super().__init__()
        _require_biggan(gen)
        if dtype not in _LOW:
            raise ValueError(f"dtype must be torch.float16 or torch.bfloat16, got {dtype}")
        self.generator = gen
        self.dtype = dtype
        self.resolution = gen.resolution
        self.model_name = gen.model_name
        self.dim_z = gen.dim_z
        self.num_classes = gen.num_classes
        self.eval()
        self.requires_grad_(False)

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}"

    def coefficients(self, noise: torch.Tensor, class_vector: torch.Tensor, truncation):
        """Condition vector and batch-norm coefficients, all in float32.

        Args:
            noise: ``[N, dim_z]`` any float dtype.
            class_vector: ``[N, num_classes]`` any float dtype.
            truncation: float, 0-d or ``[N]`` tensor in [0, 1].

        Returns:
            ``(cond [N, 2*dim_z], scale [N, C_total], shift [N, C_total])``, float32.
        """
        g = self.generator
        n = noise.shape[0]
        if noise.dim() != 2 or noise.shape[1] != self.dim_z:
            raise ValueError(f"noise must be [N, {self.dim_z}], got {list(noise.shape)}")
        if tuple(class_vector.shape) != (n, self.num_classes):
            raise ValueError(f"class_vector must be [{n}, {self.num_classes}], got {list(class_vector.shape)}")
        f32 = torch.float32
        t = torch.as_tensor(truncation, dtype=f32, device=noise.device)
        if t.dim() > 1 or t.numel() not in (1, n):
            raise ValueError(f"truncation must be a float, a 0-d tensor or a [{n}] tensor, got {list(t.shape)}")
        t = t.reshape(-1, 1)
        cond = torch.cat([noise.to(f32), F.linear(class_vector.to(f32), g.class_embed.weight)], dim=1)
        gb = g.bn_proj(cond)
        mean, var = g.bn_statistics(t)
        scale = gb[:, : g._bn_total] * torch.rsqrt(var + g.bn_eps)
        shift = gb[:, g._bn_total:] - mean * scale
        return cond, scale, shift

    def forward(self, noise: torch.Tensor, class_vector: torch.Tensor, truncation) -> torch.Tensor:
        """Generate images (see :meth:`vj.models.biggan.BigGANDeep.forward` for the arguments).

        Returns:
            ``[N, 3, H, W]`` RGB in [-1, 1], dtype :attr:`dtype`, in the convolutions' memory format.
        """
        g = self.generator
        cond, scale, shift = self.coefficients(noise, class_vector, truncation)
        n = cond.shape[0]
        scales = scale.to(self.dtype).split(g._bn_sizes, dim=1)
        shifts = shift.to(self.dtype).split(g._bn_sizes, dim=1)
        h = g.gen_z(cond.to(self.dtype)).view(n, 4, 4, g._c0).permute(0, 3, 1, 2)
        h = h.contiguous(memory_format=g._memory_format())
        k = 0
        for layer in g.layers:
            if hasattr(layer, "conv_0"):  # residual block: takes its four batch norms' coefficients
                h = layer(h, scales[k: k + 4], shifts[k: k + 4])
                k += 4
            else:
                h = layer(h)
        h = F.relu(torch.addcmul(shifts[k][:, :, None, None], h, scales[k][:, :, None, None]))
        return torch.tanh(g.to_rgb(h))


def to_precision(gen: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Convert a BigGAN-deep generator to fp16 or bf16 with fp32 batch-norm statistics and maths.

    The module is converted in place (its parameters change dtype) and wrapped; keep using the returned module.

    Args:
        gen: :class:`vj.models.biggan.BigGANDeep` in float32 (from :func:`vj.models.load_generator`), on any
            device, in either memory format; or a :class:`MixedPrecisionBigGAN` (re-targeted).
        dtype: ``torch.float16``, ``torch.bfloat16``, or ``torch.float32`` (returns the plain fp32 generator).

    Returns:
        :class:`MixedPrecisionBigGAN` for fp16/bf16; the fp32 ``gen`` for float32.

    Raises:
        TypeError: ``gen`` is not vj's BigGAN-deep (e.g. the CPPN, which has no batch norm: cast it with ``.to``).
        ValueError: another dtype.
    """
    if isinstance(gen, MixedPrecisionBigGAN):
        gen = gen.generator
    _require_biggan(gen)
    if dtype not in _LOW + (torch.float32,):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    fmt = gen._memory_format()
    f32 = torch.float32
    gen.class_embed.to(f32)
    gen.bn_proj.to(f32)
    gen.bn_stats = gen.bn_stats.to(f32)
    for mod in (gen.gen_z, gen.layers, gen.to_rgb):
        mod.to(dtype)
    if fmt == torch.channels_last:
        gen.to(memory_format=torch.channels_last)
    if dtype == f32:
        return gen
    return MixedPrecisionBigGAN(gen, dtype)


def physical_cores() -> int:
    """Physical CPU cores this process may run on (hyper-thread siblings counted once).

    Reads ``/sys/devices/system/cpu/cpuN/topology`` for the CPUs in the affinity mask; falls back to the
    affinity mask's size (or ``os.cpu_count()``) where the topology is not readable.

    Returns:
        int >= 1.
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        base = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
        try:
            with open(base + "core_id") as f1, open(base + "physical_package_id") as f2:
                cores.add((f2.read().strip(), f1.read().strip()))
        except OSError:
            return max(1, len(cpus))
    return max(1, len(cores))


def native_bf16_cpu() -> bool:
    """True when the CPU has native bf16 dot products (``avx512_bf16`` or ``amx_bf16`` in /proc/cpuinfo flags).

    oneDNN then runs bf16 convolutions ~2x faster than fp32; without them bf16 is emulated and no faster.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def cpu_dtype(gen: nn.Module) -> torch.dtype:
    """The CPU runner's default dtype for ``gen``: bf16 for BigGAN-deep on CPUs with native bf16, else fp32.

    bf16 costs ~45 dB PSNR against fp32 at 128 px (see docs/benchmarks.md) and runs ~1.5-2x faster there; the
    CPPN always stays fp32 (it is cheap, and its coordinate inputs want the precision).
    """
    is_biggan = hasattr(gen, "bn_stats") or isinstance(gen, MixedPrecisionBigGAN)
    return torch.bfloat16 if is_biggan and native_bf16_cpu() else torch.float32


def _cpu_attention_forward(self, x: torch.Tensor) -> torch.Tensor:
    """BigGAN's self-attention as two batched matmuls with fp32 logits and softmax (CPU fast path).

    Same maths as :class:`vj.models.biggan._Attention` (unscaled logits, keys/values max-pooled 2x). On the CPU,
    ``scaled_dot_product_attention`` cannot use its fused kernel here (value size 128 != query/key size 32) and
    falls back to a slower composite; this is ~18 % faster for the whole bf16 model and no less accurate.
    """
    n, _, h, w = x.shape
    theta, phi_g = self.qkv(x).split([self.c_qk, self.c_qk + self.c_v], dim=1)
    phi, g = F.max_pool2d(phi_g, 2).split([self.c_qk, self.c_v], dim=1)
    q = theta.flatten(2).transpose(1, 2).float()  # [N, HW, c_qk]
    k = phi.flatten(2).float()  # [N, c_qk, HW/4]
    attn = torch.softmax(torch.bmm(q, k), dim=-1).to(x.dtype)  # [N, HW, HW/4]
    o = torch.bmm(attn, g.flatten(2).transpose(1, 2))  # [N, HW, c_v]
    return x + self.out(o.transpose(1, 2).reshape(n, self.c_v, h, w))


def use_cpu_attention(gen: nn.Module) -> int:
    """Switch every BigGAN self-attention block in ``gen`` to :func:`_cpu_attention_forward` (per instance).

    Args:
        gen: BigGAN-deep, plain or wrapped by :func:`to_precision`; other modules are left alone.

    Returns:
        Number of attention blocks switched (1 for BigGAN-deep, 0 for the CPPN).
    """
    import types

    count = 0
    for mod in gen.modules():
        if all(hasattr(mod, a) for a in ("qkv", "out", "c_qk", "c_v")) and isinstance(mod.qkv, nn.Conv2d):
            mod.forward = types.MethodType(_cpu_attention_forward, mod)
            count += 1
    return count


def prepare_cpu(gen: nn.Module, dtype: torch.dtype = torch.float32, threads: int | None = None,
                channels_last: bool = True) -> nn.Module:
    """The CPU fast path: thread count, NHWC convolutions, denormal flushing, CPU attention, optionally bf16.

    Process-wide effects (this is meant for the process that renders): ``torch.set_num_threads(threads)`` and
    ``torch.set_flush_denormal(True)`` (denormal floats become 0; on x86 a denormal operand can make an
    arithmetic instruction ~100x slower, and the generator's attention softmax produces them).

    Args:
        gen: a float32 generator on the CPU (BigGAN-deep or the CPPN).
        dtype: ``torch.float32`` (default) or ``torch.bfloat16`` (BigGAN only; via :func:`to_precision`, fast
            where the CPU has AVX512-BF16/AMX, lower PSNR) or ``torch.float16`` (runs, usually slowly, on CPUs
            without native fp16 arithmetic).
        threads: intra-op threads; None = :func:`physical_cores`.
        channels_last: NHWC memory format for the convolutions (oneDNN's fast layout).

    Returns:
        The module to call (under :func:`torch.inference_mode`).

    Raises:
        ValueError: threads < 1.
    """
    threads = physical_cores() if threads is None else int(threads)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    gen = gen.to("cpu").eval().requires_grad_(False)
    if channels_last:
        gen = gen.to(memory_format=torch.channels_last)
    use_cpu_attention(gen)
    if dtype != torch.float32:
        if hasattr(gen, "bn_stats") or isinstance(gen, MixedPrecisionBigGAN):
            gen = to_precision(gen, dtype)
        else:
            gen = gen.to(dtype)
    return gen


def psnr(test: torch.Tensor, reference: torch.Tensor, peak_to_peak: float = 2.0) -> float:
    """Peak signal-to-noise ratio of ``test`` against ``reference`` [dB].

    Args:
        test, reference: same-shape tensors, e.g. ``[N, 3, H, W]`` in [-1, 1] (any float dtype; compared in fp64).
        peak_to_peak: signal range (2.0 for [-1, 1] images).

    Returns:
        ``10 log10(peak_to_peak^2 / MSE)``; ``inf`` for identical inputs, ``nan`` if either holds a NaN.
    """
    a = test.detach().to("cpu", torch.float64)
    b = reference.detach().to("cpu", torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {list(a.shape)} vs {list(b.shape)}")
    mse = torch.mean((a - b) ** 2).item()
    if mse != mse:
        return float("nan")
    if mse == 0.0:
        return float("inf")
    import math

    return 10.0 * math.log10(peak_to_peak ** 2 / mse)
