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
