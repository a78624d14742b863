"""Work budgets for control input: how many messages, and how much CPU time, a surface may take per second.

A control surface shares the Python interpreter (the GIL) with the display loop, so a flood of messages — a
broken tablet layout, a port scan, a controller stuck in a loop — must not take more than a slice of it. Each
surface keeps an :class:`InputBudget`: two token buckets (Turner's leaky-bucket policer, as in network traffic
shaping), one counting messages, one counting CPU seconds of handling. A message that finds either bucket empty is
dropped (and counted by the caller's rate-limited log); nothing is queued. Buckets refill continuously, so real
traffic — hundreds of messages per second from a fader sweep — never notices them.
"""

from __future__ import annotations

from typing import Callable

from vj.clock import now_s


class InputBudget:
    """Messages per second and CPU seconds per second, each with a burst allowance.

    Args:
        rate_per_s: sustained messages per second (> 0).
        burst: messages that may arrive at once on top of the rate (>= 1).
        cpu_per_s: sustained CPU time of handling per second [s/s], or None for no CPU budget.
        cpu_burst_s: CPU time that may be spent at once [s] (default: ``cpu_per_s / 4``).
        clock: time source [s] (vj's clock, :func:`vj.clock.now_s`).

    Not thread-safe: one budget belongs to one input thread.
    """

    def __init__(self, rate_per_s: float, burst: float, cpu_per_s: float | None = None,
                 cpu_burst_s: float | None = None, clock: Callable[[], float] = now_s):
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst)
        self.cpu_per_s = None if cpu_per_s is None else float(cpu_per_s)
        self.cpu_burst_s = float(cpu_burst_s if cpu_burst_s is not None else (cpu_per_s or 0.0) / 4)
        self._clock = clock
        self._last = clock()
        self._tokens = self.burst
        self._cpu = self.cpu_burst_s
        self.over_rate = 0  #: messages refused for the message rate
        self.over_cpu = 0  #: messages refused for the CPU budget

    def _refill(self) -> None:
        now = self._clock()
        dt = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self.burst, self._tokens + dt * self.rate_per_s)
        if self.cpu_per_s is not None:
            self._cpu = min(self.cpu_burst_s, self._cpu + dt * self.cpu_per_s)

    def take(self) -> str | None:
        """Ask for one message.

        Returns:
            None if the message may be handled; otherwise the reason it may not (``"over N messages/s"`` or
            ``"over the CPU budget"``).
        """
        self._refill()
        if self.cpu_per_s is not None and self._cpu <= 0.0:
            self.over_cpu += 1
            return f"over the CPU budget ({self.cpu_per_s * 1000:.0f} ms/s)"
        if self._tokens < 1.0:
            self.over_rate += 1
            return f"over {self.rate_per_s:.0f} messages/s"
        self._tokens -= 1.0
        return None

    def spend(self, seconds: float) -> None:
        """Charge ``seconds`` of CPU time spent handling (may leave the CPU bucket negative: it refills)."""
        if self.cpu_per_s is not None:
            self._cpu -= max(0.0, float(seconds))
