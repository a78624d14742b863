"""Precision conversion and the CPU fast path for the BigGAN-deep generator.

* :func:`to_precision` — fp16 / bf16 weights and activations, with every batch-norm statistic, the truncation
  interpolation and the per-channel normalisation coefficients computed in float32 (see
  :class:`MixedPrecisionBigGAN`).
* :func:`prepare_cpu` — the CPU fast path: ``torch.set_num_threads`` = physical cores, NHWC (channels_last)
  convolutions, denormals flushed, the ``"bmm"`` attention kernel (:func:`use_cpu_attention`), optional bf16. Call the result under :func:`torch.inference_mode`.
* :func:`physical_cores` — physical cores this process may run on (SMT siblings counted once).

Why the statistics stay fp32: the generator normalises with ``scale = gamma * rsqrt(var + eps)`` and
``shift = beta - mean * scale``, where ``var`` is interpolated between two of the 51 stored truncation values. In
fp16, ``var + eps`` with ``eps = 1e-4`` loses most of its digits for small variances and the interpolation weight
``frac`` has only 11 bits; bf16 is worse (8 bits). Computing ``scale``/``shift`` in fp32 and rounding only the
result to the activation dtype leaves one rounding per coefficient, which costs nothing measurable (they are
``[N, C_total]`` vectors, ~20 k numbers at 128 px).

Everything here uses only the generator's public surface (``coefficients``, ``synthesize``, ``precision``,
``set_attention``, ``memory_format``); nothing replaces a module's methods at run time.
"""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

__all__ = ["MixedPrecisionBigGAN", "to_precision", "prepare_cpu", "physical_cores", "native_bf16_cpu", "cpu_dtype",
           "use_cpu_attention", "psnr"]

log = logging.getLogger("vj")

_LOW = (torch.float16, torch.bfloat16)


def _require_biggan(gen: nn.Module) -> None:
    from vj.models.biggan import BigGANDeep

    if not isinstance(gen, BigGANDeep):
        raise TypeError(f"{type(gen).__name__} is not vj's BigGANDeep; mixed precision needs the generator from "
                        "vj.models.load_generator (the CPPN has no batch norm: cast it with .to)")


class MixedPrecisionBigGAN(nn.Module):
    """A :class:`vj.models.biggan.BigGANDeep` running its convolutions in fp16/bf16 with fp32 batch-norm maths.

    Built only from the generator's public surface: :meth:`~vj.models.biggan.BigGANDeep.coefficients` (float32:
    class embedding, condition, merged gamma/beta projection, statistics interpolated at ``truncation``, folded
    ``scale``/``shift``) and :meth:`~vj.models.biggan.BigGANDeep.synthesize` (convolutions in the low dtype).

    The residual trunk and the normalisations ``relu(x * scale + shift)`` run in:

    * float32 for fp16: the residual sum is unnormalised and grows block by block, and fp16 overflows at 65504;
      the convolutions' inputs are normalised, so they stay in range;
    * bf16 for bf16 (same exponent range as fp32, no overflow): the coefficients are rounded once from fp32, and
      everything between the convolutions stays bf16 (fastest on CPUs with native bf16).

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
        self.norm_dtype = torch.float32 if dtype == torch.float16 else dtype
        self.resolution = gen.resolution
        self.model_name = gen.model_name
        self.dim_z = gen.dim_z
        self.num_classes = gen.num_classes
        self.eval()
        self.requires_grad_(False)

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}, norm_dtype={self.norm_dtype}"

    def coefficients(self, noise: torch.Tensor, class_vector: torch.Tensor, truncation):
        """The generator's float32 :class:`~vj.models.biggan.Coefficients` (see
        :meth:`vj.models.biggan.BigGANDeep.coefficients`)."""
        return self.generator.coefficients(noise, class_vector, truncation)

    def forward(self, noise: torch.Tensor, class_vector: torch.Tensor, truncation) -> torch.Tensor:
        """Generate images (see :meth:`vj.models.biggan.BigGANDeep.forward` for the arguments).

        Returns:
            ``[N, 3, H, W]`` RGB in [-1, 1], dtype :attr:`dtype`, in the convolutions' memory format.
        """
        coeffs = self.generator.coefficients(noise, class_vector, truncation)
        return self.generator.synthesize(coeffs.to(self.norm_dtype))


def to_precision(gen: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Convert a BigGAN-deep generator to fp16 or bf16 with fp32 batch-norm statistics and maths.

    The module is converted in place (:meth:`vj.models.biggan.BigGANDeep.precision`) and wrapped; keep using the
    returned module.

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
    gen.precision(dtype)
    if dtype == torch.float32:
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
    from vj.models import is_biggan

    return torch.bfloat16 if is_biggan(gen) and native_bf16_cpu() else torch.float32


def use_cpu_attention(gen: nn.Module) -> int:
    """Select the ``"bmm"`` attention kernel (two matmuls, fp32 softmax) in every BigGAN-deep inside ``gen``.

    Uses :meth:`vj.models.biggan.BigGANDeep.set_attention`; on the CPU this is ~18 % faster for the whole bf16
    model than SDPA's composite fallback, and no less accurate.

    Args:
        gen: BigGAN-deep, plain or wrapped by :func:`to_precision`; other modules are left alone.

    Returns:
        Number of attention blocks switched (1 for BigGAN-deep, 0 for the CPPN).
    """
    from vj.models.biggan import BigGANDeep

    return sum(mod.set_attention("bmm") for mod in gen.modules() if isinstance(mod, BigGANDeep))


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
        from vj.models import is_biggan

        gen = to_precision(gen, dtype) if is_biggan(gen) else gen.to(dtype)
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
