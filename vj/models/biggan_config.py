"""BigGAN-deep hyper-parameters: :class:`BigGANConfig` (the published ``config.json``) and :data:`CONFIGS`.

The fields and the three published layouts (128, 256 and 512 px) are those of pytorch-pretrained-biggan's
conversion of DeepMind's TF-Hub modules; :meth:`BigGANConfig.validate` rejects any layout that
:class:`vj.models.biggan.BigGANDeep` cannot build. Re-exported by :mod:`vj.models.biggan`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

from vj.errors import WeightsError

__all__ = ["BigGANConfig", "CONFIGS"]

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
