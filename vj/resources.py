"""Locating vj's bundled files: shaders, presets and package data.

In a source checkout (editable install) ``shaders/`` and ``presets/`` sit beside the ``vj`` package; in a wheel
they are installed inside it as ``vj/_shaders`` and ``vj/_presets``. :func:`shader_dir` and :func:`preset_dir`
hide the difference.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _first_existing(*candidates: Path) -> Path:
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]


def shader_dir() -> Path:
    """Directory holding the GLSL files (``*.vert``, ``*.frag``)."""
    return _first_existing(_PKG / "_shaders", _PKG.parent / "shaders")


def preset_dir() -> Path:
    """Directory holding the shipped presets (``*.toml``)."""
    return _first_existing(_PKG / "_presets", _PKG.parent / "presets")


def data_path(name: str) -> Path:
    """Path of a package data file in ``vj/data`` (e.g. ``demo.flac``, ``imagenet_classes.tsv``)."""
    return _PKG / "data" / name
