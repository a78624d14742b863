"""The audio front end of ``vj live``: source hops → analysis → the newest :class:`Features`.

The source's callback (PortAudio's thread, or a file source's pacing thread) only copies the hop into a
preallocated ring and sets an event; an analysis thread runs :class:`vj.audio.analysis.StreamingAnalyzer` on every
hop in order and publishes the newest :class:`Features` into a latest-wins slot (the event counters inside the
record let consumers count every onset and beat). If analysis falls more than the ring's length behind, the oldest
hops are skipped and counted (:attr:`AudioFront.skipped_hops`) — audio is never waited for.

Bad input is survived: an exception in analysis is counted and the hop skipped; the show goes on.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

import numpy as np

from vj.engine.slots import LatestSlot

log = logging.getLogger("vj")


def _default_analyzer(sample_rate: int, hop_size: int):
    from vj.audio.analysis import StreamingAnalyzer

    return StreamingAnalyzer(sample_rate, hop_size=hop_size)


class AudioFront:
    """Runs the analysis of a started :class:`vj.audio.sources.AudioSource` on its own thread.

    Args:
        source: an unstarted audio source (``start(on_hop)``, ``stop()``, ``sample_rate``, ``hop_size``).
        features: slot receiving the newest :class:`vj.audio.features.Features`.
        analyzer_factory: ``factory(sample_rate [Hz], hop_size [samples])`` → object with
            ``process(hop float32 [hop_size], capture_time_s) -> Features``; built on the first hop (a live
            input only knows its rate once open) and rebuilt if the rate changes after a reconnect.
        on_audio: optional ``fn(hop float32 [hop_size], sample_rate, capture_time_s)`` called on the analysis thread for each hop
            (the recorder's audio track); must not block.
        ring_hops: hops the ring holds (how far analysis may lag before hops are skipped).
    """

    def __init__(self, source, features: LatestSlot, analyzer_factory: Callable | None = None,
                 on_audio: Callable[[np.ndarray, int, float], None] | None = None, ring_hops: int = 128):
        self.source = source
        self.features = features
        self._factory = analyzer_factory or _default_analyzer
        self.on_audio = on_audio
        self._n = int(ring_hops)
        self._ring: np.ndarray | None = None
        self._times = np.zeros(self._n, np.float64)
        self._written = 0  # hops written by the callback (only the callback writes it)
        self._read = 0  # hops consumed by the analysis thread
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._analyzer = None
        self._analyzer_rate = 0
        self.skipped_hops = 0  #: hops dropped because analysis lagged a full ring behind
        self.analysis_errors = 0  #: hops whose analysis raised (skipped)
        self.last_error: str | None = None
        self.hops_analyzed = 0

    # -- source thread -----------------------------------------------------------------------------------
    def _on_hop(self, hop: np.ndarray, capture_time_s: float) -> None:
        ring = self._ring
        if ring is None or ring.shape[1] != hop.shape[0]:  # first hop (or a new hop size): allocate once
            ring = np.zeros((self._n, hop.shape[0]), np.float32)
            self._ring = ring
        i = self._written % self._n
        ring[i] = hop
        self._times[i] = capture_time_s
        self._written += 1
        self._wake.set()

    # -- analysis thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.1)
            self._wake.clear()
            while self._read < self._written and not self._stop.is_set():
                if self._written - self._read > self._n - 2:  # lapped: skip to near the newest
                    skip = self._written - self._read - (self._n // 2)
                    self.skipped_hops += skip
                    self._read += skip
                i = self._read % self._n
                hop = self._ring[i].copy()
                t = float(self._times[i])
                self._read += 1
                self._analyse(hop, t)

    def _analyse(self, hop: np.ndarray, capture_time_s: float) -> None:
        rate = int(getattr(self.source, "sample_rate", 0) or 0)
        try:
            if self._analyzer is None or rate != self._analyzer_rate:
                self._analyzer = self._factory(rate, hop.shape[0])
                self._analyzer_rate = rate
            f = self._analyzer.process(hop, capture_time_s)
        except Exception as exc:  # bad input must not stop the show
            self.analysis_errors += 1
            if self.analysis_errors == 1:
                log.warning("audio analysis failed (hop skipped, show goes on): %s", exc)
            self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return
        self.hops_analyzed += 1
        self.features.put(f)
        if self.on_audio is not None:
            try:
                self.on_audio(hop, rate, capture_time_s)
            except Exception:  # the recorder must not stop the show either
                pass

    # -- control -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the analysis thread, then the source."""
        self._thread = threading.Thread(target=self._run, name="vj-analysis", daemon=True)
        self._thread.start()
        self.source.start(self._on_hop)

    def stop(self, timeout_s: float = 3.0) -> bool:
        """Stop the source and join the analysis thread. Returns True if it ended within ``timeout_s`` [s]."""
        try:
            self.source.stop()
        except Exception as exc:  # closing a vanished device may fail; we are leaving anyway
            log.debug("audio source stop: %s", exc)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True
