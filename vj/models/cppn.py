"""CPPN: a zero-download, random-weight image generator with BigGAN's call signature.

A compositional pattern-producing network (K. O. Stanley, "Compositional pattern producing networks: A novel
abstraction of development", Genetic Programming and Evolvable Machines 8(2), 2007) maps each pixel's coordinates
through a small network of mixed smooth activation functions (sine, Gaussian, tanh, soft absolute value, ...) to
a colour. With seeded random weights it draws organic, symmetric-ish abstract patterns; conditioning the network
on BigGAN's two inputs makes it a drop-in stand-in for BigGAN-deep on any machine, with no weights to download:

* **Latent.** ``u = [noise @ P_z, c @ E]``: the 128-d noise vector through a fixed random projection, and the
  class vector ``c`` through a fixed random embedding ``E`` of the 1000 classes (``c`` is divided by its sum
  when that exceeds 1, so soft mixes are convex blends and an all-zero vector is valid). Each class therefore
  has its own structure and palette, and mixes blend smoothly.
* **Network.** Per pixel, features ``(x, y, r, r cos 3θ, r sin 3θ, ...)`` go through ``depth`` fully connected
  layers of ``width`` units; the latent adds a per-layer bias and a per-layer gain (feature-wise modulation),
  so the whole picture moves with the noise vector. Every unit has one activation from a seeded mix.
* **Colour.** The network's two outputs ``(t, v)`` go through a cosine palette
  ``rgb = a + b cos(2π (f t + φ))`` (after Inigo Quilez's "palettes" article) whose ``a, b, f, φ`` depend
  linearly on the latent, then are shaded by ``v``: images are saturated, never grey.
* **Truncation** ``τ`` sets how wild the picture is: it scales the spatial frequency (``0.55 + 0.6 τ``) and
  the latent's modulation (``0.35 + 0.65 τ``), so low truncation is calm, high is busy, as with BigGAN.

Everything is a smooth function of the noise vector, class vector and truncation, so small input changes give
small image changes (the live engine interpolates frames; offline renders move the noise smoothly).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["CPPN"]

_ACTIVATIONS = ("sin", "gauss", "tanh", "softabs", "sin2", "sigmoid")


def _act_(name: str, x: torch.Tensor) -> None:
    """Apply activation ``name`` to ``x`` in place; every activation maps to roughly [-1, 1]."""
    if name == "sin":
        x.sin_()
    elif name == "sin2":  # a second, double-frequency sine
        x.mul_(2.0).sin_()
    elif name == "gauss":
        x.square_().neg_().exp_().mul_(2.0).sub_(1.0)
    elif name == "tanh":
        x.tanh_()
    elif name == "softabs":
        x.square_().add_(0.01).sqrt_().sub_(0.8)
    elif name == "sigmoid":
        x.mul_(2.0).sigmoid_().mul_(2.0).sub_(1.0)
    else:
        raise ValueError(name)


class CPPN(nn.Module):
    """Random-weight CPPN generator, called like BigGAN: ``gen(noise, class_vector, truncation)``.

    Args:
        resolution: output height and width [pixels], 16..2048.
        seed: seeds every weight; the same seed gives the same generator (and output) on any machine.
        width: hidden units per layer.
        depth: number of hidden layers.

    Attributes:
        resolution (int), model_name = "cppn", dim_z = 128, num_classes = 1000.

    Raises:
        ValueError: resolution outside 16..2048, width < 6 or depth < 1.
    """

    model_name = "cppn"
    dim_z = 128
    num_classes = 1000

    def __init__(self, resolution: int = 128, seed: int = 0, width: int = 24, depth: int = 4):
        super().__init__()
        if not 16 <= int(resolution) <= 2048:
            raise ValueError(f"resolution {resolution} outside 16..2048")
        if width < len(_ACTIVATIONS) or depth < 1:
            raise ValueError("width must be >= 6 and depth >= 1")
        self.resolution = int(resolution)
        self.seed = int(seed)
        g = torch.Generator().manual_seed(self.seed)

        def randn(*shape, std=1.0):
            return torch.randn(*shape, generator=g, dtype=torch.float32) * std

        self._embed_dim = 32
        latent = self._embed_dim * 2
        self.register_buffer("proj_z", randn(self.dim_z, self._embed_dim, std=0.55 / math.sqrt(self.dim_z)))
        self.register_buffer("class_embed", randn(self.num_classes, self._embed_dim, std=0.6))
        self.register_buffer("base_latent", randn(latent, std=0.5))

        n_feat = 7
        self.register_buffer("w_in", randn(n_feat, width, std=1.0))
        self.register_buffer("b_in", randn(width, std=0.5))
        self.register_buffer("w_hidden", randn(depth - 1, width, width, std=1.2 / math.sqrt(width)))
        self.register_buffer("w_out", randn(width, 2, std=1.2 / math.sqrt(width)))
        # latent -> per-layer bias (depth x width) and gain (depth x width)
        self.register_buffer("lat_bias", randn(latent, depth, width, std=0.9 / math.sqrt(latent)))
        self.register_buffer("lat_gain", randn(latent, depth, width, std=0.6 / math.sqrt(latent)))
        # latent -> palette: offset a (3), amplitude b (3), frequency f (3), phase (3), plus the output shift
        self.register_buffer("lat_palette", randn(latent, 13, std=1.0 / math.sqrt(latent)))
        self.register_buffer("palette_base", torch.rand(13, generator=g))
        # units take the activations in contiguous blocks; weights are i.i.d., so this is as good as a shuffle
        bounds = [round(i * width / len(_ACTIVATIONS)) for i in range(len(_ACTIVATIONS) + 1)]
        self._blocks = [(a, bounds[i], bounds[i + 1]) for i, a in enumerate(_ACTIVATIONS)]
        self.depth = depth
        self.width = width
        self.register_buffer("features", self._coordinate_features(self.resolution), persistent=False)
        self.eval()
        self.requires_grad_(False)

    @staticmethod
    def _coordinate_features(res: int) -> torch.Tensor:
        """[res*res, 7] float32 per pixel: x, y in [-1, 1] (pixel centres), radius r, and the smooth harmonic
        polynomials x²-y², 2xy (= r² cos 2θ, r² sin 2θ) and x³-3xy², 3x²y-y³ (= r³ cos 3θ, r³ sin 3θ)."""
        c = (torch.arange(res, dtype=torch.float32) + 0.5) / res * 2.0 - 1.0
        y, x = torch.meshgrid(c, c, indexing="ij")
        r = torch.sqrt(x * x + y * y)
        f = torch.stack([x, y, r, x * x - y * y, 2 * x * y, x**3 - 3 * x * y * y, 3 * x * x * y - y**3], dim=-1)
        return f.reshape(res * res, 7)

    def _latent(self, noise: torch.Tensor, class_vector: torch.Tensor) -> torch.Tensor:
        mass = class_vector.sum(dim=1, keepdim=True).clamp(min=1.0)
        c = (class_vector / mass) @ self.class_embed
        z = noise @ self.proj_z
        return torch.cat([z, c], dim=1) + self.base_latent

    @torch.no_grad()
    def forward(self, noise: torch.Tensor, class_vector: torch.Tensor, truncation) -> torch.Tensor:
        """Draw one image per row of the inputs.

        Args:
            noise: float [N, 128], BigGAN's noise vector (typically within ±2·truncation).
            class_vector: float [N, 1000], non-negative class weights; one-hot, a soft mix, or all zero.
            truncation: float, or float tensor [N], > 0 (BigGAN uses 0.02..1); higher is wilder.

        Returns:
            tensor [N, 3, resolution, resolution], RGB in [-1, 1], in the module's dtype (float32 unless cast
            with ``.to(dtype=...)``) and on its device; inputs are moved and cast there.

        Raises:
            ValueError: shapes do not match ``[N, 128]``, ``[N, 1000]`` and ``[N]``.
        """
        dev, dt = self.features.device, self.features.dtype
        noise = torch.as_tensor(noise).to(dev, dt)
        class_vector = torch.as_tensor(class_vector).to(dev, dt)
        if noise.ndim != 2 or noise.shape[1] != self.dim_z:
            raise ValueError(f"noise must be [N, {self.dim_z}], got {list(noise.shape)}")
        n = noise.shape[0]
        if class_vector.shape != (n, self.num_classes):
            raise ValueError(f"class_vector must be [{n}, {self.num_classes}], got {list(class_vector.shape)}")
        tau = torch.as_tensor(truncation).to(dev, dt).reshape(-1)
        if tau.numel() == 1:
            tau = tau.expand(n)
        if tau.shape != (n,):
            raise ValueError(f"truncation must be a float or [{n}], got {list(tau.shape)}")
        tau = tau.clamp(0.0, 2.0)[:, None]  # [N, 1]

        u = self._latent(noise, class_vector)  # [N, L]
        wild = 0.35 + 0.65 * tau  # [N, 1]
        bias = torch.einsum("nl,ldw->ndw", u, self.lat_bias) * wild[:, :, None]  # [N, depth, width]
        gain = 1.0 + torch.tanh(torch.einsum("nl,ldw->ndw", u, self.lat_gain)) * wild[:, :, None]
        freq = 0.55 + 0.6 * tau  # [N, 1]

        # Channels first ([N, width, pixels]) so each activation's units are contiguous; each image's gains are
        # folded into its copy of the (small) weight matrices, so a layer is one batched matmul plus bias.
        feats = self.features.T.expand(n, -1, -1)  # [N, 7, P]
        w0 = self.w_in.T[None] * (freq[:, :, None] * gain[:, 0, :, None])  # [N, W, 7]
        h = torch.baddbmm((self.b_in + bias[:, 0])[:, :, None], w0, feats)  # [N, W, P]
        self._activate_(h)
        for layer in range(1, self.depth):
            wl = self.w_hidden[layer - 1].T[None] * gain[:, layer, :, None]  # [N, W, W]
            h = torch.baddbmm(bias[:, layer, :, None], wl, h)
            self._activate_(h)
        out = torch.matmul(self.w_out.T, h)  # [N, 2, P]

        pal = (self.palette_base + torch.tanh(u @ self.lat_palette) * 0.5)[:, :, None]  # [N, 13, 1]
        a = 0.5 + 0.1 * (pal[:, 0:3] - 0.5)  # offset ~0.5
        b = 0.42 + 0.16 * pal[:, 3:6]  # amplitude 0.42..0.58: vivid
        f = 0.4 + 0.5 * pal[:, 6:9]  # palette frequency
        phase = pal[:, 9:12]
        t = out[:, 0:1] * 0.7 + pal[:, 12:13] * 2.0  # [N, 1, P]
        rgb = torch.cos((f * t + phase) * (2 * math.pi)).mul_(b).add_(a)  # [N, 3, P], 0..1
        shade = torch.sigmoid(out[:, 1:2] * 2.5 + 0.8).mul_(0.55).add_(0.45)  # [N, 1, P]
        rgb = rgb.mul_(shade).clamp_(0.0, 1.0).mul_(2.0).sub_(1.0)
        return rgb.reshape(n, 3, self.resolution, self.resolution)

    def _activate_(self, h: torch.Tensor) -> None:
        """Apply each block's activation in place to ``h`` [N, width, P]."""
        for name, lo, hi in self._blocks:
            _act_(name, h[:, lo:hi])

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, seed={self.seed}, width={self.width}, depth={self.depth}"
