"""Finding, reading, downloading and converting BigGAN-deep weights.

Where weights come from, in this order (see :func:`resolve`):

1. an explicit path (``--weights PATH``): a folder holding ``model.safetensors`` or ``pytorch_model.bin`` plus
   ``config.json``, or a single ``.safetensors``/``.bin`` file (its configuration is then the built-in one for the
   requested model, or the one :func:`convert` stored in the safetensors metadata);
2. the Hugging Face cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``), looked up
   without touching the network;
3. a download from the Hugging Face Hub with ``huggingface_hub``'s progress bar - only when allowed
   (``download=True``, ``HF_HUB_OFFLINE`` unset). Nothing is ever downloaded silently during a show:
   ``load_generator("auto")`` never downloads.

Hub repositories (override with the ``repo`` argument or the ``VJ_BIGGAN_REPO`` environment variable, which may
contain ``{resolution}`` or ``{name}``, e.g. ``myorg/BigGAN-deep-{resolution}``):

* ``biggan-deep-128``: ``osanseviero/BigGAN-deep-128`` (``pytorch_model.bin`` + ``config.json``, the
  pytorch-pretrained-biggan files, 211 MB).
* ``biggan-deep-256`` and ``biggan-deep-512``: no default. We found no Hub mirror of these checkpoints that we
  could verify; pass ``repo=``/``--repo``/``VJ_BIGGAN_REPO`` naming a repository with the same two files, or give
  the files with ``--weights``.

Checkpoints are read safely: ``.bin`` with ``torch.load(weights_only=True)``, ``.safetensors`` with safetensors.
Every problem a user can cause is a :class:`vj.errors.WeightsError` with a one-line (or, for "no weights", one
paragraph) message.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vj.errors import VJError, WeightsError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from vj.models.biggan import BigGANConfig, BigGANDeep

__all__ = [
    "BIGGAN_NAMES",
    "DEFAULT_REPOS",
    "ENV_REPO",
    "WeightsLocation",
    "convert",
    "download",
    "adopt_config_name",
    "find_local",
    "hf_cache_dir",
    "load_biggan",
    "read_state_dict",
    "repo_for",
    "resolve",
]

#: The BigGAN-deep models vj knows.
BIGGAN_NAMES = ("biggan-deep-128", "biggan-deep-256", "biggan-deep-512")

#: Default Hugging Face Hub repository per model (None: no verified public mirror; see the module docstring).
DEFAULT_REPOS: dict[str, str | None] = {
    "biggan-deep-128": "osanseviero/BigGAN-deep-128",
    "biggan-deep-256": None,
    "biggan-deep-512": None,
}

#: Environment variable overriding the Hub repository (``{resolution}``/``{name}`` are substituted).
ENV_REPO = "VJ_BIGGAN_REPO"

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
CONFIG_FILE = "config.json"
_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True)
class WeightsLocation:
    """Where a model's weights were found.

    Attributes:
        model_name: e.g. ``"biggan-deep-128"``.
        weights_path: the ``.bin``/``.safetensors`` file.
        config_path: its ``config.json``, or None (built-in configuration / safetensors metadata).
        source: ``"path"`` (given by the user), ``"cache"`` (Hugging Face cache) or ``"download"``.
        repo: the Hub repository for ``"cache"``/``"download"``, else None.
    """

    model_name: str
    weights_path: Path
    config_path: Path | None
    source: str
    repo: str | None = None

    def describe(self) -> str:
        """One line such as ``"Hugging Face cache (osanseviero/BigGAN-deep-128): /path/pytorch_model.bin"``."""
        where = {"path": "given path", "cache": "Hugging Face cache", "download": "downloaded"}[self.source]
        repo = f" ({self.repo})" if self.repo else ""
        return f"{where}{repo}: {self.weights_path}"


def _check_name(name: str) -> str:
    key = name.strip().lower()
    if key not in BIGGAN_NAMES:
        raise VJError(f"unknown BigGAN model {name!r}; valid: {', '.join(BIGGAN_NAMES)}")
    return key


def repo_for(name: str, repo: str | None = None) -> str | None:
    """Hub repository for ``name``: ``repo`` if given, else ``$VJ_BIGGAN_REPO``, else :data:`DEFAULT_REPOS`.

    Args:
        name: one of :data:`BIGGAN_NAMES`.
        repo: explicit ``owner/name``; may contain ``{resolution}`` or ``{name}``.

    Returns:
        ``owner/name``, or None when no repository is known for this model.
    """
    name = _check_name(name)
    chosen = repo or os.environ.get(ENV_REPO) or DEFAULT_REPOS[name]
    if not chosen:
        return None
    try:
        return chosen.format(resolution=name.rsplit("-", 1)[1], name=name)
    except (KeyError, IndexError, ValueError):
        raise VJError(f"bad repository template {chosen!r} (use {{resolution}} or {{name}})") from None


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache folder, read from the environment at call time.

    ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``, else
    ``~/.cache/huggingface/hub`` (huggingface_hub's own rules).
    """
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _from_path(name: str, path: str | os.PathLike) -> WeightsLocation:
    p = Path(path).expanduser()
    if p.is_dir():
        for fname in WEIGHT_FILES:
            if (p / fname).is_file():
                cfg = p / CONFIG_FILE
                return WeightsLocation(name, p / fname, cfg if cfg.is_file() else None, "path")
        raise WeightsError(f"{p} holds neither {' nor '.join(WEIGHT_FILES)}")
    if p.is_file():
        if p.suffix.lower() not in _SUFFIXES:
            raise WeightsError(f"{p} is not a weights file (expected {', '.join(_SUFFIXES)} or a folder)")
        return WeightsLocation(name, p, None, "path")
    raise WeightsError(f"weights path {p} does not exist")


def _from_cache(name: str, repo: str) -> WeightsLocation | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a hard dependency, but keep "auto" working without it
        return None
    cache = hf_cache_dir()
    if not cache.is_dir():
        return None
    try:
        cfg = try_to_load_from_cache(repo, CONFIG_FILE, cache_dir=cache)
        for fname in WEIGHT_FILES:
            found = try_to_load_from_cache(repo, fname, cache_dir=cache)
            if isinstance(found, str) and isinstance(cfg, str):
                return WeightsLocation(name, Path(found), Path(cfg), "cache", repo)
    except Exception:  # noqa: BLE001 - a malformed repo id or cache entry means "not in the cache"
        return None
    return None


def find_local(name: str = "biggan-deep-128", weights: str | os.PathLike | None = None,
               repo: str | None = None) -> WeightsLocation | None:
    """Weights available without the network: the explicit path, else the Hugging Face cache.

    Args:
        name: one of :data:`BIGGAN_NAMES`.
        weights: explicit file or folder, or None.
        repo: Hub repository override (see :func:`repo_for`).

    Returns:
        A :class:`WeightsLocation`, or None when nothing is cached (and no path was given).

    Raises:
        WeightsError: an explicit path that does not exist or holds no weights file.
    """
    name = _check_name(name)
    if weights is not None:
        return _from_path(name, weights)
    rid = repo_for(name, repo)
    return _from_cache(name, rid) if rid else None


def _missing_paragraph(name: str, rid: str | None, reason: str) -> str:
    if rid:
        ways = [f"run `vj weights download {name}` once while online",
                "pass --weights PATH with a folder holding pytorch_model.bin or model.safetensors plus config.json, "
                "or a single .bin/.safetensors file",
                f"point HF_HOME (or HF_HUB_CACHE) at a Hugging Face cache that already holds {rid} "
                f"(now {hf_cache_dir()})",
                f"or set {ENV_REPO} to another Hub repository with the same files"]
    else:
        ways = [f"run `vj weights download {name} --repo OWNER/NAME` once while online, naming a Hub repository "
                f"with pytorch_model.bin and config.json (no public mirror is known for {name})",
                "pass --weights PATH with a folder holding pytorch_model.bin or model.safetensors plus config.json, "
                "or a single .bin/.safetensors file",
                f"or set {ENV_REPO} to such a Hub repository and keep its files in the Hugging Face cache "
                f"({hf_cache_dir()}, moved with HF_HOME)"]
    return (f"{name} weights are not available ({reason}). Provide them in one of these ways: "
            + "; ".join(ways) + ". The CPPN generator (model 'cppn') needs no weights.")


def download(name: str = "biggan-deep-128", repo: str | None = None) -> WeightsLocation:
    """Download ``config.json`` and the weights from the Hub into the Hugging Face cache (with a progress bar).

    Args:
        name: one of :data:`BIGGAN_NAMES`.
        repo: Hub repository override (see :func:`repo_for`).

    Returns:
        The cached :class:`WeightsLocation` (``source="download"``).

    Raises:
        WeightsError: offline (``HF_HUB_OFFLINE``), no repository known, or the download failed - one paragraph
            naming every way to provide the weights.
    """
    name = _check_name(name)
    rid = repo_for(name, repo)
    if rid is None:
        raise WeightsError(_missing_paragraph(name, None, "no Hub repository is known for it"))
    if _offline():
        raise WeightsError(_missing_paragraph(name, rid, "HF_HUB_OFFLINE is set and they are not in the cache"))
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError
    except ImportError:  # pragma: no cover
        raise WeightsError(_missing_paragraph(name, rid, "huggingface_hub is not installed")) from None
    cache = hf_cache_dir()
    try:
        cfg = hf_hub_download(rid, CONFIG_FILE, cache_dir=cache)
        path = None
        for fname in ("pytorch_model.bin", "model.safetensors"):
            try:
                path = hf_hub_download(rid, fname, cache_dir=cache)
                break
            except EntryNotFoundError:
                continue
        if path is None:
            raise WeightsError(f"Hub repository {rid} has neither pytorch_model.bin nor model.safetensors")
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - network, auth, missing repo: all reported the same way
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightsError(_missing_paragraph(name, rid, f"download from {rid} failed: {first[:200]}")) from None
    return WeightsLocation(name, Path(path), Path(cfg), "download", rid)


def resolve(name: str = "biggan-deep-128", weights: str | os.PathLike | None = None, repo: str | None = None,
            download_ok: bool = True) -> WeightsLocation:
    """Locate weights: explicit path, else the Hugging Face cache, else (if ``download_ok``) the Hub.

    Args:
        name: one of :data:`BIGGAN_NAMES`.
        weights: explicit file or folder, or None.
        repo: Hub repository override (see :func:`repo_for`).
        download_ok: allow a download when nothing is found locally.

    Returns:
        A :class:`WeightsLocation`.

    Raises:
        WeightsError: nothing found and no download possible (one paragraph naming the ways to provide weights),
            or a bad explicit path.
    """
    found = find_local(name, weights, repo)
    if found is not None:
        return found
    name = _check_name(name)
    if not download_ok:
        raise WeightsError(_missing_paragraph(name, repo_for(name, repo),
                                              "not in the Hugging Face cache and downloading is off"))
    return download(name, repo)


# --------------------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def read_state_dict(path: str | os.PathLike) -> dict[str, "torch.Tensor"]:
    """Read a checkpoint safely into ``{key: tensor}`` on the CPU.

    ``.safetensors`` files with :mod:`safetensors`; anything else with ``torch.load(weights_only=True)`` (both the
    zip format and the legacy pre-1.6 format of the published 2019 files).

    Args:
        path: the file.

    Returns:
        The state dict (tensors on the CPU, as stored).

    Raises:
        WeightsError: unreadable, truncated, not a checkpoint, or not a mapping of names to tensors.
    """
    import torch

    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise WeightsError(f"cannot read weights {p}: {exc.strerror or exc}") from None
    if size == 0:
        raise WeightsError(f"weights file {p} is empty")
    if _is_safetensors(p):
        try:
            from safetensors.torch import load_file

            sd = load_file(str(p), device="cpu")
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for corrupt files
            raise WeightsError(f"{p} is not a readable safetensors file ({_first_line(exc)})") from None
    else:
        try:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - pickle, zip and runtime errors for corrupt/truncated files
            raise WeightsError(f"{p} is not a readable PyTorch checkpoint (truncated or corrupt? "
                               f"{_first_line(exc)})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not sd:
        raise WeightsError(f"{p} does not hold a state dict (found {type(sd).__name__})")
    bad = [k for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{p} holds {len(bad)} entries that are not named tensors (first: {bad[0]!r})")
    return dict(sd)


def _is_safetensors(p: Path) -> bool:
    if p.suffix.lower() == ".safetensors":
        return True
    if p.suffix.lower() in (".bin", ".pt", ".pth") or zipfile.is_zipfile(p):
        return False
    # sniff: 8-byte little-endian header length followed by a JSON object
    try:
        with open(p, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000


def _safetensors_config(p: Path) -> dict | None:
    try:
        from safetensors import safe_open

        with safe_open(str(p), framework="pt") as fh:
            meta = fh.metadata() or {}
        return json.loads(meta["vj_biggan_config"]) if "vj_biggan_config" in meta else None
    except Exception:  # noqa: BLE001 - unreadable files are reported by read_state_dict
        return None


def read_config(location: WeightsLocation) -> "BigGANConfig":
    """The configuration for ``location``: its ``config.json``, else safetensors metadata, else built-in.

    Raises:
        WeightsError: unreadable/invalid ``config.json``, or one describing another model than requested.
    """
    from vj.models.biggan import CONFIGS, BigGANConfig

    if location.config_path is not None:
        config = BigGANConfig.from_json_file(location.config_path)
    elif _is_safetensors(location.weights_path) and (meta := _safetensors_config(location.weights_path)):
        config = BigGANConfig.from_dict(meta)
    else:
        return CONFIGS[location.model_name]
    if config.model_name != location.model_name:
        raise WeightsError(f"{location.config_path or location.weights_path} describes {config.model_name}, "
                           f"not {location.model_name}")
    return config


def adopt_config_name(location: WeightsLocation) -> WeightsLocation:
    """Rename ``location`` to the model its ``config.json`` (or safetensors metadata) describes ("auto" + path).

    Raises:
        WeightsError: unreadable or invalid ``config.json``.
    """
    from vj.models.biggan import BigGANConfig

    if location.config_path is not None:
        name = BigGANConfig.from_json_file(location.config_path).model_name
    elif _is_safetensors(location.weights_path) and (meta := _safetensors_config(location.weights_path)):
        name = BigGANConfig.from_dict(meta).model_name
    else:
        return location
    return WeightsLocation(name, location.weights_path, location.config_path, location.source, location.repo)


def load_location(location: WeightsLocation) -> "BigGANDeep":
    """Read, check strictly and build the model for ``location`` (float32, CPU).

    Raises:
        WeightsError: corrupt file, bad configuration, or a state dict that does not match it.
    """
    from vj.models.biggan import BigGANDeep

    config = read_config(location)
    sd = read_state_dict(location.weights_path)
    try:
        return BigGANDeep.from_published(config, sd)
    except WeightsError as exc:
        raise WeightsError(f"{location.weights_path}: {exc}") from None


def load_biggan(name: str = "biggan-deep-128", weights: str | os.PathLike | None = None, repo: str | None = None,
                download_ok: bool = True, device="cpu", dtype=None) -> "BigGANDeep":
    """Locate (see :func:`resolve`), read and build a BigGAN-deep generator.

    Args:
        name: one of :data:`BIGGAN_NAMES`.
        weights: explicit file or folder, or None.
        repo: Hub repository override.
        download_ok: allow a download when nothing is found locally.
        device: torch device for the model.
        dtype: parameter dtype (default float32).

    Returns:
        :class:`vj.models.biggan.BigGANDeep` in eval mode with gradients off.

    Raises:
        WeightsError: see :func:`resolve` and :func:`load_location`.
    """
    import torch

    model = load_location(resolve(name, weights, repo, download_ok))
    return model.to(device=device, dtype=dtype or torch.float32)


def convert(src: str | os.PathLike, dst: str | os.PathLike, name: str | None = None) -> Path:
    """Convert a published checkpoint (``.bin`` or a folder) to one ``.safetensors`` file, verified by strict load.

    The configuration is stored in the file's metadata (``vj_biggan_config``), so the single file is enough.

    Args:
        src: a ``.bin``/``.safetensors`` file or a folder with ``config.json``.
        dst: output path ending in ``.safetensors`` (parent folders are created).
        name: model name for a bare file without ``config.json`` (default ``biggan-deep-128``).

    Returns:
        ``dst`` as a :class:`~pathlib.Path`.

    Raises:
        WeightsError: unreadable or mismatched source, or a failed verification of the written file.
        VJError: ``dst`` does not end in ``.safetensors`` or cannot be written.
    """
    from safetensors.torch import save_file

    from vj.models.biggan import BigGANDeep, check_state_dict

    dst = Path(dst).expanduser()
    if dst.suffix.lower() != ".safetensors":
        raise VJError(f"output {dst} must end in .safetensors")
    loc = _from_path(_check_name(name or "biggan-deep-128"), src)
    if loc.config_path is not None and name is None:
        from vj.models.biggan import BigGANConfig

        cfg_name = BigGANConfig.from_json_file(loc.config_path).model_name
        loc = WeightsLocation(cfg_name, loc.weights_path, loc.config_path, "path")
    config = read_config(loc)
    sd = read_state_dict(loc.weights_path)
    try:
        check_state_dict(config, sd)
    except WeightsError as exc:
        raise WeightsError(f"{loc.weights_path}: {exc}") from None
    tensors = {k: v.detach().contiguous() for k, v in sd.items()}
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(dst), metadata={"format": "pt", "vj_biggan_config": json.dumps(config.to_dict())})
    except OSError as exc:
        raise VJError(f"cannot write {dst}: {exc.strerror or exc}") from None
    written = WeightsLocation(config.model_name, dst, None, "path")
    BigGANDeep.from_published(read_config(written), read_state_dict(dst))  # verify
    return dst
