"""Beat-locked motion envelopes for the mapping: the jolt a kick gives the noise vector, on the beat.

The deep music visualizer moves its noise vector by loudness and the rise of loudness. Loudness in a club mix is
nearly constant, so that motion hardly pulses (issue 16 measured a step on the beat of ~1.2× the mean). This module
adds what a VJ does by hand: a **pulse** per beat whose envelope starts one reference frame before the beat and
decays exponentially with a time constant of a sixth of the beat period (so it has all but gone — e^-6 — by the next
beat), plus a smaller pulse on strong off-beat onsets, weighted by the bass so hi-hats do not jolt the picture.

Timing. Live is causal: the next beat is predicted from the beat tracker's phase and tempo
(:attr:`vj.audio.features.Features.beat_phase`, :attr:`~vj.audio.features.Features.bpm`) and scheduled as soon as
its rise begins within the coming frame, ``lead_s`` ahead (the generator + display latency), so the envelope's peak
reaches the screen on the beat, not one beat-report later. A beat the prediction missed (the first ones, a tempo
change) is scheduled when reported, late but not lost. Offline with lookahead the actual beat and onset times are
known: :meth:`BeatPulse.set_events` takes them and nothing is predicted.

Frame-rate independence: the noise displacement of a step is the exact integral of the envelope over the step's
time interval (:meth:`BeatPulse.advance`), so one beat moves the picture the same distance at 24, 30 or 240 fps.

Strobe limit: events closer than :data:`MIN_GAP_S` (1/3 s, i.e. at most 3 full pulses per second) to the previous
large one (amplitude ≥ :data:`LARGE`) are scaled down by ``(gap / MIN_GAP_S)²`` and kept below :data:`LARGE`,
so no combination of beats and onsets makes more than 3 large jolts
a second (docs/live.md, "Reactions").
"""

from __future__ import annotations

import math

import numpy as np

from vj.audio.features import Features

MIN_GAP_S = 1.0 / 3.0  #: pulses closer than this to the previous large one are scaled down (strobe limit: ≤ 3/s)
LARGE = 0.5  #: a pulse this large or larger counts towards the strobe limit (a weak hi-hat pulse does not)
ATTACK_S = 1.0 / 30.0  #: the pulse starts one reference frame before its beat
DEFAULT_PERIOD_S = 0.5  #: beat period assumed while the tempo is unknown (120 bpm)
DOWNBEAT_ACCENT = 1.4  #: the bar's "one" jolts this much more than the other beats
ONSET_SHARE = 0.5  #: an off-beat onset's pulse relative to a beat's, before its strength and bass weighting
#: How late the analysis reports what it hears [s], measured on the demo piece against its exact beat times
#: (``vj.audio.demo.BEAT_TIMES_S``, 512-sample hops at 44.1 kHz): beats a median 12 ms (a hop), onsets 34 ms.
BEAT_DELAY_S = 0.012
ONSET_DELAY_S = 0.034


def hit_strength(f: Features) -> float:
    """How hard this frame was hit, 0..1: :attr:`Features.onset_peak` weighted ``0.4 + 0.6 × max(bass, mid)``, so a
    hi-hat alone counts at most 0.4 as much as a kick or a snare (0 in silence or for non-finite features).

    What the onset follower (``gan.onset_follow``) moves the noise vector by, and what the onset flash
    (``fx.flash.amount``) is triggered by: the analysis's own flux peaks within a hop of the attack, while the
    confirmed onset detector (``Features.onset``) reports 35–80 ms after it.
    """
    vals = (f.onset_peak, f.bass, f.mid)
    if f.silent or not all(math.isfinite(v) for v in vals):
        return 0.0
    peak, bass, mid = (min(max(float(v), 0.0), 1.0) for v in vals)
    return peak * (0.4 + 0.6 * max(bass, mid))


def beat_distance_s(f: Features) -> float | None:
    """Time from ``f``'s hop to the beat clock's nearest beat, past or next [s], 0..half a period; None while the
    clock emits no beats (tempo unknown or not yet confident)."""
    if not (math.isfinite(f.bpm) and f.bpm > 0) or f.beat_count <= 0 or not math.isfinite(f.beat_phase):
        return None
    phase = min(max(float(f.beat_phase), 0.0), 1.0)
    return min(phase, 1.0 - phase) * 60.0 / f.bpm


def decay_s(period_s: float) -> float:
    """Decay time constant of a pulse [s]: a sixth of the beat period (e^-6 left at the next beat)."""
    return max(period_s, 0.2) / 6.0


def envelope(x_s: np.ndarray | float, tau_s: float) -> np.ndarray:
    """Pulse envelope at ``x_s`` seconds from its beat: 0 before ``−ATTACK_S``, then ``exp(−(x + ATTACK_S) / tau)``.

    The jolt starts one reference frame (:data:`ATTACK_S`) before the beat, so the frame shown on the beat is the one
    that differs most from its predecessor (a displacement that began on the beat would show a frame later).

    Returns:
        float64, the shape of ``x_s``, 0..1.
    """
    x = np.asarray(x_s, np.float64) + ATTACK_S
    return np.where(x < 0, 0.0, np.exp(-np.maximum(x, 0.0) / tau_s))


def envelope_integral(x_s: np.ndarray | float, tau_s: float) -> np.ndarray:
    """∫ :func:`envelope` from −∞ to ``x_s`` [s]: ``tau (1 − e^(−(x + ATTACK_S)/tau))`` (0 before the start)."""
    x = np.maximum(np.asarray(x_s, np.float64) + ATTACK_S, 0.0)
    return tau_s * (1.0 - np.exp(-x / tau_s))


class BeatPulse:
    """The pulse train: scheduled events (time [s], amplitude, decay [s]) and their summed envelope.

    Args:
        lead_s: how far ahead of the analysis clock the picture is seen [s] (generator + display latency live;
            0 offline): the envelope is evaluated at ``now + lead_s``.

    Deterministic: the same sequence of :meth:`observe`/:meth:`advance` calls gives the same values.
    """

    KEEP = 8  # events kept (older ones have decayed to nothing)

    def __init__(self, lead_s: float = 0.0):
        self.lead_s = float(lead_s)
        self._times: list[float] = []
        self._amps: list[float] = []
        self._taus: list[float] = []
        self._beats: list[float] = []  # times of the beat (not onset) events scheduled
        self._t_eval: float | None = None  # the instant the last advance() reached (now + lead)
        self._fixed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._presence = 0.0
        self._onset_count: int | None = None
        self._beat_count: int | None = None
        self._last_hop = -1
        self._now = 0.0

    # -- scheduling ----------------------------------------------------------------------------------------
    def _add(self, t_s: float, amp: float, tau_s: float, beat: bool = False) -> None:
        if beat:
            self._beats = self._beats[-(self.KEEP - 1):] + [t_s]
        large = [t for t, a in zip(self._times, self._amps) if a >= LARGE]
        if large and t_s - max(large) < MIN_GAP_S:
            amp = min(amp * (max(t_s - max(large), 0.0) / MIN_GAP_S) ** 2, 0.99 * LARGE)
        if amp <= 1e-4:
            return
        self._times.append(t_s)
        self._amps.append(amp)
        self._taus.append(tau_s)
        if len(self._times) > self.KEEP:
            del self._times[0], self._amps[0], self._taus[0]

    def _near_scheduled(self, t_s: float, within_s: float, beats_only: bool = False) -> bool:
        return any(abs(t - t_s) < within_s for t in (self._beats if beats_only else self._times))

    def set_events(self, times_s: np.ndarray, amps: np.ndarray, taus_s: np.ndarray) -> None:
        """Use known events (offline lookahead) instead of predicting them; :meth:`observe` then only tracks time.

        Args:
            times_s, amps, taus_s: float [shape=(n,)], event times [s] (ascending), amplitudes (0..~1.4), decay
                time constants [s]. The strobe limit is applied here.
        """
        self._times, self._amps, self._taus = [], [], []
        kept_t, kept_a, kept_tau = [], [], []
        last_large = -math.inf
        for t, a, tau in zip(times_s, amps, taus_s):
            if t - last_large < MIN_GAP_S:
                a = min(a * (max(t - last_large, 0.0) / MIN_GAP_S) ** 2, 0.99 * LARGE)
            if a >= LARGE:
                last_large = float(t)
            if a > 1e-4:
                kept_t.append(float(t))
                kept_a.append(float(a))
                kept_tau.append(float(tau))
        self._fixed = (np.asarray(kept_t), np.asarray(kept_a), np.asarray(kept_tau))

    def observe(self, f: Features, dt_s: float) -> float:
        """Take the newest features: track the clock, the sound's presence, and (causal) schedule the next beat
        and strong onsets.

        Args:
            f: newest features; dt_s: time since the previous call [s].

        Returns:
            now [s], on the stream clock of ``f`` (extrapolated by ``dt_s`` while the hop does not change).
        """
        if f.hop_index != self._last_hop and f.hop_index >= 0:
            self._now = max(float(f.time_s), self._now)
            self._last_hop = f.hop_index
        else:
            self._now += dt_s
        level = max(float(f.level), float(f.bass)) if math.isfinite(f.level) and math.isfinite(f.bass) else 0.0
        target = 0.0 if f.silent else min(max(level, 0.0), 1.0)
        self._presence += (target - self._presence) * (1.0 - math.exp(-dt_s / 0.25))
        gate = 0.0 if f.silent else min(1.0, self._presence / 0.4)  # silence rests at once
        beat_new = self._beat_count is not None and f.beat_count > self._beat_count
        onset_new = self._onset_count is not None and f.onset_count > self._onset_count
        self._beat_count, self._onset_count = f.beat_count, f.onset_count
        if self._fixed is not None or gate <= 0.0:
            return self._now
        period = 60.0 / f.bpm if f.bpm > 0 and math.isfinite(f.bpm) else 0.0
        tau = decay_s(period or DEFAULT_PERIOD_S)
        horizon = self._now + self.lead_s + dt_s + ATTACK_S
        if period > 0 and f.beat_count > 0:
            phase = min(max(float(f.beat_phase), 0.0), 1.0)
            t_next = float(f.time_s) + (1.0 - phase) * period - BEAT_DELAY_S
            if t_next <= horizon and not self._near_scheduled(t_next, 0.5 * period, beats_only=True):
                nxt = (f.beat_in_bar + 1) % max(f.meter, 1) if f.beat_in_bar >= 0 else 1
                self._add(t_next, gate * (DOWNBEAT_ACCENT if nxt == 0 else 1.0), tau, beat=True)
        t_heard = float(f.time_s) - BEAT_DELAY_S
        if beat_new and not self._near_scheduled(t_heard, 0.5 * (period or DEFAULT_PERIOD_S), beats_only=True):
            self._add(t_heard, gate * (DOWNBEAT_ACCENT if f.downbeat else 1.0), tau, beat=True)  # missed: late
        if onset_new and not self._near_scheduled(float(f.time_s), 0.25 * (period or DEFAULT_PERIOD_S)):
            strength = min(max(float(f.onset_strength), 0.0), 1.0) * (0.25 + 0.75 * min(max(float(f.bass), 0.0), 1.0))
            self._add(float(f.time_s) - ONSET_DELAY_S, gate * ONSET_SHARE * strength, tau)
        return self._now

    # -- evaluation ----------------------------------------------------------------------------------------
    def _events(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._fixed is None:
            return np.asarray(self._times), np.asarray(self._amps), np.asarray(self._taus)
        t, a, tau = self._fixed
        lo = np.searchsorted(t, t0 - 2.0)  # events 2 s back have decayed (tau ≤ 0.5 s)
        hi = np.searchsorted(t, t1 + ATTACK_S, side="right")
        return t[lo:hi], a[lo:hi], tau[lo:hi]

    def advance(self, now_s: float) -> tuple[float, float]:
        """Move the evaluation instant to ``now_s + lead_s``.

        Returns:
            ``(displacement, value)``: the envelope's integral since the previous call [s] (what a step of the noise
            vector scales with) and its value at the new instant (0..~1.4, for truncation and class gating).
        """
        t1 = now_s + self.lead_s
        t0 = t1 if self._t_eval is None else min(self._t_eval, t1)
        self._t_eval = t1
        t, a, tau = self._events(t0, t1)
        if not len(t):
            return 0.0, 0.0
        disp = float(np.sum(a * (envelope_integral(t1 - t, tau) - envelope_integral(t0 - t, tau))))
        value = float(np.sum(a * envelope(t1 - t, tau)))
        return disp, value


def offline_events(frames: list[Features], fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pulse events of a whole song from its per-frame features (for ``vj render --lookahead``).

    Each beat the tracker reported (a rise of ``beat_count`` between frames) is placed where the tracker heard it
    (the newest hop's time less its beat phase and :data:`BEAT_DELAY_S`), not at the frame that first saw it;
    off-beat onsets get a smaller pulse weighted by their strength and the bass, as live.

    Args:
        frames: one :class:`Features` per video frame (frame k at k / fps); fps: [frames/s].

    Returns:
        ``(times_s, amps, taus_s)`` float64 [shape=(n,)], ascending.
    """
    n = len(frames)
    if n < 2:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    beat = np.array([0] + [frames[k].beat_count > frames[k - 1].beat_count for k in range(1, n)], bool)
    down = np.array([False] + [frames[k].downbeat_count > frames[k - 1].downbeat_count for k in range(1, n)], bool)
    onset = np.array([0.0] + [
        (min(max(frames[k].onset_strength, 0.0), 1.0) if frames[k].onset_count > frames[k - 1].onset_count else 0.0)
        for k in range(1, n)])
    bass = np.array([min(max(f.bass, 0.0), 1.0) for f in frames])
    level = np.array([0.0 if f.silent else min(max(max(f.level, f.bass), 0.0), 1.0) for f in frames])
    # presence: mean level over a centred 0.5 s window (the pulse follows whether there is sound around the beat)
    c = np.concatenate([[0.0], np.cumsum(level)])
    half = max(1, int(round(0.25 * fps)))
    idx = np.arange(n)
    lo, hi = np.clip(idx - half, 0, n), np.clip(idx + half + 1, 0, n)
    presence = np.minimum(1.0, (c[hi] - c[lo]) / (hi - lo) / 0.4)
    presence[[f.silent for f in frames]] = 0.0
    times, amps, taus = [], [], []
    for k in range(1, n):
        f = frames[k]
        period = 60.0 / f.bpm if f.bpm > 0 else DEFAULT_PERIOD_S
        if beat[k]:
            t = f.time_s - (f.beat_phase * period if f.bpm > 0 else 0.0) - BEAT_DELAY_S
            amp = presence[k] * (DOWNBEAT_ACCENT if down[k] else 1.0)
        elif onset[k] > 0:
            t = f.time_s - ONSET_DELAY_S
            if times and abs(t - times[-1]) < 0.25 * period:
                continue
            amp = presence[k] * ONSET_SHARE * onset[k] * (0.25 + 0.75 * bass[k])
        else:
            continue
        if times and t - times[-1] < 0.25 * period and amp <= amps[-1]:
            continue  # an onset just before its beat: the beat's pulse stands for both
        if times and t - times[-1] < 0.25 * period:
            times.pop(), amps.pop(), taus.pop()
        times.append(t)
        amps.append(amp)
        taus.append(decay_s(period))
    order = np.argsort(times, kind="stable")
    return np.asarray(times)[order], np.asarray(amps)[order], np.asarray(taus)[order]
