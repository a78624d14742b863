"""The tempo clock: one musical timeline (bpm, beat phase, bar phase) fed by tap tempo, the analysis beat
tracker, or MIDI clock.

The clock is a straight line in musical time: beat position ``p(t) = anchor_beat + (t - anchor_s) * bpm / 60``.
Every source only moves the anchor or the slope:

* **tap** (key or OSC): the mean interval of the recent taps sets bpm; the last tap is put on a beat. A pause longer
  than :data:`TAP_RESET_S` starts a new tap sequence.
* **follow** (the analysis beat tracker, :attr:`vj.audio.features.Features.beat_count`): each beat snaps the phase to
  the beat and adopts the tracker's bpm when it has one.
* **MIDI clock** (24 pulses per quarter note, Start/Stop/Continue): while pulses arrive, bpm is measured from the
  last :data:`MIDI_CLOCK_WINDOW` pulse intervals, and every 24th pulse after Start is a beat.

Beat-synced effects read :meth:`TempoClock.phase`; quantised preset changes wait for
:meth:`TempoClock.next_beat_time` or :meth:`TempoClock.next_bar_time`. All methods are thread-safe; times are
seconds on the vj clock (:func:`vj.clock.now_s`) unless a ``now`` is passed.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from vj.clock import now_s

MIN_BPM = 20.0
"""Lowest tempo the clock accepts [bpm]."""
MAX_BPM = 300.0
"""Highest tempo the clock accepts [bpm]."""
TAP_RESET_S = 2.0
"""A pause longer than this between two taps starts a new tap sequence [s]."""
TAP_WINDOW = 8
"""Taps averaged (the intervals between the last this-many taps)."""
PPQN = 24
"""MIDI clock pulses per quarter note."""
MIDI_CLOCK_WINDOW = 48
"""Pulse intervals averaged to measure a MIDI clock's tempo (two beats)."""
MIDI_CLOCK_TIMEOUT_S = 0.5
"""No pulse for this long: the MIDI clock is considered stopped and the clock free-runs."""


def _clamp_bpm(bpm: float) -> float:
    return min(max(float(bpm), MIN_BPM), MAX_BPM)


class TempoClock:
    """A thread-safe musical clock.

    Args:
        bpm: starting tempo [bpm], clamped to 20..300.
        beats_per_bar: beats in a bar (4 for 4/4).
        clock: time source [s], :func:`vj.clock.now_s` by default (tests pass a fake).
    """

    def __init__(self, bpm: float = 120.0, beats_per_bar: int = 4, clock=now_s):
        self._clock = clock
        self._lock = threading.RLock()
        self._bpm = _clamp_bpm(bpm)
        self._anchor_s = clock()
        self._anchor_beat = 0.0
        self.beats_per_bar = int(beats_per_bar)
        self.follow = True  #: adopt the analysis beat tracker's beats (see :meth:`beat`)
        self._taps: deque[float] = deque(maxlen=TAP_WINDOW)
        self._pulses: deque[float] = deque(maxlen=MIDI_CLOCK_WINDOW + 1)
        self._pulse_count = -2  # pulses since MIDI Start (-1: Start seen, no pulse yet; -2: no Start)
        self._start_beat = 0.0  # beat position of the first pulse after Start (a downbeat)
        self._midi_running = False
        #: callables ``f(now)`` told of every :meth:`resync` (``vj live`` passes the tap on to the analysis's bar
        #: tracker, so the downbeats it reports afterwards agree); called outside the lock
        self.on_resync: list = []
        self._resync_s = -math.inf

    # -- internal: the line ------------------------------------------------------------------------------
    def _now(self, now):
        return self._clock() if now is None else float(now)

    def _pos(self, now: float) -> float:
        return self._anchor_beat + (now - self._anchor_s) * self._bpm / 60.0

    def _reanchor(self, now: float, beat: float | None = None, bpm: float | None = None) -> None:
        """Keep the line continuous at ``now`` (or put ``beat`` there), then change the slope."""
        self._anchor_beat = self._pos(now) if beat is None else beat
        self._anchor_s = now
        if bpm is not None:
            self._bpm = _clamp_bpm(bpm)

    # -- readers -------------------------------------------------------------------------------------------
    @property
    def bpm(self) -> float:
        """Current tempo [bpm], 20..300."""
        with self._lock:
            return self._bpm

    def position(self, now: float | None = None) -> float:
        """Beat position: whole beats since the clock started plus the phase within the current beat.

        Args:
            now: time [s]; the clock's time source when None.

        Returns:
            float beats (may be negative shortly after a resync moved the anchor ahead).
        """
        with self._lock:
            return self._pos(self._now(now))

    def phase(self, now: float | None = None) -> float:
        """Position within the current beat, 0..1 (0 = on the beat)."""
        p = self.position(now)
        return p - math.floor(p)

    def beat_count(self, now: float | None = None) -> int:
        """Whole beats elapsed (the integer part of :meth:`position`)."""
        return math.floor(self.position(now))

    def bar_phase(self, now: float | None = None) -> float:
        """Position within the current bar, 0..1 (0 = the downbeat; 4/4 by default)."""
        p = self.position(now) / self.beats_per_bar
        return p - math.floor(p)

    def next_beat_time(self, now: float | None = None) -> float:
        """Time [s] of the next beat strictly after ``now``."""
        with self._lock:
            t = self._now(now)
            p = self._pos(t)
            nxt = math.floor(p) + 1.0
            return self._anchor_s + (nxt - self._anchor_beat) * 60.0 / self._bpm

    def next_bar_time(self, now: float | None = None) -> float:
        """Time [s] of the next downbeat strictly after ``now``."""
        with self._lock:
            t = self._now(now)
            n = self.beats_per_bar
            nxt = (math.floor(self._pos(t) / n) + 1.0) * n
            return self._anchor_s + (nxt - self._anchor_beat) * 60.0 / self._bpm

    # -- writers -------------------------------------------------------------------------------------------
    def set_bpm(self, bpm: float, now: float | None = None) -> bool:
        """Set the tempo without a jump in phase.

        Args:
            bpm: tempo [bpm]; clamped to 20..300.
            now: time [s].

        Returns:
            False (nothing changed) if ``bpm`` is not a finite number.
        """
        try:
            bpm = float(bpm)
        except (TypeError, ValueError):
            return False
        if not math.isfinite(bpm):
            return False
        with self._lock:
            self._reanchor(self._now(now), bpm=bpm)
        return True

    def double(self, now: float | None = None) -> None:
        """Twice the tempo (×2), clamped to 300 bpm."""
        with self._lock:
            self._reanchor(self._now(now), bpm=self._bpm * 2.0)

    def half(self, now: float | None = None) -> None:
        """Half the tempo (÷2), clamped to 20 bpm."""
        with self._lock:
            self._reanchor(self._now(now), bpm=self._bpm / 2.0)

    def resync(self, now: float | None = None) -> None:
        """Make ``now`` a downbeat (phase 0, bar phase 0): press it on the one.

        The beat count moves to the nearest bar boundary, so it jumps by at most half a bar.
        """
        with self._lock:
            t = self._now(now)
            n = self.beats_per_bar
            self._reanchor(t, beat=round(self._pos(t) / n) * n)
            self._resync_s = t
        for listener in list(self.on_resync):
            listener(t)

    def tap(self, now: float | None = None) -> float | None:
        """Register one tap (a key or ``/vj/tempo/tap``).

        The first tap of a sequence puts a beat at ``now``; from the second on, bpm becomes 60 / the mean interval
        of the recent taps (up to :data:`TAP_WINDOW`) and the tap is on a beat. A pause over :data:`TAP_RESET_S`
        starts a new sequence.

        Args:
            now: time of the tap [s].

        Returns:
            the tapped bpm, or None after the first tap of a sequence.
        """
        with self._lock:
            t = self._now(now)
            if self._taps and not 0.0 < t - self._taps[-1] <= TAP_RESET_S:
                self._taps.clear()
            self._taps.append(t)
            beat = float(round(self._pos(t)))
            if len(self._taps) < 2:
                self._reanchor(t, beat=beat)
                return None
            interval = (self._taps[-1] - self._taps[0]) / (len(self._taps) - 1)
            self._reanchor(t, beat=beat, bpm=60.0 / interval)
            return self._bpm

    def beat(self, now: float | None = None, bpm: float | None = None, beat_in_bar: int | None = None,
             beats_per_bar: int | None = None) -> None:
        """A beat from the analysis beat tracker (follow mode). Ignored while :attr:`follow` is off or a MIDI
        clock is running.

        Args:
            now: time of the beat [s].
            bpm: the tracker's tempo estimate [bpm]; 0/None/NaN = unknown (keep the current tempo).
            beat_in_bar: the tracker's position of this beat in its bar (0 = the downbeat;
                :attr:`vj.audio.features.Features.beat_in_bar`); None or < 0 = unknown (bars stay as they are).
                A beat from before the last :meth:`resync` does not move the bar.
            beats_per_bar: the tracker's meter (3 or 4); None = keep :attr:`beats_per_bar`.
        """
        with self._lock:
            t = self._now(now)
            if not self.follow or self._midi_clock_alive(t):
                return
            p = self._pos(t)
            beat = float(round(p))
            if beat < math.floor(p):  # never count backwards
                beat = float(math.floor(p))
            if beats_per_bar is not None and 2 <= int(beats_per_bar) <= 16:
                self.beats_per_bar = int(beats_per_bar)
            if beat_in_bar is not None and beat_in_bar >= 0 and t > self._resync_s + 0.05:
                n = self.beats_per_bar
                beat += (int(beat_in_bar) - beat) % n  # the next beat position with that place in the bar
            new_bpm = bpm if bpm is not None and math.isfinite(bpm) and bpm > 0 else None
            self._reanchor(t, beat=beat, bpm=new_bpm)

    # -- MIDI clock ----------------------------------------------------------------------------------------
    def _midi_clock_alive(self, now: float) -> bool:
        return self._midi_running and bool(self._pulses) and now - self._pulses[-1] < MIDI_CLOCK_TIMEOUT_S

    def midi_start(self, now: float | None = None) -> None:
        """MIDI Start (0xFA): the next pulse is beat 0 of a new bar."""
        with self._lock:
            self._pulses.clear()
            self._pulse_count = -1
            self._midi_running = True

    def midi_continue(self, now: float | None = None) -> None:
        """MIDI Continue (0xFB): pulses resume from where they stopped."""
        with self._lock:
            self._midi_running = True

    def midi_stop(self, now: float | None = None) -> None:
        """MIDI Stop (0xFC): stop following pulses; the clock free-runs at the last tempo."""
        with self._lock:
            self._midi_running = False

    def midi_clock(self, now: float | None = None) -> None:
        """One MIDI Timing Clock pulse (0xF8), 24 per quarter note.

        Pulses update the tempo (mean of the last :data:`MIDI_CLOCK_WINDOW` intervals); after a Start every 24th
        pulse is put on a beat. Pulses without a Start (joining a running clock) set the tempo only.
        """
        with self._lock:
            t = self._now(now)
            if self._pulses and t - self._pulses[-1] > MIDI_CLOCK_TIMEOUT_S:
                self._pulses.clear()  # a gap: don't average across it
            self._pulses.append(t)
            self._midi_running = True
            bpm = None
            if len(self._pulses) >= 2:
                interval = (self._pulses[-1] - self._pulses[0]) / (len(self._pulses) - 1)
                if interval > 0:
                    bpm = 60.0 / (interval * PPQN)
            if self._pulse_count >= -1:
                self._pulse_count += 1
                if self._pulse_count == 0:
                    n = self.beats_per_bar
                    self._start_beat = float(math.ceil(self._pos(t) / n) * n)
                if self._pulse_count % PPQN == 0:
                    self._reanchor(t, beat=self._start_beat + self._pulse_count // PPQN, bpm=bpm)
                    return
            if bpm is not None:
                self._reanchor(t, bpm=bpm)
