"""A causal beat tracker: tempo from the autocorrelation of an onset-strength envelope, phase from cross-correlating
the recent envelope with a beat comb, a phase-locked loop that predicts each beat so it is emitted on time.

Method (written for vj from the published descriptions; no code copied):

* Tempo — the envelope's autocorrelation over the last few seconds is scored by a comb filterbank (taps at
  1..4 times each candidate period, weights 1/k), weighted by a log-Gaussian tempo prior, and smoothed over
  time by a forward (HMM-style) recursion with a narrow tempo-transition kernel. After M. E. P. Davies and
  M. D. Plumbley, "Context-dependent beat tracking of musical audio", IEEE TASLP 15(3), 2007, and the
  tempo prior of D. P. W. Ellis, "Beat tracking by dynamic programming", JNMR 36(1), 2007.
* Phase — for the current period P, every candidate phase φ ∈ [0, P) is scored by the sum of the envelope at
  ``now - φ - k·P`` (k = 0..K-1, weights decaying into the past): the beat comb of the same Davies & Plumbley
  paper, made causal. The best φ says where the last beat was.
* Clock — a phase-locked loop keeps the predicted time of the next beat. Each phase measurement nudges it by a
  fraction of the (wrapped) phase error; an error of more than a quarter beat that persists (and scores
  clearly better than the current phase) re-aligns the clock at once. Beats are emitted when the predicted time
  is reached, ``latency_frames`` early to compensate for the envelope's analysis-window delay.
* Metrical level — the comb cannot always tell a tempo from its 4:3, 3:2, 2:3 or 3:4 relatives (a boom-bap
  loop at 92 bpm whose kicks fall every dotted eighth reads 123). Every half second the clock measures the
  *beat salience* of the current tempo and of those four relatives: the envelope's mean at the best-aligned grid
  of that period over the history, against its mean overall (a tempo whose grid falls on the kicks, snares and
  hats scores high; one whose grid falls between them scores low). Each relative that scores below the current
  tempo has its candidates' observation weighted by ``(s_rel / s_now) ** level_gamma``; if a relative scores
  higher, the current tempo's are weighted instead. Octaves (2:1, 1:2) are not judged this way: a grid at half
  the tempo always scores at least as high, at double the tempo lower, so the prior and ``min_bpm``/``max_bpm``
  decide them. The salience idea follows the "beat strength" of G. Tzanetakis and P. Cook, "Musical genre
  classification of audio signals", IEEE TSAP 10(5), 2002; its use to arbitrate related levels is vj's.
* Confidence — the share of the tempo posterior within ±4 % of the estimate, of half and of double it (those
  put beats on the same grid; a 3:2 rival does not). While it is below
  ``min_confidence`` the clock keeps tracking but emits no beats: no beat is better than a wrong one (an intro
  whose onsets barely mark the beat otherwise gets beats at whatever level the prior favours).

All buffers are allocated in ``__init__``; :meth:`BeatTracker.update` allocates nothing large.
"""

from __future__ import annotations

import math

import numpy as np


class BeatTracker:
    """Causal beat tracker driven by one onset-strength value per hop.

    Args:
        frame_rate: onset-envelope frames per second [Hz] (sample_rate / hop_size).
        min_bpm, max_bpm: tempo search range [beats per minute].
        prior_bpm: centre of the log-Gaussian tempo prior [bpm].
        prior_octaves: standard deviation of the tempo prior [octaves].
        history_s: length of the onset envelope kept (phase comb, tempo window) [s].
        latency_frames: how many frames the onset envelope lags the audio; beats are emitted this much early.
        warmup_s: no beats are emitted before this much signal has been seen [s].
        tempo_every: re-estimate the tempo every this many frames.
        phase_every: measure the phase every this many frames.
        phase_beats: number of past beats the phase comb looks at (K).
        pll_gain: fraction of the phase error corrected per measurement, 0..1.
        octave_jump: probability mass per tempo update of jumping anywhere in the tempo range (lets an early
            wrong metrical level be left).
        stable_s: the first beat waits until the tempo estimate has held within 3% for this long [s].
        unbiased: divide the autocorrelation at lag L by the number of overlapping frames (so the first
            seconds, with a short buffer, do not favour short lags).
        tempo_window_s: the tempo autocorrelation uses the newest this many seconds of the envelope [s]
            (shorter adapts faster to a new tempo: 5 s re-locks a 100 → 130 bpm click track in 3.3 s, 6 s in 3.4 s).
        comb_weights: weights of the comb taps at 1, 2, 3, ... times each candidate period.
        min_confidence: beats are emitted only while :attr:`confidence` is at least this, 0..1 (0 = always).
        level_every_s: how often the 4:3 / 3:2 / 2:3 / 3:4 levels are checked against the current tempo [s].
        level_gamma: sharpness of that check's weighting (0 turns it off).
        octave_hold: once a tempo is known, a jump to half or double it needs this many times its posterior mass
            (1 = no hold).

    Defaults were chosen by measurement on the annotated clips (benchmarks/analysis_accuracy.py); F-measures
    were flat across ``phase_beats`` 4..8 and ``pll_gain`` 0.1..0.4.
    """

    def __init__(
        self,
        frame_rate: float,
        min_bpm: float = 60.0,
        max_bpm: float = 200.0,
        prior_bpm: float = 110.0,
        prior_octaves: float = 0.6,
        history_s: float = 8.0,
        latency_frames: float = 1.0,
        warmup_s: float = 1.5,
        tempo_every: int = 8,
        phase_every: int = 2,
        phase_beats: int = 6,
        pll_gain: float = 0.15,
        octave_jump: float = 0.02,
        unbiased: bool = True,
        stable_s: float = 0.5,
        tempo_window_s: float = 5.0,
        comb_weights: tuple = (1.0, 0.5, 1.0 / 3.0, 0.25),
        min_confidence: float = 0.6,
        level_every_s: float = 0.5,
        level_gamma: float = 4.5,
        octave_hold: float = 2.0,
    ):
        self.level_gamma = float(level_gamma)
        self.octave_hold = float(octave_hold)
        self._level_every = max(1, int(round(level_every_s * frame_rate)))
        self.min_confidence = float(min_confidence)
        self.unbiased = unbiased
        self.stable_frames = int(round(stable_s * frame_rate))
        self.stable_tol = 0.03
        self._tempo_n = min(int(round(tempo_window_s * frame_rate)), int(round(history_s * frame_rate)))
        self.frame_rate = float(frame_rate)
        self.latency_frames = float(latency_frames)
        self.warmup_frames = int(round(warmup_s * frame_rate))
        self.tempo_every = max(1, int(tempo_every))
        self.phase_every = max(1, int(phase_every))
        self.phase_beats = max(1, int(phase_beats))
        self.pll_gain = float(pll_gain)
        n = int(round(history_s * frame_rate))
        self._n = n
        self._odf = np.zeros(n, dtype=np.float64)  # onset envelope, oldest first
        self._odf2 = np.zeros(n, dtype=np.float64)  # ping-pong partner (shifting without overlap)
        # Autocorrelation via FFT, zero-padded to avoid circular wrap.
        self._nfft = 1 << int(math.ceil(math.log2(2 * n)))
        self._pad = np.zeros(self._nfft, dtype=np.float64)
        self._spec = np.zeros(self._nfft // 2 + 1, dtype=np.complex128)
        self._pow = np.zeros(self._nfft // 2 + 1, dtype=np.float64)
        self._cpow = np.zeros(self._nfft // 2 + 1, dtype=np.complex128)
        # _overlap[n - valid + L] = valid - L: the number of products summed at lag L (unbiased ACF)
        self._overlap = np.arange(n, 0, -1, dtype=np.float64)
        self._min_overlap = int(round(1.0 * frame_rate))
        self._acf = np.zeros(self._nfft, dtype=np.float64)
        # Tempo candidates on a 1-bpm grid; comb taps at k * lag for k = 1..4 (linear interpolation).
        self._bpms = np.arange(min_bpm, max_bpm + 0.5, 1.0)
        lags = 60.0 * frame_rate / self._bpms
        ks = np.arange(1, len(comb_weights) + 1, dtype=np.float64)
        taps = np.minimum(lags[:, None] * ks[None, :], n - 2)
        self._tap_i = np.floor(taps).astype(np.intp)
        self._tap_i1 = self._tap_i + 1
        self._tap_f = taps - self._tap_i
        self._tap_w = np.broadcast_to(np.asarray(comb_weights, dtype=np.float64), taps.shape).copy()
        self._comb = np.zeros_like(taps)
        self._comb2 = np.zeros_like(taps)
        self._obs = np.zeros(len(self._bpms))
        self._prior = np.exp(-0.5 * (np.log2(self._bpms / prior_bpm) / prior_octaves) ** 2)
        self._post = np.zeros(len(self._bpms))
        self._post_tmp = np.zeros(len(self._bpms))
        # confidence window: candidates within ±4 % of each candidate (first index, one past the last)
        self._conf_lo = np.searchsorted(self._bpms, self._bpms / 1.04, side="left")
        self._conf_hi = np.searchsorted(self._bpms, self._bpms * 1.04, side="right")
        # Tempo transition: Gaussian in log-tempo (~4% standard deviation per update) plus a uniform floor.
        lb = np.log2(self._bpms)
        trans = np.exp(-0.5 * ((lb[:, None] - lb[None, :]) / 0.06) ** 2)
        trans /= trans.sum(axis=0, keepdims=True)
        self._trans = (1.0 - octave_jump) * trans + octave_jump / len(self._bpms)
        # Phase comb: phases 0..max_period-1, K beats back; index/weight buffers sized for the longest period.
        self._max_p = int(math.ceil(60.0 * frame_rate / min_bpm)) + 1
        k = self.phase_beats
        self._kw = (0.75 ** np.arange(k))[None, :]
        self._phi = np.arange(self._max_p, dtype=np.float64)[:, None]
        self._kk = np.arange(k, dtype=np.float64)[None, :]
        self._pidx = np.zeros((self._max_p, k), dtype=np.float64)
        self._pi0 = np.zeros((self._max_p, k), dtype=np.intp)
        self._pv0 = np.zeros((self._max_p, k), dtype=np.float64)
        self._pv1 = np.zeros((self._max_p, k), dtype=np.float64)
        self._pscore = np.zeros(self._max_p, dtype=np.float64)
        # Beat salience at related levels: a grid of phases × beats over the whole history.
        self._level_w = np.ones(len(self._bpms))
        kmax = int(n // (60.0 * frame_rate / max_bpm)) + 1
        self._skk = np.arange(kmax, dtype=np.float64)[None, :]
        self._sidx = np.zeros((self._max_p, kmax), dtype=np.float64)
        self._si0 = np.zeros((self._max_p, kmax), dtype=np.intp)
        self._sv0 = np.zeros((self._max_p, kmax), dtype=np.float64)
        self._sv1 = np.zeros((self._max_p, kmax), dtype=np.float64)
        self._sscore = np.zeros(self._max_p, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        """Forget tempo and phase (e.g. after long silence); buffers are reused."""
        self._odf[:] = 0.0
        self._frame = -1  # index of the newest frame
        self._period = 60.0 * self.frame_rate / 120.0
        self._post[:] = self._prior / self._prior.sum()
        self._have_tempo = False
        self._stable_since = 0
        self._next = -1.0  # predicted frame (envelope coordinates) of the next beat; < 0 while unknown
        self._last = -1.0  # frame of the last emitted beat
        self._outlier = 0  # consecutive phase measurements disagreeing by more than a quarter beat
        self._confidence = 0.0
        self._level_w[:] = 1.0

    # ------------------------------------------------------------------ properties
    @property
    def bpm(self) -> float:
        """Current tempo [bpm]; 0 until the first estimate."""
        return float(60.0 * self.frame_rate / self._period) if self._have_tempo else 0.0

    @property
    def confidence(self) -> float:
        """Share of the tempo posterior within ±4 % of :attr:`bpm`, of half and of double it, 0..1 (0 until the
        first estimate). Locked club music reads 0.9–1.0; an intro whose onsets do not mark the beat reads
        0.2–0.5."""
        return self._confidence if self._have_tempo else 0.0

    @property
    def period_frames(self) -> float:
        """Current beat period [frames]."""
        return self._period

    def phase(self) -> float:
        """Position within the current beat, 0..1 (0 on the beat); 0 while unknown."""
        if self._next < 0 or self._last < 0:
            return 0.0
        span = max(self._next - self._last, 1.0)
        p = (self._frame + self.latency_frames - self._last) / span
        return float(min(max(p, 0.0), 1.0 - 1e-6))

    # ------------------------------------------------------------------ internals
    def _estimate_tempo(self) -> None:
        n = self._n
        valid = min(self._frame + 1, self._tempo_n)  # frames of real signal used (none from before the stream)
        pad = self._pad
        pad[:] = 0.0
        seg = pad[:valid]
        seg[:] = self._odf[n - valid :]
        seg -= seg.mean()
        np.fft.rfft(pad, out=self._spec)
        np.abs(self._spec, out=self._pow)
        np.multiply(self._pow, self._pow, out=self._pow)
        self._cpow[:] = self._pow  # complex input: irfft would otherwise allocate a converted copy
        np.fft.irfft(self._cpow, n=self._nfft, out=self._acf)
        acf = self._acf
        if acf[0] <= 1e-12:
            return
        # Unbiased estimate: divide lag L by the number of overlapping frames; lags with too little overlap → 0.
        m = max(valid - self._min_overlap, 1)
        if self.unbiased:
            np.divide(acf[:m], self._overlap[n - valid : n - valid + m], out=acf[:m])
        acf[m:] = 0.0
        # Comb filterbank: interpolated ACF at multiples of each candidate lag.
        np.take(acf, self._tap_i, out=self._comb)
        np.take(acf, self._tap_i1, out=self._comb2)
        self._comb2 -= self._comb
        self._comb2 *= self._tap_f
        self._comb += self._comb2
        self._comb *= self._tap_w
        np.sum(self._comb, axis=1, out=self._obs)
        np.maximum(self._obs, 0.0, out=self._obs)
        total = self._obs.sum()
        if total <= 0:
            return
        self._obs /= total
        self._obs *= self._prior
        self._obs *= self._level_w
        # Forward recursion: predict with the transition kernel, weight by the (prior-weighted) observation.
        np.dot(self._trans, self._post, out=self._post_tmp)
        self._post_tmp *= self._obs
        s = self._post_tmp.sum()
        if s <= 0:
            return
        np.divide(self._post_tmp, s, out=self._post)
        i = int(np.argmax(self._post))
        if self._have_tempo and self.octave_hold > 1.0:
            # an octave jump (to half or double the current tempo) must win clearly: tempo that flips between
            # 92 and 184 makes every pulse flip with it
            cur = 60.0 * self.frame_rate / self._period
            for octave in (0.5, 2.0):
                if abs(math.log2(self._bpms[i] / (cur * octave))) < 0.06:
                    lo, hi = self._band(cur)
                    if self._mass(float(self._bpms[i])) < self.octave_hold * self._mass(cur) and hi > lo:
                        i = lo + int(np.argmax(self._post[lo:hi]))
        self._confidence = self._mass(float(self._bpms[i]))
        for octave in (0.5, 2.0):  # half and double tempo put beats on the same grid: compatible, not rivals
            if self._bpms[0] <= self._bpms[i] * octave <= self._bpms[-1]:
                self._confidence += self._mass(float(self._bpms[i]) * octave)
        bpm = float(self._bpms[i])
        if 0 < i < len(self._bpms) - 1:  # parabolic refinement on the 1-bpm grid
            a, b, c = self._post[i - 1], self._post[i], self._post[i + 1]
            den = a - 2 * b + c
            if den < 0:
                bpm += 0.5 * (a - c) / den
        new_period = 60.0 * self.frame_rate / bpm
        if abs(new_period - self._period) > self.stable_tol * self._period:
            self._stable_since = self._frame
        self._period = new_period
        self._have_tempo = True

    def salience(self, period: float) -> float:
        """Beat salience of a beat period over the history: the envelope's mean on the best-aligned grid of
        ``period`` frames divided by its mean over the same span (1 = the grid sees nothing special; 0 if there
        is no signal yet).

        Args:
            period: beat period [frames], at least ``60 * frame_rate / max_bpm``.
        """
        n = self._n
        valid = min(self._frame + 1, n)
        mean = float(self._odf[n - valid :].mean()) if valid > 0 else 0.0
        k = min(int((valid - 1) // period), self._skk.shape[1])
        m = min(int(math.ceil(period)), self._max_p)
        if mean <= 1e-12 or k < 2:
            return 0.0
        v0 = self._grid(period, self._skk[:, :k], self._sidx[:m, :k], self._si0[:m, :k], self._sv0[:m, :k],
                        self._sv1[:m, :k])
        sc = self._sscore[:m]
        np.mean(v0, axis=1, out=sc)
        return float(sc.max()) / mean

    def _check_levels(self) -> None:
        """Weight the 4:3, 3:2, 2:3 and 3:4 relatives of the current tempo (or it) by their beat salience."""
        w = self._level_w
        w[:] = 1.0
        if self.level_gamma <= 0:
            return
        bpm = 60.0 * self.frame_rate / self._period
        s_now = self.salience(self._period)
        if s_now <= 0:
            return
        lo_now, hi_now = self._band(bpm)
        for ratio in (2.0 / 3.0, 3.0 / 4.0, 4.0 / 3.0, 3.0 / 2.0):
            rel = bpm * ratio
            if not self._bpms[0] <= rel <= self._bpms[-1]:
                continue
            s_rel = self.salience(60.0 * self.frame_rate / rel)
            if s_rel < s_now:
                lo, hi = self._band(rel)
                np.minimum(w[lo:hi], (s_rel / s_now) ** self.level_gamma, out=w[lo:hi])
            else:
                np.minimum(w[lo_now:hi_now], (s_now / s_rel) ** self.level_gamma, out=w[lo_now:hi_now])

    def _mass(self, bpm: float) -> float:
        lo, hi = self._band(bpm)
        return float(self._post[lo:hi].sum())

    def _band(self, bpm: float) -> tuple[int, int]:
        i = int(np.argmin(np.abs(self._bpms - bpm)))
        return int(self._conf_lo[i]), int(self._conf_hi[i])

    def _grid(self, period: float, kk: np.ndarray, idx: np.ndarray, i0: np.ndarray, v0: np.ndarray,
              v1: np.ndarray) -> np.ndarray:
        """The envelope at ``now - φ - k·period`` for phases φ = 0..m-1 (rows) and beats back k = ``kk`` (columns),
        linearly interpolated, into the preallocated [m, K] buffers ``idx`` (float), ``i0`` (intp), ``v0``, ``v1``
        (float); returns ``v0``."""
        m = idx.shape[0]
        np.multiply(kk, period, out=idx)  # k * P
        idx += self._phi[:m]  # + φ
        np.subtract(self._n - 1.0, idx, out=idx)  # position in the buffer (newest = n - 1)
        np.clip(idx, 0.0, self._n - 1.000001, out=idx)
        i0[:] = idx  # truncation == floor for idx >= 0; i0 <= n - 2
        idx -= i0  # fractional part
        np.take(self._odf, i0, out=v0)
        i0 += 1
        np.take(self._odf, i0, out=v1)
        v1 -= v0
        v1 *= idx
        v0 += v1
        return v0

    def _measure_phase(self) -> tuple[float, float, np.ndarray]:
        """Score phases φ = 0..P-1 (frames since the last beat). Returns (best φ, its score, scores)."""
        p = self._period
        m = int(math.ceil(p))
        v0 = self._grid(p, self._kk, self._pidx[:m], self._pi0[:m], self._pv0[:m], self._pv1[:m])
        v0 *= self._kw
        sc = self._pscore[:m]
        np.sum(v0, axis=1, out=sc)
        best = int(np.argmax(sc))
        return float(best), float(sc[best]), sc

    # ------------------------------------------------------------------ public
    def update(self, odf: float, active: bool = True) -> bool:
        """Advance one frame.

        Args:
            odf: onset strength of the newest frame, >= 0.
            active: False in silence: the envelope is fed zeros and no beat is emitted.

        Returns:
            True if a beat is emitted at this frame.
        """
        self._frame += 1
        f = self._frame
        self._odf2[:-1] = self._odf[1:]
        self._odf2[-1] = odf if active else 0.0
        self._odf, self._odf2 = self._odf2, self._odf

        if self._have_tempo and f >= self.warmup_frames and f % self._level_every == 0:
            self._check_levels()
        if f >= self.warmup_frames // 2 and f % self.tempo_every == 0:
            self._estimate_tempo()
        if not self._have_tempo or f < self.warmup_frames:
            return False
        if self._next < 0 and f - self._stable_since < self.stable_frames:
            return False  # start only once the tempo has held still
        p = self._period
        if self._next < 0 or f % self.phase_every == 0:
            phi, score, sc = self._measure_phase()
            measured_last = f - phi  # frame of the most recent beat according to the comb
            if self._next < 0:
                self._next = measured_last + p
                while self._next - self.latency_frames < f:
                    self._next += p
            else:
                # Phase error in beats, wrapped to [-0.5, 0.5): measured grid vs predicted grid.
                err = ((measured_last - self._next) / p + 0.5) % 1.0 - 0.5
                if abs(err) < 0.25:
                    self._outlier = 0
                    self._next += self.pll_gain * err * p
                else:
                    cur_phi = int(round((f - (self._next - p)) % p)) % len(sc)
                    if score > 1.1 * sc[cur_phi]:
                        self._outlier += 1
                    else:
                        self._outlier = 0
                    if self._outlier * self.phase_every >= p:  # persisted for a beat: re-align
                        self._outlier = 0
                        self._next += err * p
                # never let a correction put the next beat within half a beat of the last one
                if self._last >= 0 and self._next - self._last < 0.5 * p:
                    self._next += p
        if f >= self._next - self.latency_frames:
            self._last = self._next
            self._next += p
            return bool(active) and self._confidence >= self.min_confidence
        return False
