"""Causal bars and phrases: meter (3 or 4), the downbeat, the position in the bar and in 8/16/32-bar phrases.

:class:`BarTracker` runs once per hop after the beat clock (:class:`vj.audio.beat.BeatTracker`). It keeps a short
history of two per-hop cues and, each time a beat is emitted, turns the beat before it into an *accent*:

* **low-frequency onset strength** — the positive log-magnitude spectral difference summed over the bins below
  ``low_hz`` (the kick drum, a bass note's attack), its maximum within a few hops of the beat;
* **harmonic change** — 1 − cosine similarity between the mean chroma of the beat and that of the beat before
  (chords and bass notes change on the "one" far more often than elsewhere).

Each cue is standardised against its own running mean and spread (exponential, ~32 beats), the accent is their
weighted sum, and for each meter M ∈ {3, 4} and each position k = 0..M-1 an exponentially decaying sum
``S[M][k]`` collects the accents of the beats whose index is k modulo M. The downbeat position is the argmax of
``S[M]`` (changed only when another position leads by a margin), the meter the one whose best position stands out
more (4 unless 3 is clearly better for several beats). This is the beat-synchronous accent-folding idea of
downbeat trackers such as M. E. P. Davies and M. D. Plumbley, "A spectral difference approach to downbeat
extraction in musical audio" (EUSIPCO 2006), and of M. Goto, "An audio-based real-time beat tracking system for
music with or without drum-sounds" (JNMR 30(2), 2001: chord changes mark bar boundaries), written for vj,
made causal and cheap; no code copied.

When the beat clock emits its first beat, the beats before it are reconstructed from the history (the clock's
period, back to where the sound started), so the evidence of the first seconds is not lost; the beat closest to the
start of the sound gets a small bonus (music usually starts on the one).

A tap on the "one" (:meth:`BarTracker.resync`, thread-safe: it only sets a request that the next :meth:`update`
takes) makes the beat nearest to that hop the downbeat at once and holds it against the accents until
:meth:`reset`. Phrases (8/16/32 bars) count bars from an anchor: the downbeat nearest the start of the sound,
moved by :meth:`reanchor` (the section tracker calls it at a drop or breakdown).

All buffers are allocated in ``__init__``; :meth:`update` allocates nothing but small scalars.
"""

from __future__ import annotations

import math

import numpy as np

PHRASE_BARS = 32
"""``phrase_pos`` counts bars modulo this (positions in 8- and 16-bar phrases are ``phrase_pos % 8`` / ``% 16``)."""


class BarTracker:
    """Causal meter, downbeat and phrase tracker fed once per hop.

    Args:
        frame_rate: hops per second [Hz] (sample_rate / hop_size).
        bin_hz: spacing of the magnitude-spectrum bins passed to :meth:`update` [Hz] (sample_rate / fft_size).
        n_bins: number of bins of that spectrum (fft_size // 2 + 1).
        latency_frames: how many hops the spectral cues lag the audio (the beat clock emits beats this much early).
        low_hz: upper edge of the low-frequency onset band [Hz].
        history_s: length of the per-hop cue history kept [s] (how far back the first beats are reconstructed).
        decay_beats: memory of the accent sums and cue statistics [beats] (exponential time constant).
        low_weight, chroma_weight: weights of the two standardised cues in the accent.
        switch_margin: how much (in accumulated standard deviations) another downbeat position must lead before
            the downbeat moves.
        meter3_ratio: meter 3 is chosen when its contrast (the best position's mean accent minus the others') exceeds
            this times meter 4's (and 4 again when 4's exceeds 3's over this), for ``meter_hold`` beats in a row.
        meter_hold: beats a meter decision must persist before it is taken.
        meter_min_contrast: a meter is only chosen when its contrast exceeds this [standard deviations].
        start_bonus: accent added to the beat nearest the start of the sound [standard deviations].
        tempo_change_keep: when the beat period changes by more than ~15 % between two beats, the accent sums are
            multiplied by this (beats counted at a wrong tempo say little about where the bar starts).

    Attributes (read after each :meth:`update`):
        meter: beats per bar, 3 or 4.
        beat_index: index of the last beat (0 = the first reconstructed beat); -1 before any beat.
        beat_in_bar: position of the last beat in its bar, 0 (the downbeat) .. meter-1; -1 while unknown.
        downbeat: True for the hop in which a downbeat was emitted.
        downbeat_count: downbeats so far (latched event counter).
        bar_phase: position within the bar, 0..1 (0 = the downbeat); 0 while unknown.
        bar_count: whole bars since the phrase anchor (may be negative right after a re-anchor); 0 while unknown.
        phrase_pos: bars since the phrase anchor modulo :data:`PHRASE_BARS`, with the bar phase as fraction, 0..32.
        locked: True after a tap (:meth:`resync`): the downbeat no longer follows the accents.
    """

    def __init__(
        self,
        frame_rate: float,
        bin_hz: float,
        n_bins: int,
        latency_frames: float = 1.0,
        low_hz: float = 150.0,
        history_s: float = 12.0,
        decay_beats: float = 32.0,
        low_weight: float = 1.0,
        chroma_weight: float = 2.0,
        switch_margin: float = 1.25,
        meter3_ratio: float = 1.6,
        meter_hold: int = 4,
        meter_min_contrast: float = 0.5,
        start_bonus: float = 1.0,
        tempo_change_keep: float = 0.2,
    ):
        self.frame_rate = float(frame_rate)
        self.latency_frames = float(latency_frames)
        self._low = slice(1, max(2, int(low_hz / bin_hz) + 1))
        self._n = max(int(round(history_s * frame_rate)), 16)
        self._low_hist = np.zeros(self._n, dtype=np.float64)  # ring, index = frame % n
        self._chroma_hist = np.zeros((self._n, 12), dtype=np.float64)
        self._lam = math.exp(-1.0 / decay_beats)
        self.low_weight = float(low_weight)
        self.chroma_weight = float(chroma_weight)
        self.switch_margin = float(switch_margin)
        self.meter3_ratio = float(meter3_ratio)
        self.meter_hold = int(meter_hold)
        self.meter_min_contrast = float(meter_min_contrast)
        self.start_bonus = float(start_bonus)
        self.tempo_change_keep = float(tempo_change_keep)
        self._s = {3: np.zeros(3), 4: np.zeros(4)}  # decayed accent sums per position
        self._w = {3: np.zeros(3), 4: np.zeros(4)}  # decayed beat counts per position
        self._mean = {3: np.zeros(3), 4: np.zeros(4)}
        self._beat_frames = np.zeros(64, dtype=np.float64)  # ring of beat frames by beat index % 64
        self._cur_chroma = np.zeros(12)
        self._prev_chroma = np.zeros(12)
        self._resync_req = 0  # incremented by resync() (any thread); compared with _resync_seen
        self._resync_seen = 0
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new stream, or long silence); buffers are reused. A pending tap is dropped."""
        self._frame = -1
        self._low_hist[:] = 0.0
        self._chroma_hist[:] = 0.0
        for s in (*self._s.values(), *self._w.values()):
            s[:] = 0.0
        self.contrast3 = self.contrast4 = 0.0
        self._stats = [0.0, 0.0, 0.0, 0.0, 0.0]  # weight, mean_low, var_low, mean_ch, var_ch
        self._sound_start = -1  # first active frame
        self.meter = 4
        self._meter_votes = 0
        self._k = {3: 0, 4: 0}  # downbeat position (beat index modulo meter)
        self.beat_index = -1
        self.beat_in_bar = -1
        self.downbeat = False
        self.downbeat_count = 0
        self.bar_phase = 0.0
        self.bar_count = 0
        self.phrase_pos = 0.0
        self.locked = False
        self._anchor = 0  # beat index of the phrase anchor (a downbeat)
        self._start_beat = 0  # beat index nearest the start of the sound
        self._tap_beat = 0  # beat index of the last tap on the one
        self._period = 0.0  # beat period at the last beat [hops]
        self._prev_chroma[:] = 0.0
        self._have_prev_chroma = False
        self._resync_seen = self._resync_req

    # ------------------------------------------------------------------ thread-safe requests
    def resync(self) -> None:
        """Tap on the "one": the beat nearest the next processed hop becomes the downbeat, and stays so.

        Safe from any thread (it only increments a counter; the audio thread applies it in :meth:`update`).
        """
        self._resync_req += 1

    # ------------------------------------------------------------------ evidence
    def _accent(self, j: int, next_frame: float) -> float:
        """Accent of beat ``j`` (its frame in the ring), ending at ``next_frame``; updates the running statistics."""
        n = self._n
        f0 = self._beat_frames[j % 64] + self.latency_frames
        lo = int(math.floor(f0)) - 2
        hi = int(math.ceil(f0)) + 3
        low = 0.0
        for i in range(max(lo, self._frame - n + 1, 0), min(hi, self._frame) + 1):
            v = self._low_hist[i % n]
            if v > low:
                low = v
        # mean chroma over the beat [f0, next + latency)
        c = self._cur_chroma
        c[:] = 0.0
        a = max(int(math.floor(f0)), self._frame - n + 1, 0)
        b = min(int(math.floor(next_frame + self.latency_frames)), self._frame + 1)
        cnt = 0
        for i in range(a, b):
            c += self._chroma_hist[i % n]
            cnt += 1
        change = 0.0
        norm_c = math.sqrt(float(np.dot(c, c)))
        if self._have_prev_chroma:
            norm_p = math.sqrt(float(np.dot(self._prev_chroma, self._prev_chroma)))
            if norm_c > 1e-9 and norm_p > 1e-9:
                change = 1.0 - float(np.dot(c, self._prev_chroma)) / (norm_c * norm_p)
            elif norm_c > 1e-9:
                change = 1.0  # harmony after silence
        self._prev_chroma[:] = c
        self._have_prev_chroma = cnt > 0
        low = math.log1p(low)
        # running standardisation (exponentially weighted mean and variance)
        st = self._stats
        lam = self._lam
        st[0] = lam * st[0] + 1.0
        r = 1.0 / st[0]
        d1 = low - st[1]
        st[1] += r * d1
        st[2] = (1.0 - r) * (st[2] + r * d1 * d1)
        d2 = change - st[3]
        st[3] += r * d2
        st[4] = (1.0 - r) * (st[4] + r * d2 * d2)
        if st[0] < 3.0:
            return 0.0
        z_low = (low - st[1]) / math.sqrt(st[2] + 1e-6)
        z_ch = (change - st[3]) / math.sqrt(st[4] + 1e-4)
        z_low = min(max(z_low, -3.0), 3.0)
        z_ch = min(max(z_ch, -3.0), 3.0)
        return self.low_weight * z_low + self.chroma_weight * z_ch

    def _add(self, j: int, accent: float) -> None:
        for m, s in self._s.items():
            w = self._w[m]
            s *= self._lam
            w *= self._lam
            s[j % m] += accent
            w[j % m] += 1.0

    def add_evidence(self, beat_index: int, weight: float) -> None:
        """Add ``weight`` [standard deviations] to the hypothesis that ``beat_index`` is a downbeat (e.g. a drop
        was detected there). Call from the thread that calls :meth:`update`."""
        for m, s in self._s.items():
            s[beat_index % m] += weight

    def _decide(self) -> None:
        # meter: whose best position stands out more (contrast = best - mean of the others)
        c = {}
        for m, s in self._s.items():
            mean = self._mean[m]
            np.divide(s, np.maximum(self._w[m], 1e-3), out=mean)  # mean accent of each position
            best = float(mean.max())
            c[m] = best - (float(mean.sum()) - best) / (m - 1)
        self.contrast3, self.contrast4 = c[3], c[4]
        want = self.meter
        if self.meter == 4 and c[3] > self.meter3_ratio * max(c[4], 1e-9) and c[3] > self.meter_min_contrast:
            want = 3
        elif self.meter == 3 and c[4] > max(c[3], 1e-9) / self.meter3_ratio and c[4] > self.meter_min_contrast:
            want = 4
        if want != self.meter:
            self._meter_votes += 1
            if self._meter_votes >= self.meter_hold:
                self._meter_votes = 0
                self._set_meter(want)
        else:
            self._meter_votes = 0
        if self.locked:
            return
        m = self.meter
        s = self._s[m]
        best = int(np.argmax(s))
        cur = self._k[m]
        if best != cur and s[best] - s[cur] > self.switch_margin:
            self._move_downbeat(best)

    def _set_meter(self, m: int) -> None:
        old = self.meter
        self.meter = m
        if self.locked:  # keep the tapped downbeat a downbeat
            self._k[m] = self._k[old] % m if old == m else self._tap_beat % m
        self._snap_anchor()

    def _move_downbeat(self, k: int) -> None:
        self._k[self.meter] = k
        self._snap_anchor()

    def _snap_anchor(self) -> None:
        """Move the phrase anchor to the nearest downbeat of the current grid."""
        m, k = self.meter, self._k[self.meter]
        off = (self._anchor - k) % m
        self._anchor -= off if off <= m // 2 else off - m

    def reanchor(self, beat_index: int | None = None) -> None:
        """Start a new phrase at the downbeat nearest ``beat_index`` (default: the last beat); call from the thread
        that calls :meth:`update` (the section tracker does, at a drop or a breakdown)."""
        self._anchor = self.beat_index if beat_index is None else int(beat_index)
        self._snap_anchor()

    # ------------------------------------------------------------------ per hop
    def update(self, beat: bool, beat_phase: float, period_frames: float, flux_diff: np.ndarray,
               chroma: np.ndarray, active: bool = True) -> None:
        """Advance one hop.

        Args:
            beat: a beat was emitted in this hop (by the beat clock).
            beat_phase: the clock's position within the current beat, 0..1.
            period_frames: the clock's beat period [hops] (> 0 once it has a tempo).
            flux_diff: np.ndarray [shape=(n_bins,), float] positive log-magnitude difference of this hop's
                spectrum against the previous one (the spectral-flux terms, before weighting).
            chroma: np.ndarray [shape=(12,), float] this hop's chroma (max-normalised; zeros in silence).
            active: False in silence (cues are recorded as zeros; no sound start is registered).
        """
        self._frame += 1
        f = self._frame
        n = self._n
        self.downbeat = False
        if active:
            self._low_hist[f % n] = float(flux_diff[self._low].sum())
            self._chroma_hist[f % n] = chroma
            if self._sound_start < 0:
                self._sound_start = f
        else:
            self._low_hist[f % n] = 0.0
            self._chroma_hist[f % n] = 0.0
        if beat:
            if self.beat_index < 0:
                self._first_beat(f, period_frames)
            else:
                j = self.beat_index
                self.beat_index = j + 1
                self._beat_frames[(j + 1) % 64] = f
                if period_frames > 0 and self._period > 0 and not 0.87 < period_frames / self._period < 1.15:
                    # a new tempo: beats counted at the old one say little about where the bar starts
                    for s in (*self._s.values(), *self._w.values()):
                        s *= self.tempo_change_keep
                if period_frames > 0:
                    self._period = period_frames
                self._add(j, self._accent(j, f))
                self._decide()
        if self.beat_index < 0:
            return
        if self._resync_req != self._resync_seen:
            self._resync_seen = self._resync_req
            self._apply_resync(beat_phase)
        m = self.meter
        bib = (self.beat_index - self._k[m]) % m
        self.beat_in_bar = bib
        if beat and bib == 0:
            self.downbeat = True
            self.downbeat_count += 1
        ph = min(max(beat_phase, 0.0), 1.0 - 1e-6)
        self.bar_phase = (bib + ph) / m
        rel = self.beat_index - self._anchor
        self.bar_count = rel // m
        self.phrase_pos = ((rel % (PHRASE_BARS * m)) + ph) / m

    def _first_beat(self, f: int, period: float) -> None:
        """Reconstruct the beats before the first emitted one, back to the start of the sound."""
        start = self._sound_start if self._sound_start >= 0 else f
        oldest = max(f - self._n + 8, start - 0.5 * period, 0)
        k = 0
        if period > 0:
            k = int(math.floor((f - oldest) / period))
            k = min(k, 63)
        for i in range(k + 1):
            self._beat_frames[i] = f - (k - i) * period
        self._start_beat = 0  # the reconstructed beat nearest the sound start
        self._anchor = 0
        self.beat_index = 0
        self._period = period
        self._have_prev_chroma = False
        for i in range(1, k + 1):
            self.beat_index = i
            self._add(i - 1, self._accent(i - 1, self._beat_frames[i]))
        if k >= 0 and self.start_bonus:
            self.add_evidence(self._start_beat, self.start_bonus)
        self._decide()
        self._snap_anchor()

    def _apply_resync(self, beat_phase: float) -> None:
        j = self.beat_index + (1 if beat_phase >= 0.5 else 0)  # the nearest beat
        self._tap_beat = j
        for m in self._k:
            self._k[m] = j % m
        self.locked = True
        self._snap_anchor()  # phrases keep counting, on the tapped grid

    def position(self) -> tuple[int, int, float, float]:
        """(meter, beat_in_bar, bar_phase, phrase_pos) of the last update."""
        return self.meter, self.beat_in_bar, self.bar_phase, self.phrase_pos


class BarSync:
    """A mailbox for taps on the "one" from the control threads to the analysis thread.

    The control side (keyboard R, ``/vj/tempo/resync``, a MIDI button) calls :meth:`request`; the analyzer
    polls :meth:`pending` once per hop. Nothing blocks: a request is an integer increment.
    """

    def __init__(self):
        self._count = 0
        self._seen = 0

    def request(self, now: float | None = None) -> None:
        """A tap on the "one" (``now`` is accepted for the listener signature and ignored)."""
        self._count += 1

    def pending(self) -> bool:
        """True once per request (for the analysis thread)."""
        if self._count != self._seen:
            self._seen = self._count
            return True
        return False


__all__ = ["BarSync", "BarTracker", "PHRASE_BARS"]
