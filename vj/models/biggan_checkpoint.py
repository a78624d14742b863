"""The published BigGAN-deep checkpoint format, and its exact load-time rewrite into vj's layout.

Format: pytorch-pretrained-biggan's state dict (Hugging Face's conversion of DeepMind's TF-Hub modules), whose
spectral-normalised layers are stored as ``weight_orig``/``weight_u``/``weight_v`` (506 keys for 128 px):
:func:`published_shapes` lists it, :func:`check_state_dict` checks a state dict against it strictly, and
:func:`random_state_dict` makes random weights in it for tests and benchmarks.

:func:`rewrite_published` turns a checked state dict into the state dict of :class:`vj.models.biggan.BigGANDeep`
(spectral norm baked in by :func:`bake_spectral_norm`, RGB filters only, merged batch-norm projections and
statistics, merged attention projections with ``gamma`` folded in; see :mod:`vj.models.biggan`).
Re-exported by :mod:`vj.models.biggan`.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F

from vj.errors import WeightsError
from vj.models.biggan_config import BigGANConfig

__all__ = ["bake_spectral_norm", "check_state_dict", "published_shapes", "random_state_dict", "rewrite_published"]


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


def rewrite_published(config: BigGANConfig, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Check a published state dict strictly and rewrite it, exactly, into :class:`vj.models.biggan.BigGANDeep`'s.

    Spectral norm baked in (:func:`bake_spectral_norm`); attention's theta/phi/g stacked into one ``qkv`` weight and
    ``gamma`` folded into ``out``; every conditional batch norm's scale and offset projections (and the final,
    unconditional one as zero rows with its weight/bias as the bias) stacked into ``bn_proj`` ``[2*C_total, 256]``
    (gammas, then betas; the "1 +" of the scale as bias ones); all means and variances into ``bn_stats``
    ``[n_stats, 2*C_total]``; only the 3 RGB filters of ``conv_to_rgb``.

    Args:
        config: layout (from the checkpoint's ``config.json`` or :data:`vj.models.biggan.CONFIGS`).
        state_dict: ``{key: tensor}`` in the published format (any float dtype; baked in float32 on CPU).

    Returns:
        ``{key: float32 CPU tensor}``, loadable with ``BigGANDeep(config).load_state_dict(..., strict=True)``.

    Raises:
        WeightsError: missing/unexpected keys, wrong shapes, non-finite values after baking, or negative
            batch-norm variances.
    """
    check_state_dict(config, state_dict)
    sd = {k: v.detach().to("cpu", torch.float32) for k, v in state_dict.items()}

    def sn(prefix):
        return bake_spectral_norm(sd[prefix + ".weight_orig"], sd[prefix + ".weight_u"], sd[prefix + ".weight_v"])

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
    total = ours["bn_stats"].shape[1] // 2  # channels of all batch norms
    rgb = sn("generator.conv_to_rgb")
    ours["to_rgb.weight"] = rgb[:3].contiguous()
    ours["to_rgb.bias"] = sd["generator.conv_to_rgb.bias"][:3].contiguous()
    bad = [k for k, v in ours.items() if not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"weights give non-finite values in {len(bad)} tensor(s) (first: {bad[0]}); "
                           "the checkpoint is corrupt")
    if (ours["bn_stats"][:, total:] + config.eps <= 0).any():
        raise WeightsError("weights hold negative batch-norm variances; the checkpoint is corrupt")
    return ours
