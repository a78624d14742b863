"""Health figures of a live show: frame rates, audio→photon latency, drops; one JSON object per second.

``--stats FILE`` appends lines like::

    {"t_s": 3.0, "display_fps": 59.8, "gan_fps": 3.1, "dropped_frames": 0, "latency_ms_p50": 212.0,
     "latency_ms_p95": 290.5, "audio_overflows": 0, "source_state": "running", "record_dropped": 0}

Latency is measured, not guessed: every frame carries the capture time of the audio hop it reflects, and the main
thread notes the instant of the buffer swap that first showed it (``latency = swap time - capture time``).
All times are :func:`vj.clock.now_s` seconds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
from collections import deque


class RateMeter:
    """Events per second over a sliding window.

    Args:
        window_s: length of the window [s].
    """

    def __init__(self, window_s: float = 1.0):
        self.window_s = float(window_s)
        self._times: deque[float] = deque()
        self.count = 0  #: events since creation

    def tick(self, now_s: float) -> None:
        """Record one event at ``now_s`` [s]."""
        self._times.append(now_s)
        self.count += 1
        self._trim(now_s)

    def _trim(self, now_s: float) -> None:
        while self._times and self._times[0] < now_s - self.window_s:
            self._times.popleft()

    def rate(self, now_s: float) -> float:
        """Events per second [Hz] over the window ending at ``now_s``."""
        self._trim(now_s)
        n = len(self._times)
        if n < 2:
            return float(n) / self.window_s
        span = max(now_s - self._times[0], self._times[-1] - self._times[0], 1e-9)
        return (n - 1) / span if span < self.window_s * 0.999 else n / self.window_s


def percentile(values, q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN for no values."""
    v = sorted(values)
    if not v:
        return math.nan
    pos = (len(v) - 1) * min(max(q, 0.0), 100.0) / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


class StatsCollector:
    """Gathers the per-second figures on the main thread and writes them as JSON lines.

    Args:
        path: file to append to, or None to only keep figures in memory (the overlay reads them).
        t0_s: the show's start instant (vj clock, :func:`vj.clock.now_s`) [s]; ``t_s`` is counted from it.
        keep: how many latency samples to keep for the rolling overlay figures.

    Attributes:
        console_every_s: when > 0, also log a one-line status on the ``vj`` logger this often [s] (a headless
            show has no overlay to read).
    """

    def __init__(self, path: str | os.PathLike | None, t0_s: float, keep: int = 256):
        self.path = path
        self.t0_s = float(t0_s)
        self.display = RateMeter(1.0)
        self.gan = RateMeter(2.0)  # generated frames as they are first shown
        self._gen_samples: deque[tuple[float, int]] = deque()
        self._latencies_s: list[float] = []  # this second's
        self.recent_latencies_s: deque[float] = deque(maxlen=keep)
        #: the display's frame interval, smoothed over ~10 swaps [s] (0 before two swaps; a float, safe to read
        #: from any thread)
        self.swap_interval_s = 0.0
        self._last_swap_s: float | None = None
        self._next_s = self.t0_s + 1.0
        self.lines_written = 0
        self.last: dict = {}
        self.console_every_s = 0.0
        self._console_s = self.t0_s
        self._fh = open(path, "a", encoding="utf-8") if path is not None else None  # noqa: SIM115

    def swap(self, now_s: float) -> None:
        """A buffer swap happened at ``now_s``."""
        self.display.tick(now_s)
        if self._last_swap_s is not None and 0.0 < now_s - self._last_swap_s < 0.25:  # a stall is not a rate
            d = now_s - self._last_swap_s
            self.swap_interval_s += (d - self.swap_interval_s) * (0.1 if self.swap_interval_s else 1.0)
        self._last_swap_s = now_s

    def display_interval_s(self) -> float | None:
        """The display's smoothed frame interval [s], None before two swaps (safe from any thread)."""
        return self.swap_interval_s or None

    def frame_shown(self, now_s: float, capture_time_s: float, generated_s: float) -> None:
        """A new generated frame was shown for the first time at swap instant ``now_s``.

        Args:
            now_s: the swap instant [s].
            capture_time_s: capture time of the audio hop the frame reflects [s] (<= 0: no audio yet, no latency).
            generated_s: when the frame was published by the inference thread [s] (counts the generator rate).
        """
        self.gan.tick(generated_s)
        if capture_time_s > 0 and now_s >= capture_time_s:
            lat = now_s - capture_time_s
            self._latencies_s.append(lat)
            self.recent_latencies_s.append(lat)

    def generated(self, now_s: float, total: int) -> None:
        """Note the generator's running total of published frames at ``now_s`` (once per display frame)."""
        self._gen_samples.append((now_s, int(total)))
        while len(self._gen_samples) > 2 and self._gen_samples[0][0] < now_s - 2.0:
            self._gen_samples.popleft()

    def gan_rate(self, now_s: float) -> float:
        """Frames the generator published per second over the last ~2 s [Hz] (shown or not)."""
        if len(self._gen_samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._gen_samples[0], self._gen_samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def due(self, now_s: float) -> bool:
        """True when a per-second line is due."""
        return now_s >= self._next_s

    def emit(self, now_s: float, **extra) -> dict:
        """Build (and append to the file, if any) this second's record; ``extra`` adds or overrides fields.

        Returns:
            the record (dict).
        """
        lat_ms = [x * 1000.0 for x in self._latencies_s]
        rec = {
            "t_s": round(now_s - self.t0_s, 3),
            "display_fps": round(self.display.rate(now_s), 2),
            "gan_fps": round(self.gan_rate(now_s) if self._gen_samples else self.gan.rate(now_s), 2),
            "dropped_frames": 0,
            "latency_ms_p50": _round_or_none(percentile(lat_ms, 50)),
            "latency_ms_p95": _round_or_none(percentile(lat_ms, 95)),
            "audio_overflows": 0,
            "source_state": "",
        }
        rec.update(extra)
        self._latencies_s.clear()
        while self._next_s <= now_s:
            self._next_s += 1.0
        self.last = rec
        if self.console_every_s and now_s - self._console_s >= self.console_every_s:
            self._console_s = now_s
            logging.getLogger("vj").info(
                "live %5.0f s: display %.1f fps, generator %.1f fps, latency p50 %s ms, input %s",
                rec["t_s"], rec["display_fps"], rec["gan_fps"], rec["latency_ms_p50"], rec["source_state"] or "-")
        if self._fh is not None:
            self._fh.write(json.dumps(rec) + "\n")
            self._fh.flush()
            self.lines_written += 1
        return rec

    def latency_s(self) -> float | None:
        """Median latency over the recent frames [s], None if none yet (safe from any thread)."""
        try:
            recent = list(self.recent_latencies_s)
        except RuntimeError:  # appended to while copied
            return None
        return float(statistics.median(recent)) if len(recent) >= 8 else None

    def latency_ms(self, q: float) -> float:
        """Rolling latency percentile over the recent frames [ms] (NaN if none)."""
        return percentile([x * 1000.0 for x in self.recent_latencies_s], q)

    def close(self) -> None:
        """Close the stats file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _round_or_none(x: float):
    return None if math.isnan(x) else round(x, 1)


def read_stats(path) -> list[dict]:
    """The rows of a ``--stats`` file written so far (one JSON object per line), for tools watching a running show.

    Args:
        path: the ``--stats`` file (str or Path); a missing file has no rows.

    Returns:
        the complete rows, in order; a line that does not parse (the one being written) is left out.
    """
    out = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return out
