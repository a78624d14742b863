"""CaptureClock: sample index → capture instant, from ADC reports or arrivals, without jumps."""

from __future__ import annotations

import numpy as np
import pytest

from vj.audio.capture_clock import CaptureClock

SR = 48000


def _feed(clock, blocks, arrival, adc=None, stream_offset=1000.0):
    """Feed blocks of the given sizes; arrival(k_end) -> arrival time; adc(k0) -> ADC time on the vj clock."""
    out = []
    k = 0
    for n in blocks:
        t_arr = arrival(k + n)
        adc_s = adc(k) + stream_offset if adc is not None else 0.0
        clock.observe(n, t_arr, adc_s, t_arr + stream_offset if adc is not None else 0.0)
        k += n
        out.append(clock.capture_time(k))
    return np.array(out)


def test_plausible_adc_times_give_exact_capture_times():
    clock = CaptureClock(SR, max_adc_lag_s=0.05)
    blocks = [256, 100, 700, 512, 33] * 20
    ends = np.cumsum(blocks)
    got = _feed(clock, blocks, arrival=lambda k: 10.0 + k / SR + 0.003, adc=lambda k: 10.0 + k / SR)
    np.testing.assert_allclose(got, 10.0 + ends / SR, atol=1e-9)


def test_implausible_latency_report_is_ignored_and_arrival_bounds_the_time():
    """A host reporting half a second of latency must not move the capture times half a second early."""
    clock = CaptureClock(SR, max_adc_lag_s=0.05)
    rng = np.random.default_rng(1)
    blocks = [512] * 200
    ends = np.cumsum(blocks)
    jitter = rng.uniform(0.001, 0.004, len(blocks))
    arrivals = iter(5.0 + ends / SR + jitter)
    got = _feed(clock, blocks, arrival=lambda k: next(arrivals), adc=lambda k: 5.0 + k / SR - 0.5)
    err = got - (5.0 + ends / SR)
    assert np.all(err >= 0.0) and np.all(err <= jitter + 1e-12)  # never after arrival, never before the truth
    # hop-spaced: the anchor only steps earlier by the arrival jitter (≤ 3 ms) or creeps by the leak
    np.testing.assert_allclose(np.diff(got), 512 / SR, atol=0.003 + 1e-3 * 512 / SR)
    assert np.mean(np.abs(np.diff(got) - 512 / SR) < 1e-4) > 0.8


def test_anchor_follows_drift_at_most_at_the_leak_rate():
    clock = CaptureClock(SR, leak=1e-3)
    blocks = [480] * 1000  # 10 s
    ends = np.cumsum(blocks)
    # the device runs 0.5 % slow against our clock: arrivals drift later by 5 ms per second
    got = _feed(clock, blocks, arrival=lambda k: 2.0 + k / SR * 1.005)
    # the anchor creeps by at most 1 ms per second of audio, so the capture time lags the arrival by ≤ 4 ms/s
    lag = (2.0 + ends / SR * 1.005) - got
    assert lag[-1] == pytest.approx(10.0 * (0.005 - 0.001), rel=0.05)
    assert np.all(np.diff(got) > 0)


def test_reset_starts_a_new_stream():
    clock = CaptureClock(SR)
    clock.observe(512, 3.0)
    assert clock.samples == 512 and clock.capture_time(512) == pytest.approx(3.0)
    clock.reset()
    assert clock.samples == 0
    clock.observe(512, 7.0)
    assert clock.capture_time(0) == pytest.approx(7.0 - 512 / SR)
    with pytest.raises(ValueError):
        CaptureClock(0)
