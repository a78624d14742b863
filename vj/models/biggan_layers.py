"""The building blocks of vj's BigGAN-deep: the folded batch norm, the bottleneck residual block, self-attention.

Weights arrive already rewritten (:func:`vj.models.biggan_checkpoint.rewrite_published`): spectral norm baked
into plain convolutions, batch norms applied from per-sample ``scale``/``shift`` computed once per call by
:meth:`vj.models.biggan.BigGANDeep.coefficients`. Private to :mod:`vj.models`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
