"""Rate-limited logging of ignored input: a counter plus at most one log line per interval.

A control surface on a club network may receive garbage at line rate (a misconfigured tablet, a port scan, a
controller spewing active-sensing). Every ignored message is counted; at most one line per ``interval_s``
reports how many were ignored since the last line and the most recent reason.
"""

from __future__ import annotations

import logging
import threading

from vj.clock import now_s


class RateLimitedLog:
    """Count dropped inputs and log a summary line at most once per interval.

    Args:
        logger: where lines go.
        what: prefix naming the surface, e.g. ``"osc"``.
        interval_s: minimum seconds between two lines (> 0).
        clock: time source (seconds); :func:`vj.clock.now_s` by default.
    """

    def __init__(self, logger: logging.Logger, what: str, interval_s: float = 5.0, clock=now_s):
        self._logger = logger
        self._what = what
        self._interval_s = float(interval_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._last_line = -float("inf")
        self._since_line = 0
        self.count = 0  #: total inputs ignored since start
        self.lines = 0  #: log lines written

    def drop(self, reason: str) -> None:
        """Count one ignored input; log a line if none was logged in the last ``interval_s``.

        Args:
            reason: short description, e.g. ``"unknown address '/vj/foo'"`` (truncated to 200 characters).
        """
        now = self._clock()
        with self._lock:
            self.count += 1
            self._since_line += 1
            if now - self._last_line < self._interval_s:
                return
            n, self._since_line = self._since_line, 0
            self._last_line = now
            self.lines += 1
        self._logger.warning("%s: ignored %d message%s (latest: %s)", self._what, n, "" if n == 1 else "s",
                             reason[:200])


class WarningsToLog:
    """Route Python warnings (a library's ``FutureWarning``, ``DeprecationWarning``...) into the log during a show:
    each one at DEBUG on ``logger`` (``vj -v`` shows them), and at most one INFO line per ``interval_s`` saying how
    many there were, so the console carries vj's own lines, not a library's per-message complaints.

    Args:
        logger: where they go.
        interval_s: minimum seconds between two summary lines.
        clock: time source [s].

    Use as a context manager, or :meth:`install` / :meth:`restore`.
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0, clock=now_s):
        self._logger = logger
        self._interval_s = float(interval_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._last_line = -float("inf")
        self._since = 0
        self._saved = None
        self.count = 0  #: warnings routed since install

    def _show(self, message, category, filename, lineno, file=None, line=None) -> None:
        text = f"{category.__name__}: {message} ({filename}:{lineno})"
        self._logger.debug("warning: %s", text)
        now = self._clock()
        with self._lock:
            self.count += 1
            self._since += 1
            if now - self._last_line < self._interval_s:
                return
            n, self._since, self._last_line = self._since, 0, now
        self._logger.info("%d library warning%s (latest: %s; -v shows each)", n, "" if n == 1 else "s", text[:200])

    def install(self) -> "WarningsToLog":
        """Take over ``warnings.showwarning`` (idempotent)."""
        import warnings

        if self._saved is None:
            self._saved = warnings.showwarning
            warnings.showwarning = self._show
        return self

    def restore(self) -> None:
        """Give ``warnings.showwarning`` back (idempotent)."""
        import warnings

        if self._saved is not None:
            warnings.showwarning, self._saved = self._saved, None

    def __enter__(self) -> "WarningsToLog":
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()
