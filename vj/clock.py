"""The one clock of vj: every instant the engine and the control side exchange is on it.

Audio capture times (:attr:`vj.audio.features.Features.capture_time_s`), frame timestamps, stats, the beat clock,
preset crossfades, OSC and MIDI event times are all :func:`now_s` seconds, so they can be compared and subtracted
without offsets. It is :func:`time.perf_counter`: monotonic, the finest resolution Python offers, and on Linux the
same ``CLOCK_MONOTONIC`` that ``time.monotonic`` reads. Its epoch is arbitrary (only differences mean anything).
Tests that need a fake clock pass a ``time_fn``/``clock`` callable where a class takes one.
"""

from __future__ import annotations

import time

#: now_s() -> float: the current instant [s] on vj's clock (``time.perf_counter``)
now_s = time.perf_counter

__all__ = ["now_s"]
