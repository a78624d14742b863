"""Argument types shared by subcommands: range-checked numbers with one-line error messages."""

from __future__ import annotations

import argparse
import math


def ranged(kind, lo=None, hi=None, *, lo_open=False, hi_open=False):
    """argparse ``type=`` that parses ``kind`` (int or float) and checks ``lo <= x <= hi``.

    Raises:
        argparse.ArgumentTypeError: not a number, NaN/inf, or out of range (argparse prints it on one line).
    """

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise argparse.ArgumentTypeError(f"{value} is out of range ({_range(lo, hi, lo_open, hi_open)})")
        if hi is not None and (value > hi or (hi_open and value == hi)):
            raise argparse.ArgumentTypeError(f"{value} is out of range ({_range(lo, hi, lo_open, hi_open)})")
        return value

    parse.__name__ = kind.__name__
    return parse


def _range(lo, hi, lo_open, hi_open) -> str:
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def resolution(text: str) -> tuple[int, int]:
    """Parse ``WIDTHxHEIGHT`` or a single ``SIZE`` (square) into (width, height), each even and 16..8192."""
    parts = text.lower().split("x")
    try:
        if len(parts) == 1:
            w = h = int(parts[0])
        elif len(parts) == 2:
            w, h = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a resolution like 512 or 1280x720") from None
    for v in (w, h):
        if not 16 <= v <= 8192 or v % 2:
            raise argparse.ArgumentTypeError(f"{text!r}: width and height must be even and within 16..8192")
    return w, h


def tempo_range(text: str) -> tuple[float, float]:
    """Parse ``LO-HI`` [bpm] (e.g. ``110-150``) for ``--tempo-range``: 30 <= LO, HI <= 300 and HI >= 1.25 LO
    (the beat clock needs room for a little more than a major third).

    Raises:
        argparse.ArgumentTypeError: not two numbers, out of 30..300, or too narrow.
    """
    import argparse

    parts = text.replace(":", "-").split("-")
    try:
        lo, hi = (float(x) for x in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LO-HI in bpm (e.g. 110-150)") from None
    if not (30.0 <= lo < hi <= 300.0):
        raise argparse.ArgumentTypeError(f"{text!r}: need 30 <= LO < HI <= 300 bpm")
    if hi < 1.25 * lo:
        raise argparse.ArgumentTypeError(f"{text!r}: too narrow; HI must be at least 1.25 x LO")
    return lo, hi
