"""Causal section events: ``breakdown``, ``build`` and ``drop``, each reported once per section with a confidence.

:class:`SectionTracker` runs once per hop after :class:`vj.audio.bars.BarTracker`. It measures, over the first half
of every beat (the *head*), three levels from the short-FFT magnitude spectrum with the gain control taken out
(so a quiet breakdown stays quiet):

* ``low`` — energy below ``low_hz`` [dB] (kick and bass: the club's "low end"),
* ``high`` — energy above ``high_hz`` [dB] (hi-hats, snare rolls, noise risers),
* ``kick`` — the largest low-band onset strength (positive log-magnitude difference below ``low_hz``) near the
  beat,

and compares them with references: ``low_ref`` holds the loudest low end heard (peak-hold, slowly forgetting),
``kick_ref`` the typical kick strength of the full sections. Halfway through each beat it decides, so every
event that starts with a change of the drums (breakdown, a build out of a breakdown, drop) is reported about half a
beat after the first beat of its section: within one beat. A build that rises over a running groove (a riser or
roll with the kick kept) can only be recognised once it has risen, about two bars in.

States and events (the usual arrangement of club music):

* ``full`` — low end present (``low`` within ``full_db`` of ``low_ref`` with a kick) for ``full_beats`` beats;
  no event (the start of the music is not a drop).
* ``full → breakdown``: the low end is gone — ``low`` more than ``gone_db`` under ``low_ref`` and no kick — on a
  downbeat with the rest of the drums gone too (the high band ``drums_out_db`` under the bar before), or on the
  downbeat and the beat after it, or for a whole bar. Event ``breakdown``.
* ``breakdown → build``: the drums come back (a kick, or a rise of the high band by ``build_high_db``) while the
  low end is still short of full. Event ``build``. From ``full`` (after at least 4 bars of it): the high band of
  the last two beats ``build_high_db`` over the bar two bars before, low end kept (a riser or snare roll over
  the groove). Event ``build``.
* ``breakdown/build → drop``: on a downbeat the full low end returns — ``low`` within ``full_db`` of
  ``low_ref`` with a kick — and, coming from a build, the build *releases*: the high band falls against the low
  end (riser and roll stop) by ``release_db``, or the low end jumps by ``jump_db`` against the beat before (a
  gap before the drop). Event ``drop``; the state is ``full`` again.

An event needs at least ``min_gap_beats`` beats since the previous one; a drop needs a breakdown of at least one
bar or a build before it, so a loud hit or a single missing kick fires nothing. A drop or a breakdown starts a
new phrase (:meth:`vj.audio.bars.BarTracker.reanchor`) and is evidence for the downbeat there
(:meth:`vj.audio.bars.BarTracker.add_evidence`).

The rules follow the structure described for electronic dance music by e.g. K. Yadati et al., "Detecting drops in
electronic dance music: content based approaches to a socially significant music event" (ISMIR 2014), and
M. Butler, "Unlocking the Groove" (2006); the causal detector itself is vj's own.

All buffers are allocated in ``__init__``; :meth:`update` allocates nothing.
"""

from __future__ import annotations

import math

import numpy as np

EVENTS = ("build", "drop", "breakdown")
"""The section events, as reported in :attr:`vj.audio.features.Features.event`."""


class SectionTracker:
    """Causal build / drop / breakdown detector fed once per hop.

    Args:
        frame_rate: hops per second [Hz].
        bin_hz: spacing of the magnitude-spectrum bins [Hz].
        n_bins: number of bins.
        low_hz: upper edge of the low band [Hz].
        high_hz: lower edge of the high band [Hz].
        gone_db: the low end counts as gone this far under its reference [dB].
        full_db: the low end counts as full within this of its reference [dB].
        kick_ratio: a kick is present when the low-band onset strength reaches this share of its reference.
        release_db: a build releases when (low - high) rises by this against the build's last beats [dB].
        jump_db: ... or when the low end jumps by this against the beat before [dB].
        build_high_db: rise of the high band that makes a build [dB].
        ref_forget_db: how fast the low-end reference forgets, per beat [dB].
        full_beats: beats of full low end before the state is ``full``.
        min_gap_beats: fewest beats between two events.
        drums_out_db: a breakdown on its first beat needs the high band this far under the bar before (the drums
            left with the low end); otherwise the low end must stay gone for a second beat.

    Attributes (read after each :meth:`update`):
        event: ``"build"``, ``"drop"``, ``"breakdown"`` in the hop that reports it, else ``""``.
        event_confidence: 0..1 for that event (0 without one).
        event_count: events so far (latched counter).
        last_event, last_event_time_s, last_event_confidence: the latest event, its stream time [s] and
            confidence ("" / 0 / 0 before the first).
        section: ``""`` (not yet known), ``"full"``, ``"breakdown"`` or ``"build"``.
    """

    def __init__(
        self,
        frame_rate: float,
        bin_hz: float,
        n_bins: int,
        low_hz: float = 150.0,
        high_hz: float = 4000.0,
        gone_db: float = 9.0,
        full_db: float = 4.0,
        kick_ratio: float = 0.4,
        release_db: float = 3.0,
        jump_db: float = 6.0,
        build_high_db: float = 6.0,
        ref_forget_db: float = 0.05,
        full_beats: int = 4,
        min_gap_beats: int = 4,
        drums_out_db: float = 6.0,
    ):
        self.frame_rate = float(frame_rate)
        self._low = slice(1, max(2, int(low_hz / bin_hz) + 1))
        self._high = slice(min(int(high_hz / bin_hz), n_bins - 1), n_bins)
        self.gone_db = gone_db
        self.full_db = full_db
        self.kick_ratio = kick_ratio
        self.release_db = release_db
        self.jump_db = jump_db
        self.build_high_db = build_high_db
        self.ref_forget_db = ref_forget_db
        self.full_beats = full_beats
        self.min_gap_beats = min_gap_beats
        self.drums_out_db = drums_out_db
        self._hist_low = np.zeros(16)  # per-beat head levels, ring by beat number % 16
        self._hist_high = np.zeros(16)
        self._hist_kick = np.zeros(16)
        self.trace = None  #: set to a list to collect per-beat decisions (tests, benchmarks); None live
        self.reset()

    def reset(self) -> None:
        """Forget everything (new stream, long silence)."""
        self.event = ""
        self.event_confidence = 0.0
        self.event_count = 0
        self.last_event = ""
        self.last_event_time_s = 0.0
        self.last_event_confidence = 0.0
        self.section = ""
        self._low_ref = -math.inf
        self._kick_ref = 0.0
        self._beats = 0  # beats seen
        self._decided = True  # the current beat's decision is made
        self._acc_low = self._acc_high = 0.0
        self._acc_n = 0
        self._kick = 0.0
        self._full_run = 0
        self._gone_run = 0
        self._since_event = 10**6
        self._section_beats = 0
        self._hist_low[:] = -120.0
        self._hist_high[:] = -120.0
        self._hist_kick[:] = 0.0
        self._beat_index = -1
        self._beat_in_bar = -1

    def _fire(self, name: str, conf: float, time_s: float, bars) -> None:
        self.event = name
        self.event_confidence = float(min(max(conf, 0.05), 1.0))
        self.event_count += 1
        self.last_event = name
        self.last_event_time_s = time_s
        self.last_event_confidence = self.event_confidence
        self._since_event = 0
        self._section_beats = 0
        if bars is not None and name in ("drop", "breakdown") and self._beat_index >= 0:
            bars.add_evidence(self._beat_index, 2.0 * self.event_confidence)
            bars.reanchor(self._beat_index)

    def _decide(self, time_s: float, bars) -> None:
        """Halfway through the beat: classify it and fire at most one event."""
        n = max(self._acc_n, 1)
        low = 10.0 * math.log10(self._acc_low / n + 1e-20)
        high = 10.0 * math.log10(self._acc_high / n + 1e-20)
        kick = self._kick
        i = self._beats % 16
        prev_low = self._hist_low[(i - 1) % 16]
        self._hist_low[i], self._hist_high[i], self._hist_kick[i] = low, high, kick
        self._beats += 1
        self._since_event += 1
        self._section_beats += 1
        # references: peak-hold low end (forgetting slowly), kick strength of full beats
        self._low_ref = max(low, self._low_ref - self.ref_forget_db)
        ref = self._low_ref
        kick_on = kick >= self.kick_ratio * self._kick_ref if self._kick_ref > 0 else kick > 0
        full = low >= ref - self.full_db and kick_on
        gone = low < ref - self.gone_db and not kick_on
        if full:
            self._kick_ref = kick if self._kick_ref <= 0 else 0.9 * self._kick_ref + 0.1 * kick
        self._full_run = self._full_run + 1 if full else 0
        self._gone_run = self._gone_run + 1 if gone else 0
        downbeat = self._beat_in_bar == 0
        meter = getattr(bars, "meter", 4) if bars is not None else 4
        gap_ok = self._since_event >= self.min_gap_beats
        # the drums went with the low end: the high band fell against the bar before (not one missing kick)
        prev_high = float(np.mean([self._hist_high[(i - k) % 16] for k in range(1, meter + 1)]))
        drums_out = high < prev_high - self.drums_out_db
        st = self.section
        fired = ""
        if st in ("", "full"):
            if st == "" and self._full_run >= self.full_beats:
                self.section = "full"
            elif st == "full" and gone and gap_ok and (
                    (downbeat and drums_out) or (self._gone_run >= 2 and self._beat_in_bar == 1)
                    or self._gone_run >= meter):
                conf = (ref - low - self.gone_db + 3.0) / 12.0
                self.section = "breakdown"
                fired = "breakdown"
                self._fire("breakdown", conf, time_s, bars)
            elif st == "full" and gap_ok and low >= ref - self.full_db - 2.0:
                # a riser / snare roll over the groove: the high band up over two bars
                old = float(np.mean([self._hist_high[(i - k) % 16] for k in range(2 * meter, 3 * meter)]))
                new = min(self._hist_high[i], self._hist_high[(i - 1) % 16])  # both beats up: not one loud hit
                if self._section_beats >= 4 * meter and self._beats > 4 * meter and new - old >= self.build_high_db:
                    self.section = "build"
                    fired = "build"
                    self._fire("build", (new - old) / (2 * self.build_high_db), time_s, bars)
        elif st == "breakdown":
            back = kick_on and not gone
            if back and full and self._section_beats >= meter and downbeat and gap_ok:
                self.section = "full"
                fired = "drop"
                self._fire("drop", 0.5 + (low - prev_low) / 24.0, time_s, bars)
            elif back and gap_ok and self._section_beats >= 2:
                self.section = "build"
                fired = "build"
                self._fire("build", 0.4 + (ref - self.full_db - low) / 20.0, time_s, bars)
        elif st == "build":
            tilt = low - high
            prev_tilt = float(np.mean([self._hist_low[(i - k) % 16] - self._hist_high[(i - k) % 16]
                                       for k in (1, 2)]))
            release = tilt - prev_tilt >= self.release_db or low - prev_low >= self.jump_db
            if full and downbeat and release and gap_ok:
                self.section = "full"
                fired = "drop"
                conf = 0.5 + (tilt - prev_tilt) / (4 * self.release_db)
                self._fire("drop", conf, time_s, bars)
            elif self._section_beats > 8 * meter:
                self.section = "full"  # a build that never dropped: back to the groove, no event
        if self.trace is not None:
            self.trace.append((time_s, self._beat_index, self._beat_in_bar, round(low, 1), round(high, 1),
                               round(kick, 2), round(ref, 1), full, gone, self.section, fired))

    def update(self, mag: np.ndarray, gain_db: float, flux_diff: np.ndarray, beat: bool, beat_phase: float,
               bars, time_s: float, active: bool = True) -> None:
        """Advance one hop.

        Args:
            mag: np.ndarray [shape=(n_bins,), float] magnitude spectrum of this hop (after gain control).
            gain_db: the gain control's gain for this hop [dB] (taken out of the levels).
            flux_diff: np.ndarray [shape=(n_bins,), float] positive log-magnitude difference against the previous
                hop (the spectral-flux terms).
            beat: a beat was emitted in this hop.
            beat_phase: position within the beat, 0..1.
            bars: the :class:`vj.audio.bars.BarTracker` (downbeats; phrases are re-anchored on it), or None.
            time_s: stream time at the end of the hop [s].
            active: False in silence (the hop counts as no low end and no highs).
        """
        self.event = ""
        self.event_confidence = 0.0
        if beat:
            if not self._decided:
                self._decide(time_s, bars)
            self._decided = False
            self._acc_low = self._acc_high = 0.0
            self._acc_n = 0
            self._kick = 0.0
            self._beat_index = getattr(bars, "beat_index", self._beat_index + 1)
            self._beat_in_bar = getattr(bars, "beat_in_bar", -1)
        if self._decided:
            return
        g = 10.0 ** (-gain_db / 10.0)  # power gain taken out
        if active:
            lo = mag[self._low]
            hi = mag[self._high]
            self._acc_low += float(np.dot(lo, lo)) * g
            self._acc_high += float(np.dot(hi, hi)) * g
            k = float(flux_diff[self._low].sum())
            if k > self._kick:
                self._kick = k
        self._acc_n += 1
        if beat_phase >= 0.5:
            self._decided = True
            self._decide(time_s, bars)


__all__ = ["EVENTS", "SectionTracker"]
