"""The latent trajectory of a render: one row of BigGAN inputs per video frame, saved and loaded as ``.npz``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vj.errors import VJError

DIM_Z = 128
NUM_CLASSES = 1000


@dataclass
class LatentTrack:
    """A latent trajectory: one row per video frame (what ``--save-latents`` writes).

    Attributes:
        noise: float32 [shape=(F, 128)].
        class_vectors: float32 [shape=(F, 1000)].
        truncation: float32 [shape=(F,)].
        fps: frames per second the track was made for.
        classes: the palette used (ImageNet indices).
        settings: the settings used, as JSON.
    """

    noise: np.ndarray
    class_vectors: np.ndarray
    truncation: np.ndarray
    fps: float
    classes: list[int] = field(default_factory=list)
    settings: str = "{}"

    def __len__(self) -> int:
        return int(self.noise.shape[0])

    def save(self, path: str | Path) -> None:
        """Write a compressed ``.npz`` (atomically: temporary name, then rename).

        Raises:
            VJError: the file cannot be written.
        """
        path = Path(path)
        tmp = path.with_name(path.name + ".part.npz")
        try:
            np.savez_compressed(
                tmp,
                noise=self.noise.astype(np.float32),
                class_vectors=self.class_vectors.astype(np.float32),
                truncation=self.truncation.astype(np.float32),
                fps=np.float64(self.fps),
                classes=np.asarray(self.classes, np.int64),
                settings=np.asarray(self.settings),
                format=np.asarray("vj-latents-1"),
            )
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise VJError(f"cannot write latents to {path}: {exc.strerror or exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> "LatentTrack":
        """Read a track written by :meth:`save`.

        Raises:
            VJError: missing file, not a vj latents file, or inconsistent shapes.
        """
        path = Path(path)
        if not path.is_file():
            raise VJError(f"latents file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["format"]) != "vj-latents-1":
                    raise ValueError("unknown format")
                track = cls(
                    z["noise"], z["class_vectors"], z["truncation"], float(z["fps"]),
                    [int(c) for c in z["classes"]], str(z["settings"]),
                )
        except (OSError, ValueError, KeyError) as exc:
            raise VJError(f"{path} is not a vj latents file ({exc})") from None
        n = len(track)
        if track.noise.shape != (n, DIM_Z) or track.class_vectors.shape != (n, NUM_CLASSES) or track.truncation.shape != (n,):
            raise VJError(f"{path}: inconsistent latent shapes")
        if not (np.isfinite(track.noise).all() and np.isfinite(track.class_vectors).all()):
            raise VJError(f"{path}: latents contain NaN or inf")
        return track
