"""When was a sample captured? The sample clock of a live input, anchored to the vj clock.

PortAudio hands over blocks some time after their samples reached the ADC, and host APIs report that time with
varying honesty (PulseAudio's ALSA plug-in reports half a second on an idle monitor and 15 ms a moment later).
:class:`CaptureClock` turns "sample k of the stream" into a capture instant on :func:`vj.clock.now_s` that is
hop-spaced, never later than the block's arrival, and does not jump when the host's latency report does. It is
pure arithmetic (no I/O, no allocation) so the PortAudio callback can call it and tests can drive it directly.
"""

from __future__ import annotations

#: how fast the anchor may move later [s per s of audio] (1000 ppm, far above crystal drift)
DEFAULT_LEAK = 1e-3


class CaptureClock:
    """Capture times of a stream's samples: ``capture(k) = anchor + k / sample_rate``.

    Each block gives an observation of when its last sample was captured: PortAudio's ``inputBufferAdcTime``
    mapped onto the vj clock (through the offset between the stream clock's ``currentTime`` and the arrival
    instant) where it is plausible — 0..``max_adc_lag_s`` before the block arrived — else the arrival time (an
    upper bound). The anchor (the capture instant of sample 0) follows the earliest observation, and may creep
    later by at most ``leak`` seconds per second of audio, to follow the device clock's drift.

    Args:
        sample_rate: samples per second of the stream [Hz] > 0.
        max_adc_lag_s: largest plausible delay between a block's ADC time and its arrival [s].
        leak: largest drift the anchor follows [s per s of audio].

    Attributes:
        samples: samples observed since the last :meth:`reset` (k of the next block's first sample).
        anchor_s: capture instant of sample 0 on the vj clock [s] (0.0 before the first block).
    """

    def __init__(self, sample_rate: float, max_adc_lag_s: float = 0.05, leak: float = DEFAULT_LEAK) -> None:
        if not sample_rate > 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
        self.sample_rate = float(sample_rate)
        self.max_adc_lag_s = float(max_adc_lag_s)
        self.leak = float(leak)
        self.samples = 0
        self.anchor_s = 0.0

    def reset(self) -> None:
        """Start again at sample 0 (a reopened stream)."""
        self.samples = 0
        self.anchor_s = 0.0

    def observe(self, frames: int, arrival_s: float, adc_s: float = 0.0, stream_now_s: float = 0.0) -> float:
        """Take one block of ``frames`` samples that arrived at ``arrival_s`` and update the anchor.

        Args:
            frames: samples in the block (> 0).
            arrival_s: when the callback ran, on the vj clock [s].
            adc_s: PortAudio's ``inputBufferAdcTime`` of the block's first sample on the stream clock [s];
                0 or less = unknown.
            stream_now_s: PortAudio's ``currentTime`` at the callback on the stream clock [s]; 0 or less = unknown.

        Returns:
            The anchor after this block [s]: sample ``k`` (counted from the stream's start, this block's first
            sample being the old :attr:`samples`) was captured at ``anchor + k / sample_rate``.
        """
        sr = self.sample_rate
        k_end = self.samples + frames
        observed = arrival_s
        if adc_s > 0 and stream_now_s > 0:
            adc_end = adc_s + (arrival_s - stream_now_s) + frames / sr
            if 0.0 <= arrival_s - adc_end <= self.max_adc_lag_s:
                observed = adc_end
        candidate = observed - k_end / sr
        if self.samples == 0:
            self.anchor_s = candidate
        else:
            self.anchor_s = min(self.anchor_s + self.leak * frames / sr, candidate)
        self.samples = k_end
        return self.anchor_s

    def capture_time(self, k: int) -> float:
        """Capture instant of sample ``k`` (counted since the stream's start) on the vj clock [s]."""
        return self.anchor_s + k / self.sample_rate
