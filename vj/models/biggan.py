"""BigGAN-deep generator (128, 256 and 512 px), inference only, with exact load-time rewrites.

Architecture after Brock, Donahue & Simonyan (2019), "Large Scale GAN Training for High Fidelity Natural Image
Synthesis" (ICLR 2019, arXiv:1809.11096), appendix B ("BigGAN-deep"): a 1000-d class vector is embedded by a
linear map (1000 -> 128, no bias) and concatenated after the 128-d noise vector into a 256-d condition; a linear
layer maps the condition to a 4x4 feature map, followed by bottleneck residual blocks (two per resolution, every
second one upsamples 2x, nearest) with class-conditional batch norm, one self-attention block at 64x64, a final
batch norm, ReLU, 3x3 convolution to RGB and tanh.

The weights are read in the checkpoint format published with pytorch-pretrained-biggan (Hugging Face's
conversion of DeepMind's TF-Hub modules): ``config.json`` (fields ``output_dim, z_dim, class_embed_dim,
channel_width, num_classes, layers, attention_layer_position, eps, n_stats``) and a state dict whose
spectral-normalised layers are stored as ``weight_orig``/``weight_u``/``weight_v`` (506 keys for 128 px).
:meth:`BigGANDeep.from_published` checks such a state dict strictly and rewrites it, exactly, into a faster form:

* **Spectral norm baked in.** ``W = W_orig / sigma`` with ``sigma = u . (W_orig_mat @ v)`` from the stored
  ``u``/``v`` - precisely what ``torch.nn.utils.spectral_norm`` computes in eval mode (no power iteration), in
  float32 and in the same order, once at load instead of on every call.
* **Only the RGB channels of the last convolution.** The published model computes ``channel_width`` output
  channels and keeps the first 3; we keep only those 3 filters (21 % of the 128 px model's compute).
* **One matmul for every conditional batch norm.** The per-layer scale and offset projections (and the "1 +"
  of the scale) are stacked into one ``[2*C_total, 256]`` linear layer, evaluated once per call.
* **One gather for every batch-norm statistic.** Means and variances of all layers, stored for ``n_stats`` (51)
  truncation values, are stacked into one ``[n_stats, 2*C_total]`` table, interpolated once per call with tensor
  ops; each normalisation then reduces to one fused ``x * scale + shift`` per sample and channel.
* **Attention** through :func:`torch.nn.functional.scaled_dot_product_attention` with ``scale=1.0`` (the model's
  logits are unscaled), the three 1x1 input projections merged into one convolution and the learned ``gamma``
  folded into the output projection.

Deviation from the reference (on purpose). The reference picks batch-norm statistics for truncation ``t`` as
``coef, i = modf(t / step)`` and blends ``stats[i] * coef + stats[i+1] * (1 - coef)`` - the two weights are
swapped, so the statistics jump at every grid point (``t = 0.02 k``) and run backwards in between. We blend
``stats[i] * (1 - coef) + stats[i+1] * coef`` (linear interpolation, continuous in ``t``). Both agree exactly at
grid points and at midpoints between them; elsewhere the outputs differ.

Everything in :meth:`BigGANDeep.forward` is tensor arithmetic with shapes fixed by the inputs' shapes: no Python
control flow depends on tensor values, so it can be captured in a CUDA graph or compiled with ``torch.compile``.

This module holds the generator and its public surface (:class:`BigGANDeep`: :meth:`~BigGANDeep.coefficients`,
:meth:`~BigGANDeep.synthesize`, :meth:`~BigGANDeep.precision`, :meth:`~BigGANDeep.set_attention`, and
:class:`Coefficients`). The rest lives beside it and is re-exported here, so ``vj.models.biggan`` stays the one
place to import from: :mod:`vj.models.biggan_config` (:class:`BigGANConfig`, :data:`CONFIGS`),
:mod:`vj.models.biggan_checkpoint` (the published format and the load-time rewrites above) and
:mod:`vj.models.biggan_layers` (the residual block and the attention block).
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vj.models.biggan_checkpoint import (bake_spectral_norm, check_state_dict, published_shapes, random_state_dict,
                                         rewrite_published)
from vj.models.biggan_config import CONFIGS, BigGANConfig
from vj.models.biggan_layers import _affine_relu, _Attention, _Block

__all__ = [
    "BigGANConfig",
    "BigGANDeep",
    "CONFIGS",
    "Coefficients",
    "bake_spectral_norm",
    "check_state_dict",
    "published_shapes",
    "random_state_dict",
]


class Coefficients(NamedTuple):
    """Everything :meth:`BigGANDeep.synthesize` needs besides the weights, for one batch.

    Attributes:
        cond: ``[N, 2*dim_z]`` condition vector (noise | class embedding).
        scale: ``[N, C_total]`` per-sample, per-channel batch-norm scale ``gamma * rsqrt(var + eps)``, all batch
            norms in layer order (sizes :attr:`BigGANDeep.bn_sizes`).
        shift: ``[N, C_total]`` the folded shift ``beta - mean * scale``.
    """

    cond: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor

    def to(self, dtype: torch.dtype) -> "Coefficients":
        """The same coefficients rounded once to ``dtype`` (``cond`` kept: it feeds a linear layer)."""
        return Coefficients(self.cond, self.scale.to(dtype), self.shift.to(dtype))


class BigGANDeep(nn.Module):
    """BigGAN-deep generator with load-time rewrites (see the module docstring). Build with :meth:`from_published`.

    Attributes:
        config: the :class:`BigGANConfig`.
        resolution: output side [px].
        model_name: e.g. ``"biggan-deep-128"``.
        dim_z: noise size (128).
        num_classes: class-vector size (1000).

    Call ``gen(noise, class_vector, truncation)``; see :meth:`forward`. The module is in eval mode with gradients
    off. ``gen.to(memory_format=torch.channels_last)`` switches every convolution to NHWC (faster on tensor-core
    GPUs); the forward pass follows the convolution weights' layout.
    """

    def __init__(self, config: BigGANConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.resolution = int(config.output_dim)
        self.model_name = config.model_name
        self.dim_z = int(config.z_dim)
        self.num_classes = int(config.num_classes)
        ch, cond = config.channel_width, 2 * config.z_dim
        self._c0 = 16 * ch
        self.class_embed = nn.Linear(config.num_classes, config.z_dim, bias=False)
        self.gen_z = nn.Linear(cond, 16 * self._c0)
        layers: list[nn.Module] = []
        bn_sizes: list[int] = []
        for i, (up, cin, cout) in enumerate(config.layers):
            if i == config.attention_layer_position:
                layers.append(_Attention(cin * ch))
            block = _Block(cin * ch, cout * ch, bool(up))
            layers.append(block)
            mid = cin * ch // 4
            bn_sizes += [cin * ch, mid, mid, mid]
        bn_sizes.append(ch)  # final, unconditional batch norm
        self.layers = nn.ModuleList(layers)
        self._bn_sizes = bn_sizes
        total = sum(bn_sizes)
        self._bn_total = total
        # rows [0, total): gamma (scale); rows [total, 2 total): beta (offset)
        self.bn_proj = nn.Linear(cond, 2 * total)
        self.register_buffer("bn_stats", torch.zeros(config.n_stats, 2 * total))  # means | vars
        self.bn_eps = float(config.eps)
        self.n_stats = int(config.n_stats)
        self.to_rgb = nn.Conv2d(ch, 3, 3, padding=1)
        self.eval()
        self.requires_grad_(False)

    # ----------------------------------------------------------------------------------------------------------
    @classmethod
    def from_published(cls, config: BigGANConfig, state_dict: Mapping[str, torch.Tensor]) -> "BigGANDeep":
        """Build from a pytorch-pretrained-biggan state dict, checked strictly, with the exact rewrites applied.

        Args:
            config: layout (from the checkpoint's ``config.json`` or :data:`CONFIGS`).
            state_dict: ``{key: tensor}`` in the published format (any float dtype; baked in float32 on CPU).

        Returns:
            A float32 CPU :class:`BigGANDeep` in eval mode; move it with ``.to(device, dtype)``.

        Raises:
            WeightsError: missing/unexpected keys, wrong shapes, or non-finite values after baking.
        """
        ours = rewrite_published(config, state_dict)
        with torch.device("meta"):  # skip random initialisation: every tensor is assigned below
            model = cls(config)
        model.load_state_dict(ours, strict=True, assign=True)
        return model.eval().requires_grad_(False)

    # ----------------------------------------------------------------------------------------------------------
    @property
    def memory_format(self) -> torch.memory_format:
        """The convolutions' memory format (``torch.channels_last`` after ``.to(memory_format=...)``)."""
        w = self.to_rgb.weight
        if w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous():
            return torch.channels_last
        return torch.contiguous_format

    @property
    def bn_sizes(self) -> tuple[int, ...]:
        """Channels of every batch norm in layer order (four per residual block, then the final one)."""
        return tuple(self._bn_sizes)

    @property
    def conv_dtype(self) -> torch.dtype:
        """dtype of the convolution stack (``gen_z``, blocks, attention, ``to_rgb``): the activations' dtype."""
        return self.to_rgb.weight.dtype

    def set_attention(self, kernel: str) -> int:
        """Choose the self-attention kernel: ``"sdpa"`` (default, fused on GPUs) or ``"bmm"`` (faster on CPUs).

        Same maths either way (see :class:`_Attention`).

        Returns:
            The number of attention blocks set (1 for BigGAN-deep).

        Raises:
            ValueError: another kernel name.
        """
        if kernel not in _Attention.KERNELS:
            raise ValueError(f"attention kernel must be one of {_Attention.KERNELS}, got {kernel!r}")
        count = 0
        for layer in self.layers:
            if isinstance(layer, _Attention):
                layer.kernel = kernel
                count += 1
        return count

    def precision(self, dtype: torch.dtype) -> "BigGANDeep":
        """Put the convolution stack in ``dtype`` (in place) and keep the conditioning and batch norm float32.

        Float32 afterwards: ``class_embed``, ``bn_proj``, ``bn_stats`` (so :meth:`coefficients` is float32);
        ``dtype``: ``gen_z``, every block, the attention and ``to_rgb``. The memory format is kept.

        Args:
            dtype: ``torch.float32``, ``torch.float16`` or ``torch.bfloat16``.

        Returns:
            ``self``.

        Raises:
            ValueError: another dtype.
        """
        if dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
        fmt = self.memory_format
        f32 = torch.float32
        self.class_embed.to(f32)
        self.bn_proj.to(f32)
        self.bn_stats = self.bn_stats.to(f32)
        for mod in (self.gen_z, self.layers, self.to_rgb):
            mod.to(dtype)
        if fmt == torch.channels_last:
            self.to(memory_format=torch.channels_last)
        return self

    def bn_statistics(self, truncation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch-norm means and variances of all layers at ``truncation``, linearly interpolated on the grid.

        Grid point ``k`` holds the statistics for truncation ``k / (n_stats - 1)``. Values outside [0, 1] are
        clamped. Linear interpolation between the two neighbouring grid points (continuous in ``truncation``);
        see the module docstring for how this differs from the reference.

        Note:
            Deliberately not the reference's rule. pytorch-pretrained-biggan computes
            ``coef, i = modf(t / step)`` and uses ``stats[i] * coef + stats[i + 1] * (1 - coef)`` (weights swapped),
            which jumps by almost a whole grid interval just after each grid point. Here the weight of
            ``stats[i + 1]`` is ``coef``. The two agree at grid points (``coef = 0``) and midpoints (``coef = 0.5``).

        Args:
            truncation: ``[M, 1]`` tensor (M = 1 or the batch size), model dtype.

        Returns:
            ``(means, variances)``, each ``[M, C_total]`` (all layers' channels, in layer order).
        """
        pos = truncation.clamp(0.0, 1.0) * (self.n_stats - 1)
        lo = pos.floor().clamp(max=self.n_stats - 2)
        frac = pos - lo
        idx = lo.to(torch.long).reshape(-1)
        stats = torch.lerp(self.bn_stats.index_select(0, idx), self.bn_stats.index_select(0, idx + 1), frac)
        return stats[:, : self._bn_total], stats[:, self._bn_total:]

    def coefficients(self, noise: torch.Tensor, class_vector: torch.Tensor, truncation) -> Coefficients:
        """The condition vector and the folded batch-norm coefficients of every layer, for one batch.

        Computed in the dtype of ``bn_proj`` (float32 unless the whole model was cast): the class embedding, the
        merged gamma/beta projection, the statistics interpolated at ``truncation`` and
        ``scale = gamma * rsqrt(var + eps)``, ``shift = beta - mean * scale``. Keeping this in float32 matters in
        low precision: ``var + eps`` with ``eps = 1e-4`` loses most of its digits in fp16, and ``shift`` can
        exceed fp16's range.

        Args:
            noise: ``[N, dim_z]`` any float dtype, the model's device.
            class_vector: ``[N, num_classes]`` any float dtype.
            truncation: Python float, 0-d tensor or ``[N]`` tensor in [0, 1] (clamped).

        Returns:
            :class:`Coefficients` (``cond [N, 2*dim_z]``, ``scale``/``shift [N, C_total]``).

        Raises:
            ValueError: wrong shapes (checked on shapes only, never on values).
        """
        n = noise.shape[0]
        if noise.dim() != 2 or noise.shape[1] != self.dim_z:
            raise ValueError(f"noise must be [N, {self.dim_z}], got {list(noise.shape)}")
        if tuple(class_vector.shape) != (n, self.num_classes):
            raise ValueError(f"class_vector must be [{n}, {self.num_classes}], got {list(class_vector.shape)}")
        dt = self.bn_proj.weight.dtype
        t = torch.as_tensor(truncation, dtype=dt, device=noise.device)
        if t.dim() > 1 or t.numel() not in (1, n):
            raise ValueError(f"truncation must be a float, a 0-d tensor or a [{n}] tensor, got {list(t.shape)}")
        t = t.reshape(-1, 1)
        cond = torch.cat([noise.to(dt), F.linear(class_vector.to(dt), self.class_embed.weight)], dim=1)
        gb = self.bn_proj(cond)  # [N, 2 C_total]: gamma | beta for every batch norm
        mean, var = self.bn_statistics(t)  # [1 or N, C_total]
        scale = gb[:, : self._bn_total] * torch.rsqrt(var + self.bn_eps)
        shift = gb[:, self._bn_total:] - mean * scale
        return Coefficients(cond, scale, shift)

    def synthesize(self, coeffs: Coefficients) -> torch.Tensor:
        """The image from :meth:`coefficients`: ``gen_z``, the residual blocks and attention, final norm, RGB.

        The convolutions run in :attr:`conv_dtype` and :attr:`memory_format`; the residual trunk and every
        normalisation ``relu(x * scale + shift)`` run in ``coeffs.scale``'s dtype (promoted with the activations').
        So float32 coefficients keep the unnormalised residual sum in float32 (fp16 can overflow there), and
        ``coeffs.to(torch.bfloat16)`` runs everything in bf16 (fastest on CPUs with native bf16).

        Args:
            coeffs: from :meth:`coefficients` (optionally ``.to(dtype)``).

        Returns:
            ``[N, 3, resolution, resolution]`` RGB in [-1, 1], :attr:`conv_dtype`, in :attr:`memory_format`.
        """
        act = self.conv_dtype
        n = coeffs.cond.shape[0]
        scales = coeffs.scale.split(self._bn_sizes, dim=1)
        shifts = coeffs.shift.split(self._bn_sizes, dim=1)
        # The published gen_z rows are in TF's NHWC order; the permuted view is NHWC in memory.
        h = self.gen_z(coeffs.cond.to(act)).view(n, 4, 4, self._c0).permute(0, 3, 1, 2)
        h = h.contiguous(memory_format=self.memory_format).to(coeffs.scale.dtype)
        k = 0
        for layer in self.layers:
            if isinstance(layer, _Block):
                h = layer(h, scales[k: k + 4], shifts[k: k + 4])
                k += 4
            else:
                h = layer(h)
        h = _affine_relu(h, scales[k], shifts[k]).to(act)
        return torch.tanh(self.to_rgb(h))

    def forward(self, noise: torch.Tensor, class_vector: torch.Tensor, truncation) -> torch.Tensor:
        """Generate images: ``synthesize(coefficients(noise, class_vector, truncation))``.

        Args:
            noise: ``[N, 128]`` noise vector (already truncated by the caller if wanted; the model does not clip).
            class_vector: ``[N, 1000]`` class weights (one-hot or a soft mix), the model's device, any float dtype.
            truncation: Python float, 0-d tensor or ``[N]`` tensor in [0, 1] (clamped); selects the batch-norm
                statistics (interpolated linearly between the 51 stored values). Per-sample values are allowed.

        Returns:
            ``[N, 3, resolution, resolution]`` RGB in [-1, 1], :attr:`conv_dtype`, in the model's memory format.

        Raises:
            ValueError: inputs have the wrong shapes (checked on shapes only, never on values).
        """
        return self.synthesize(self.coefficients(noise, class_vector, truncation))

    def extra_repr(self) -> str:
        return f"model_name={self.model_name!r}, resolution={self.resolution}"

