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
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vj.errors import WeightsError

__all__ = [
    "BigGANConfig",
    "BigGANDeep",
    "CONFIGS",
    "Coefficients",
    "bake_spectral_norm",
    "published_shapes",
    "random_state_dict",
]

_LAYERS_128 = (
    (False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8),
    (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1),
)
_LAYERS_256 = (
    (False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8), (True, 8, 8),
    (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1),
)
_LAYERS_512 = _LAYERS_256 + ((False, 1, 1), (True, 1, 1))


@dataclass(frozen=True)
class BigGANConfig:
    """Hyper-parameters of a BigGAN-deep generator, as in pytorch-pretrained-biggan's ``config.json``.

    Attributes:
        output_dim: image side [px] (128, 256 or 512 for the published models).
        z_dim: noise size; the class embedding has the same size and the condition is ``2 * z_dim``.
        class_embed_dim: kept for format compatibility (the published models use ``z_dim``).
        channel_width: base channel count ``ch`` (128 for the published models).
        num_classes: class-vector size (1000, ImageNet).
        layers: one ``(upsample, in_mult, out_mult)`` per residual block; channels are ``mult * ch``.
        attention_layer_position: the self-attention block sits before block number ``attention_layer_position``.
        eps: epsilon of batch norm (added to the variance).
        n_stats: number of truncation values in ``[0, 1]`` with stored batch-norm statistics (51: step 0.02).
    """

    output_dim: int = 128
    z_dim: int = 128
    class_embed_dim: int = 128
    channel_width: int = 128
    num_classes: int = 1000
    layers: tuple = field(default=_LAYERS_128)
    attention_layer_position: int = 8
    eps: float = 1e-4
    n_stats: int = 51

    @classmethod
    def from_dict(cls, data: Mapping) -> "BigGANConfig":
        """Build from a ``config.json`` mapping (unknown fields are ignored, missing ones take the defaults).

        Raises:
            WeightsError: a field has the wrong type or the layer list is not a valid BigGAN-deep layout.
        """
        if not isinstance(data, Mapping):
            raise WeightsError("BigGAN config must be a JSON object")
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        try:
            if "layers" in kwargs:
                kwargs["layers"] = tuple((bool(u), int(i), int(o)) for u, i, o in kwargs["layers"])
            for k in ("output_dim", "z_dim", "class_embed_dim", "channel_width", "num_classes",
                      "attention_layer_position", "n_stats"):
                if k in kwargs:
                    if isinstance(kwargs[k], bool) or int(kwargs[k]) != kwargs[k]:
                        raise ValueError(k)
                    kwargs[k] = int(kwargs[k])
            if "eps" in kwargs:
                kwargs["eps"] = float(kwargs["eps"])
        except (TypeError, ValueError) as exc:
            raise WeightsError(f"BigGAN config has an invalid field ({exc})") from None
        config = cls(**kwargs)
        config.validate()
        return config

    @classmethod
    def from_json_file(cls, path: str | Path) -> "BigGANConfig":
        """Read a ``config.json``.

        Raises:
            WeightsError: unreadable file, not JSON, or invalid fields.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WeightsError(f"cannot read BigGAN config {path}: {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict:
        """The ``config.json`` mapping (layers as lists, as published)."""
        d = asdict(self)
        d["layers"] = [list(layer) for layer in self.layers]
        return d

    def validate(self) -> None:
        """Check the layout is one this implementation builds.

        Raises:
            WeightsError: non-positive sizes, an attention position outside the block list, a block that changes
                channels other than halving them, or an output size that does not match the upsampling count.
        """
        problems = []
        for k in ("output_dim", "z_dim", "channel_width", "num_classes", "n_stats"):
            if getattr(self, k) <= 0:
                problems.append(f"{k} must be positive")
        if self.n_stats < 2:
            problems.append("n_stats must be at least 2")
        if not self.layers:
            problems.append("layers is empty")
        if not 0 <= self.attention_layer_position < len(self.layers):
            problems.append("attention_layer_position is outside the layer list")
        for i, (_, cin, cout) in enumerate(self.layers):
            if cin <= 0 or cout <= 0 or (cout != cin and 2 * cout != cin):
                problems.append(f"layer {i} maps {cin}x to {cout}x channels (must keep or halve)")
            if i and self.layers[i - 1][2] != cin:
                problems.append(f"layer {i} input does not match layer {i - 1} output")
            if (cin * self.channel_width) % 4:
                problems.append(f"layer {i} channel count is not a multiple of 4")
        if self.layers and self.layers[0][1] != 16:
            problems.append("the first layer must take 16x channels (the 4x4 input has 16 * channel_width)")
        if self.layers and self.layers[-1][2] != 1:
            problems.append("the last layer must give 1x channels (the final batch norm has channel_width)")
        if self.layers and 4 * 2 ** sum(bool(u) for u, _, _ in self.layers) != self.output_dim:
            problems.append(f"layers upsample 4 px to {4 * 2 ** sum(bool(u) for u, _, _ in self.layers)}, "
                            f"not output_dim {self.output_dim}")
        if self.layers and 0 <= self.attention_layer_position < len(self.layers):
            if self.layers[self.attention_layer_position][1] * self.channel_width % 8:
                problems.append("attention channel count is not a multiple of 8")
        if problems:
            raise WeightsError("invalid BigGAN config: " + "; ".join(problems))

    @property
    def model_name(self) -> str:
        """``"biggan-deep-<output_dim>"``."""
        return f"biggan-deep-{self.output_dim}"


#: The published BigGAN-deep configurations (as in pytorch-pretrained-biggan's conversion script).
CONFIGS: dict[str, BigGANConfig] = {
    "biggan-deep-128": BigGANConfig(output_dim=128, layers=_LAYERS_128),
    "biggan-deep-256": BigGANConfig(output_dim=256, layers=_LAYERS_256),
    "biggan-deep-512": BigGANConfig(output_dim=512, layers=_LAYERS_512),
}


# --------------------------------------------------------------------------------------------------------------
# Published state-dict format
# --------------------------------------------------------------------------------------------------------------


def _sn(prefix: str, shape: tuple, bias: bool = False) -> dict[str, tuple]:
    cols = math.prod(shape[1:])
    out = {f"{prefix}.weight_orig": tuple(shape), f"{prefix}.weight_u": (shape[0],), f"{prefix}.weight_v": (cols,)}
    if bias:
        out[f"{prefix}.bias"] = (shape[0],)
    return out


def _layer_index(config: BigGANConfig, block: int) -> int:
    """Position of residual block ``block`` in the published ``generator.layers`` list (attention shifts it)."""
    return block + (1 if block >= config.attention_layer_position else 0)


def published_shapes(config: BigGANConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of every tensor in a published (pytorch-pretrained-biggan) state dict for ``config``.

    Args:
        config: the model layout.

    Returns:
        An insertion-ordered mapping, e.g. 506 entries for :data:`CONFIGS` ``["biggan-deep-128"]``.
    """
    ch, cond, n = config.channel_width, 2 * config.z_dim, config.n_stats
    shapes: dict[str, tuple] = {"embeddings.weight": (config.z_dim, config.num_classes)}
    shapes.update(_sn("generator.gen_z", (16 * 16 * ch, cond), bias=True))

    def bn(prefix, c):
        shapes[f"{prefix}.running_means"] = (n, c)
        shapes[f"{prefix}.running_vars"] = (n, c)
        shapes.update(_sn(f"{prefix}.scale", (c, cond)))
        shapes.update(_sn(f"{prefix}.offset", (c, cond)))

    for i, (_, cin, cout) in enumerate(config.layers):
        if i == config.attention_layer_position:
            c = cin * ch
            p = f"generator.layers.{i}"
            shapes[f"{p}.gamma"] = (1,)
            shapes.update(_sn(f"{p}.snconv1x1_theta", (c // 8, c, 1, 1)))
            shapes.update(_sn(f"{p}.snconv1x1_phi", (c // 8, c, 1, 1)))
            shapes.update(_sn(f"{p}.snconv1x1_g", (c // 2, c, 1, 1)))
            shapes.update(_sn(f"{p}.snconv1x1_o_conv", (c, c // 2, 1, 1)))
        p = f"generator.layers.{_layer_index(config, i)}"
        cin, cout = cin * ch, cout * ch
        mid = cin // 4
        bn(f"{p}.bn_0", cin)
        shapes.update(_sn(f"{p}.conv_0", (mid, cin, 1, 1), bias=True))
        bn(f"{p}.bn_1", mid)
        shapes.update(_sn(f"{p}.conv_1", (mid, mid, 3, 3), bias=True))
        bn(f"{p}.bn_2", mid)
        shapes.update(_sn(f"{p}.conv_2", (mid, mid, 3, 3), bias=True))
        bn(f"{p}.bn_3", mid)
        shapes.update(_sn(f"{p}.conv_3", (cout, mid, 1, 1), bias=True))
    shapes["generator.bn.weight"] = (ch,)
    shapes["generator.bn.bias"] = (ch,)
    shapes["generator.bn.running_means"] = (n, ch)
    shapes["generator.bn.running_vars"] = (n, ch)
    shapes.update(_sn("generator.conv_to_rgb", (ch, ch, 3, 3), bias=True))
    return shapes


def check_state_dict(config: BigGANConfig, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Strictly compare a published-format state dict with ``config``'s layout.

    Raises:
        WeightsError: missing or unexpected keys (the first few of each, with counts), shape mismatches (with both
            shapes), or a value that is not a floating-point tensor.
    """
    expected = published_shapes(config)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {', '.join(map(str, unexpected[:3]))}"
                        f"{' ...' if len(unexpected) > 3 else ''}")
    wrong = []
    for k, shape in expected.items():
        if k not in state_dict:
            continue
        v = state_dict[k]
        if not isinstance(v, torch.Tensor) or not v.is_floating_point():
            wrong.append(f"{k} is not a floating-point tensor")
        elif tuple(v.shape) != shape:
            wrong.append(f"{k} has shape {list(v.shape)}, expected {list(shape)}")
    if wrong:
        problems.append(f"{len(wrong)} bad tensor(s): {'; '.join(wrong[:3])}{' ...' if len(wrong) > 3 else ''}")
    if problems:
        raise WeightsError(f"weights do not match {config.model_name} "
                           f"(channel_width {config.channel_width}): " + "; ".join(problems))


def bake_spectral_norm(weight_orig: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Spectrally normalised weight ``W_orig / sigma`` with ``sigma = u . (W_orig.reshape(out, -1) @ v)``.

    This is ``torch.nn.utils.spectral_norm``'s eval-mode computation (stored ``u``/``v``, no power iteration),
    done with the same float32 operations in the same order, so results are bit-identical to the reference.

    Args:
        weight_orig: ``[out, ...]`` float tensor.
        u: ``[out]`` left singular vector estimate.
        v: ``[prod(in dims)]`` right singular vector estimate.

    Returns:
        Tensor shaped like ``weight_orig``.
    """
    w_mat = weight_orig.reshape(weight_orig.shape[0], -1)
    sigma = torch.dot(u, torch.mv(w_mat, v))
    return weight_orig / sigma


def random_state_dict(config: BigGANConfig, seed: int = 0, power_iterations: int = 30) -> dict[str, torch.Tensor]:
    """Random weights in the published format that give a non-degenerate image (for tests and benchmarks).

    Weights are Gaussian; each spectral-norm ``u``/``v`` pair is converged by power iteration (random vectors give
    a near-zero or negative ``sigma`` and NaN images); batch-norm statistics are randomised (means ~ N(0, 0.1^2),
    variances in [0.5, 1.5]), and the attention ``gamma`` is non-zero so attention is exercised.

    Args:
        config: model layout.
        seed: seed of a private :class:`torch.Generator`.
        power_iterations: iterations per spectral-norm pair.

    Returns:
        ``{key: float32 tensor}`` accepted by :meth:`BigGANDeep.from_published` and by the reference package.
    """
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for key, shape in published_shapes(config).items():
        if key.endswith("running_vars"):
            sd[key] = 0.5 + torch.rand(shape, generator=gen)
        elif key.endswith("running_means"):
            sd[key] = 0.1 * torch.randn(shape, generator=gen)
        elif key.endswith("gamma"):
            sd[key] = torch.full(shape, 0.5)
        elif key.endswith(".bias"):
            sd[key] = 0.05 * torch.randn(shape, generator=gen)
        elif key == "generator.bn.weight":
            sd[key] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:
            sd[key] = torch.randn(shape, generator=gen)
    for key in [k for k in sd if k.endswith(".weight_orig")]:
        base = key[: -len("_orig")]
        w = sd[key].reshape(sd[key].shape[0], -1)
        v = F.normalize(torch.randn(w.shape[1], generator=gen), dim=0)
        u = F.normalize(w @ v, dim=0)
        for _ in range(power_iterations):
            v = F.normalize(w.t() @ u, dim=0)
            u = F.normalize(w @ v, dim=0)
        sd[base + "_u"], sd[base + "_v"] = u, v
    return sd


# --------------------------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------------------------


def _affine_relu(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``relu(x * scale + shift)`` with per-sample, per-channel ``scale``/``shift`` of shape ``[N, C]``."""
    return F.relu(torch.addcmul(shift[:, :, None, None], x, scale[:, :, None, None]))


class _Block(nn.Module):
    """Bottleneck residual block of BigGAN-deep's generator (batch norms applied from precomputed affines)."""

    def __init__(self, cin: int, cout: int, upsample: bool):
        super().__init__()
        mid = cin // 4
        self.upsample = upsample
        self.cout = cout
        self.conv_0 = nn.Conv2d(cin, mid, 1)
        self.conv_1 = nn.Conv2d(mid, mid, 3, padding=1)
        self.conv_2 = nn.Conv2d(mid, mid, 3, padding=1)
        self.conv_3 = nn.Conv2d(mid, cout, 1)

    def forward(self, x: torch.Tensor, scales, shifts) -> torch.Tensor:
        """``x``: the residual trunk, in the coefficients' dtype; the convolutions run in their weights' dtype.

        Each normalisation is computed in the promoted dtype of its input and coefficients, so with float32
        coefficients the trunk and every ``x * scale + shift`` stay float32 while the convolutions run in fp16/bf16
        (the unnormalised residual sum is what overflows fp16, not the convolutions, whose inputs are normalised).
        """
        act = self.conv_0.weight.dtype
        h = self.conv_0(_affine_relu(x, scales[0], shifts[0]).to(act))
        h = _affine_relu(h, scales[1], shifts[1]).to(act)
        skip = x[:, : self.cout]  # BigGAN-deep drops the trailing channels on the skip path
        if self.upsample:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            skip = F.interpolate(skip, scale_factor=2.0, mode="nearest")
        h = self.conv_1(h)
        h = self.conv_2(_affine_relu(h, scales[2], shifts[2]).to(act))
        h = self.conv_3(_affine_relu(h, scales[3], shifts[3]).to(act))
        return skip + h


class _Attention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019) as used by BigGAN: keys/values max-pooled 2x, unscaled logits.

    Two kernels for the same maths, chosen by :attr:`kernel` (set through :meth:`BigGANDeep.set_attention`):
    ``"sdpa"`` (:func:`torch.nn.functional.scaled_dot_product_attention`, fused on GPUs) and ``"bmm"`` (two batched
    matmuls with fp32 logits and softmax; on the CPU SDPA has no fused kernel for value size != query size and its
    composite fallback is ~18 % slower for the whole bf16 model).
    """

    KERNELS = ("sdpa", "bmm")

    def __init__(self, channels: int):
        super().__init__()
        self.c_qk = channels // 8
        self.c_v = channels // 2
        self.kernel = "sdpa"
        self.qkv = nn.Conv2d(channels, 2 * self.c_qk + self.c_v, 1, bias=False)  # theta | phi | g
        self.out = nn.Conv2d(self.c_v, channels, 1, bias=False)  # o_conv with gamma folded in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        act = self.qkv.weight.dtype
        theta, phi_g = self.qkv(x.to(act)).split([self.c_qk, self.c_qk + self.c_v], dim=1)
        phi, g = F.max_pool2d(phi_g, 2).split([self.c_qk, self.c_v], dim=1)
        if self.kernel == "bmm":
            q = theta.flatten(2).transpose(1, 2).float()  # [N, HW, c_qk]
            k = phi.flatten(2).float()  # [N, c_qk, HW/4]
            attn = torch.softmax(torch.bmm(q, k), dim=-1).to(act)  # [N, HW, HW/4]
            o = torch.bmm(attn, g.flatten(2).transpose(1, 2))  # [N, HW, c_v]
            o = o.transpose(1, 2).reshape(n, self.c_v, h, w)
        else:
            q = theta.flatten(2).transpose(1, 2).unsqueeze(1)  # [N, 1, HW, c_qk]
            k = phi.flatten(2).transpose(1, 2).unsqueeze(1)  # [N, 1, HW/4, c_qk]
            v = g.flatten(2).transpose(1, 2).unsqueeze(1)  # [N, 1, HW/4, c_v]
            o = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # [N, 1, HW, c_v]
            o = o.squeeze(1).transpose(1, 2).reshape(n, self.c_v, h, w)
        return x + self.out(o)


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
        check_state_dict(config, state_dict)
        sd = {k: v.detach().to("cpu", torch.float32) for k, v in state_dict.items()}

        def sn(prefix):
            return bake_spectral_norm(sd[prefix + ".weight_orig"], sd[prefix + ".weight_u"], sd[prefix + ".weight_v"])

        with torch.device("meta"):  # skip random initialisation: every tensor is assigned below
            model = cls(config)
        ours: dict[str, torch.Tensor] = {
            "class_embed.weight": sd["embeddings.weight"],
            "gen_z.weight": sn("generator.gen_z"),
            "gen_z.bias": sd["generator.gen_z.bias"],
        }
        scale_w, offset_w, scale_b, offset_b, means, variances = [], [], [], [], [], []
        for i, (_, cin, _) in enumerate(config.layers):
            pos = _layer_index(config, i)
            if i == config.attention_layer_position:
                p = f"generator.layers.{i}"
                ours[f"layers.{i}.qkv.weight"] = torch.cat(
                    [sn(f"{p}.snconv1x1_theta"), sn(f"{p}.snconv1x1_phi"), sn(f"{p}.snconv1x1_g")], dim=0)
                ours[f"layers.{i}.out.weight"] = sn(f"{p}.snconv1x1_o_conv") * sd[f"{p}.gamma"]
            p = f"generator.layers.{pos}"
            for j in range(4):
                ours[f"layers.{pos}.conv_{j}.weight"] = sn(f"{p}.conv_{j}")
                ours[f"layers.{pos}.conv_{j}.bias"] = sd[f"{p}.conv_{j}.bias"]
                b = f"{p}.bn_{j}"
                scale_w.append(sn(f"{b}.scale"))
                offset_w.append(sn(f"{b}.offset"))
                scale_b.append(torch.ones(scale_w[-1].shape[0]))
                offset_b.append(torch.zeros(offset_w[-1].shape[0]))
                means.append(sd[f"{b}.running_means"])
                variances.append(sd[f"{b}.running_vars"])
        ch, cond = config.channel_width, 2 * config.z_dim
        scale_w.append(torch.zeros(ch, cond))
        offset_w.append(torch.zeros(ch, cond))
        scale_b.append(sd["generator.bn.weight"])
        offset_b.append(sd["generator.bn.bias"])
        means.append(sd["generator.bn.running_means"])
        variances.append(sd["generator.bn.running_vars"])
        ours["bn_proj.weight"] = torch.cat(scale_w + offset_w, dim=0)
        ours["bn_proj.bias"] = torch.cat(scale_b + offset_b, dim=0)
        ours["bn_stats"] = torch.cat(means + variances, dim=1)
        rgb = sn("generator.conv_to_rgb")
        ours["to_rgb.weight"] = rgb[:3].contiguous()
        ours["to_rgb.bias"] = sd["generator.conv_to_rgb.bias"][:3].contiguous()
        bad = [k for k, v in ours.items() if not torch.isfinite(v).all()]
        if bad:
            raise WeightsError(f"weights give non-finite values in {len(bad)} tensor(s) (first: {bad[0]}); "
                               "the checkpoint is corrupt")
        if (ours["bn_stats"][:, model._bn_total:] + config.eps <= 0).any():
            raise WeightsError("weights hold negative batch-norm variances; the checkpoint is corrupt")
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

