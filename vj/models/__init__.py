"""Image generators: BigGAN-deep (128/256/512 px) and a weight-free CPPN, behind one :func:`load_generator`.

Every generator is an ``nn.Module`` called as ``gen(noise [N, 128], class_vector [N, 1000], truncation)`` and
returning ``[N, 3, H, W]`` RGB in [-1, 1]; ``gen.resolution`` gives ``H == W`` in pixels.

Importing this package is cheap (torch is imported on first use), so ``vj.models.imagenet`` stays light.
"""

from __future__ import annotations

import logging
import os

from vj.errors import VJError

__all__ = ["MODEL_NAMES", "ALIASES", "canonical_name", "list_models", "load_generator", "is_biggan", "resolve_device"]

log = logging.getLogger("vj")

#: Names accepted by :func:`load_generator` ("auto" picks BigGAN-deep-128 if its weights are local, else the CPPN).
MODEL_NAMES = ("auto", "biggan-deep-128", "biggan-deep-256", "biggan-deep-512", "cppn")

#: Shorthands accepted as well (case-insensitive).
ALIASES = {
    "biggan": "biggan-deep-128",
    "biggan-deep": "biggan-deep-128",
    "biggan128": "biggan-deep-128",
    "biggan-128": "biggan-deep-128",
    "biggan256": "biggan-deep-256",
    "biggan-256": "biggan-deep-256",
    "biggan512": "biggan-deep-512",
    "biggan-512": "biggan-deep-512",
}


def canonical_name(name: str) -> str:
    """Map a model name or alias (any case) to one of :data:`MODEL_NAMES`.

    Raises:
        VJError: unknown name (the message lists the valid ones).
    """
    key = str(name).strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in MODEL_NAMES:
        raise VJError(f"unknown model {name!r}; valid: {', '.join(MODEL_NAMES)}")
    return key


def list_models() -> list[dict]:
    """Describe the models and whether their weights are available locally (no network).

    Returns:
        One dict per model in :data:`MODEL_NAMES` (without "auto"): ``name``, ``resolution`` [px],
        ``needs_weights`` (bool), ``available`` (bool) and ``where`` (a description, or why not).
    """
    from vj.models import weights as W

    rows = []
    for name in MODEL_NAMES[1:]:
        if name == "cppn":
            import importlib.util

            have = importlib.util.find_spec("vj.models.cppn") is not None
            rows.append(dict(name=name, resolution=128, needs_weights=False, available=have,
                             where="built in" if have else "vj.models.cppn is missing from this installation"))
            continue
        try:
            loc = W.find_local(name)
        except VJError as exc:
            loc, why = None, str(exc)
        else:
            rid = W.repo_for(name)
            why = f"not in the Hugging Face cache ({rid})" if rid else "no Hub repository known; use --weights"
        rows.append(dict(name=name, resolution=int(name.rsplit("-", 1)[1]), needs_weights=True,
                         available=loc is not None, where=loc.describe() if loc else why))
    return rows


def resolve_device(device="auto"):
    """Parse a device argument and check that it exists on this machine.

    Args:
        device: ``"auto"`` or None (CUDA when available, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, or a
            :class:`torch.device`.

    Returns:
        torch.device.

    Raises:
        VJError: a malformed device string, a device type other than cpu/cuda, CUDA asked for where it is not
            available, or a CUDA index beyond the devices present.
    """
    import torch

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise VJError(f"unknown device {device!r} (use cpu, cuda, cuda:N or auto)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise VJError(f"device {device}: no CUDA GPU is available here (use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise VJError(f"device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type != "cpu":
        raise VJError(f"unsupported device {device!r} (use cpu, cuda, cuda:N or auto)")
    return dev


def is_biggan(module) -> bool:
    """True for vj's BigGAN-deep, plain (:class:`vj.models.biggan.BigGANDeep`) or wrapped for low precision
    (:class:`vj.models.fast.MixedPrecisionBigGAN`); False for the CPPN and anything else.

    The one test used wherever code must tell BigGAN from other generators (it has batch norm to keep in fp32,
    low precision pays off, attention kernels can be chosen).
    """
    from vj.models.biggan import BigGANDeep
    from vj.models.fast import MixedPrecisionBigGAN

    return isinstance(module, (BigGANDeep, MixedPrecisionBigGAN))


def _cppn(device, dtype, seed=0):
    from vj.models.cppn import CPPN

    return CPPN(resolution=128, seed=seed).to(device=device, dtype=dtype).eval().requires_grad_(False)


def load_generator(name: str = "auto", weights: str | os.PathLike | None = None, device="cpu", dtype=None,
                   download: bool = True, repo: str | None = None, seed: int = 0):
    """Build an image generator ready for inference.

    Args:
        name: one of :data:`MODEL_NAMES` or an alias in :data:`ALIASES` (case-insensitive). ``"auto"`` is
            BigGAN-deep-128 when its weights are available without downloading (``weights`` given, or already in the
            Hugging Face cache), otherwise the CPPN; it logs one INFO line on the ``"vj"`` logger saying which and
            why, and never downloads.
        weights: a folder with ``pytorch_model.bin``/``model.safetensors`` + ``config.json``, or a single weights
            file; None to use the Hugging Face cache (and the Hub when ``download``). Ignored for ``"cppn"``.
        device: torch device (``"cpu"``, ``"cuda"``, a :class:`torch.device`).
        dtype: parameter dtype, :data:`torch.float32` when None.
        download: for an explicit BigGAN name, download missing weights from the Hub (with a progress bar).
        repo: Hub repository override (else ``$VJ_BIGGAN_REPO``, else the default; see :mod:`vj.models.weights`).
        seed: seeds the CPPN's random network (its look); BigGAN ignores it.

    Returns:
        ``torch.nn.Module`` in eval mode with gradients off, with ``resolution`` [px] and ``model_name``.

    Raises:
        VJError: unknown name.
        WeightsError: weights missing (one paragraph naming the ways to provide them), corrupt or mismatched.
    """
    import torch

    from vj.models import weights as W

    key = canonical_name(name)
    dtype = dtype or torch.float32
    if key == "cppn":
        return _cppn(device, dtype, seed)
    if key == "auto":
        loc = W.find_local("biggan-deep-128", weights, repo)
        if loc is None:
            rid = W.repo_for("biggan-deep-128", repo)
            log.info("model: CPPN (no BigGAN-deep-128 weights in the Hugging Face cache for %s and no --weights; "
                     "run `vj weights download biggan-deep-128` once online to use BigGAN)", rid)
            return _cppn(device, dtype, seed)
        loc = W.adopt_config_name(loc)
        log.info("model: %s (weights from %s)", loc.model_name, loc.describe())
        return W.load_location(loc).to(device=device, dtype=dtype)
    return W.load_biggan(key, weights, repo, download_ok=download, device=device, dtype=dtype)
