"""A causal beat clock: tempo from the autocorrelation of an onset-strength envelope, phase from a cumulative
beat score, beats predicted half a beat ahead so they are emitted on time.

The method follows the published description of real-time beat tracking by

* D. P. W. Ellis, "Beat tracking by dynamic programming", J. New Music Research 36(1), 2007 — the cumulative
  score ``C(n) = O(n) + max_v W(v) C(n - v)`` with a log-Gaussian transition weight ``W`` around one beat
  period;
* A. M. Stark, M. E. P. Davies, M. D. Plumbley, "Real-time beat-synchronous analysis of musical audio",
  DAFx 2009 — the causal form: the score is updated once per onset-envelope frame, and half a beat after each
  beat the score is projected forward (future onset strength taken as zero) to predict the next beat;
* M. E. P. Davies, M. D. Plumbley, "Context-dependent beat tracking of musical audio", IEEE TASLP 15(3), 2007 —
  tempo from a comb filterbank over the envelope's autocorrelation with a tempo prior, smoothed over time.

Implementation written for vj from those papers (no code copied). All buffers are allocated once in
``__init__``; :meth:`BeatClock.update` allocates nothing large.
"""

from __future__ import annotations

import math

import numpy as np


class BeatClock:
    """Causal beat tracker driven by one onset-strength value per hop.

    Args:
        frame_rate: onset-envelope frames per second [Hz] (sample_rate / hop_size).
        min_bpm, max_bpm: tempo search range [beats per minute].
        prior_bpm: centre of the log-Gaussian tempo prior [bpm].
        prior_octaves: standard deviation of the tempo prior [octaves].
        history_s: length of the onset envelope kept for tempo estimation [s].
        tightness: how strongly the cumulative score prefers exactly one period between beats (Ellis's
            tightness, applied to ``log(v / period)``).
        alpha: weight of the past cumulative score against the current onset strength, 0..1.
        latency_frames: how many frames the onset envelope lags the audio (half the analysis window); beats
            are emitted this many frames before the envelope would show them.
        warmup_s: no beats are emitted before this much signal has been seen [s].
        tempo_every: re-estimate the tempo every this many frames.
    """

    def __init__(
        self,
        frame_rate: float,
        min_bpm: float = 60.0,
        max_bpm: float = 200.0,
        prior_bpm: float = 120.0,
        prior_octaves: float = 0.9,
        history_s: float = 6.0,
        tightness: float = 5.0,
        alpha: float = 0.9,
        latency_frames: float = 0.0,
        warmup_s: float = 2.0,
        tempo_every: int = 8,
    ):
        self.frame_rate = float(frame_rate)
        self.alpha = float(alpha)
        self.tightness = float(tightness)
        self.latency_frames = float(latency_frames)
        self.warmup_frames = int(round(warmup_s * frame_rate))
        self.tempo_every = max(1, int(tempo_every))
        n = int(round(history_s * frame_rate))
        self._n = n
        self._odf = np.zeros(n, dtype=np.float64)  # onset envelope, oldest first
        self._odf2 = np.zeros(n, dtype=np.float64)  # ping-pong partner (shifting without overlap)
        self._cs = np.zeros(n, dtype=np.float64)  # cumulative score, aligned with _odf
        self._cs2 = np.zeros(n, dtype=np.float64)
        # Autocorrelation via FFT, zero-padded to avoid circular wrap.
        self._nfft = 1 << int(math.ceil(math.log2(2 * n)))
        self._pad = np.zeros(self._nfft, dtype=np.float64)
        self._spec = np.zeros(self._nfft // 2 + 1, dtype=np.complex128)
        self._pow = np.zeros(self._nfft // 2 + 1, dtype=np.float64)
        self._acf = np.zeros(self._nfft, dtype=np.float64)
        # Tempo candidates on a 1-bpm grid; comb filter taps at k * lag for k = 1..4 (linear interpolation).
        self._bpms = np.arange(min_bpm, max_bpm + 0.5, 1.0)
        lags = 60.0 * frame_rate / self._bpms
        ks = np.arange(1, 5, dtype=np.float64)
        taps = lags[:, None] * ks[None, :]
        taps = np.minimum(taps, n - 2)
        self._tap_i = np.floor(taps).astype(np.intp)
        self._tap_f = taps - self._tap_i
        self._tap_w = np.broadcast_to(1.0 / ks, taps.shape).copy()
        self._comb = np.zeros_like(taps)
        self._comb2 = np.zeros_like(taps)
        self._obs = np.zeros(len(self._bpms))
        self._prior = np.exp(-0.5 * (np.log2(self._bpms / prior_bpm) / prior_octaves) ** 2)
        self._post = self._prior / self._prior.sum()
        self._post_tmp = np.zeros(len(self._bpms))
        # Tempo transition: Gaussian in log-tempo, ~4% standard deviation per update.
        lb = np.log2(self._bpms)
        self._trans = np.exp(-0.5 * ((lb[:, None] - lb[None, :]) / 0.06) ** 2)
        self._trans /= self._trans.sum(axis=0, keepdims=True)
        # Transition weights for the cumulative score, over v = 1..2*max_period.
        self._max_v = int(math.ceil(2 * 60.0 * frame_rate / min_bpm)) + 1
        self._v = np.arange(1, self._max_v + 1, dtype=np.float64)
        self._w = np.zeros(self._max_v, dtype=np.float64)
        self._wtmp = np.zeros(self._max_v, dtype=np.float64)
        self._future = np.zeros(self._max_v + n, dtype=np.float64)
        self._gauss = np.zeros(self._max_v, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        """Forget tempo and phase (e.g. after long silence); buffers are reused."""
        self._odf[:] = 0.0
        self._cs[:] = 0.0
        self._frame = -1  # index of the newest frame
        self._period = 60.0 * self.frame_rate / 120.0
        self._set_weights(self._period)
        self._post = self._prior / self._prior.sum()
        self._last_beat = -1.0e9  # frame of the last emitted beat (in envelope coordinates)
        self._next_beat = -1.0  # predicted frame of the next beat; < 0 while none pending
        self._predict_at = -1  # frame at which to predict the next beat
        self._have_tempo = False

    # ------------------------------------------------------------------ properties
    @property
    def bpm(self) -> float:
        """Current tempo [bpm]; 0 until the first estimate."""
        return 60.0 * self.frame_rate / self._period if self._have_tempo else 0.0

    @property
    def period_frames(self) -> float:
        """Current beat period [frames]."""
        return self._period

    def phase(self) -> float:
        """Position within the current beat, 0..1 (0 on the beat); 0 while unknown."""
        if not self._have_tempo or self._last_beat < 0:
            return 0.0
        emit_last = self._last_beat - self.latency_frames
        span = (self._next_beat - self._last_beat) if self._next_beat > self._last_beat else self._period
        p = (self._frame - emit_last) / max(span, 1.0)
        return float(min(max(p, 0.0), 1.0 - 1e-6))

    # ------------------------------------------------------------------ internals
    def _set_weights(self, period: float) -> None:
        w = self._w
        np.divide(self._v, period, out=w)
        np.log(w, out=w)
        w *= self.tightness
        np.multiply(w, w, out=w)
        w *= -0.5
        np.exp(w, out=w)
        lo, hi = int(round(period / 2)), int(round(2 * period))
        self._w[: max(lo - 1, 0)] = 0.0
        self._w[hi:] = 0.0

    def _estimate_tempo(self) -> None:
        n = self._n
        pad = self._pad
        pad[:n] = self._odf
        pad[:n] -= self._odf.mean()
        pad[n:] = 0.0
        np.fft.rfft(pad, out=self._spec)
        np.abs(self._spec, out=self._pow)
        np.multiply(self._pow, self._pow, out=self._pow)
        np.fft.irfft(self._pow, n=self._nfft, out=self._acf)
        acf = self._acf
        if acf[0] <= 0:
            return
        # Comb filterbank: sum of interpolated ACF at multiples of each candidate lag (Davies & Plumbley).
        np.take(acf, self._tap_i, out=self._comb)
        np.take(acf, self._tap_i + 1, out=self._comb2)
        self._comb += self._tap_f * (self._comb2 - self._comb)
        self._comb *= self._tap_w
        np.sum(self._comb, axis=1, out=self._obs)
        np.maximum(self._obs, 0.0, out=self._obs)
        total = self._obs.sum()
        if total <= 0:
            return
        self._obs /= total
        # Bayesian smoothing over time: predict with the transition, weight by observation and prior.
        np.dot(self._trans, self._post, out=self._post_tmp)
        self._post_tmp *= self._obs
        self._post_tmp *= self._prior
        s = self._post_tmp.sum()
        if s <= 0:
            return
        self._post[:] = self._post_tmp / s
        i = int(np.argmax(self._post))
        # Parabolic refinement of the peak on the 1-bpm grid.
        bpm = self._bpms[i]
        if 0 < i < len(self._bpms) - 1:
            a, b, c = self._post[i - 1], self._post[i], self._post[i + 1]
            den = a - 2 * b + c
            if den < 0:
                bpm += 0.5 * (a - c) / den
        period = 60.0 * self.frame_rate / bpm
        if not self._have_tempo or abs(period - self._period) > 0.25:
            self._set_weights(period)
        self._period = period
        self._have_tempo = True

    def _score(self, cs: np.ndarray, end: int, out_len: int) -> float:
        """max_v W(v) * cs[end - v] for v = 1..max_v (entries before the buffer count as 0)."""
        m = min(self._max_v, end)
        if m <= 0:
            return 0.0
        seg = cs[end - m : end][::-1]  # cs[end-1], cs[end-2], ... = v = 1, 2, ...
        np.multiply(seg, self._w[:m], out=self._wtmp[:m])
        return float(self._wtmp[:m].max())

    def _predict(self) -> None:
        """Project the cumulative score forward (no future onsets) and pick the next beat near last + period."""
        n = self._n
        p = self._period
        horizon = int(math.ceil(1.5 * p)) + 1
        fut = self._future
        fut[:n] = self._cs
        a = self.alpha
        for j in range(horizon):
            fut[n + j] = a * self._score(fut, n + j, 0)
        # Weight the projection by a Gaussian around the expected beat position.
        g = self._gauss[:horizon]
        if self._last_beat < 0:  # first beat: the best-scoring frame within one period
            g[:] = 0.0
            g[: max(1, int(round(p)))] = 1.0
        else:
            expected = max(1.0, self._last_beat + p - self._frame)  # frames ahead of now
            np.subtract(self._v[:horizon], expected, out=g)
            g *= 4.0 / p
            np.multiply(g, g, out=g)
            g *= -0.5
            np.exp(g, out=g)
        g *= fut[n : n + horizon]
        best = int(np.argmax(g))
        self._next_beat = self._frame + 1 + best

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
        # Cumulative score of the newest frame.
        self._cs2[:-1] = self._cs[1:]
        self._cs2[-1] = 0.0
        self._cs, self._cs2 = self._cs2, self._cs
        past = self._score(self._cs, self._n - 1, 0)
        self._cs[-1] = (1.0 - self.alpha) * self._odf[-1] + self.alpha * past

        if f >= self.warmup_frames // 2 and f % self.tempo_every == 0:
            self._estimate_tempo()
        if not self._have_tempo or f < self.warmup_frames:
            return False
        if self._next_beat < 0 and self._predict_at < 0:
            self._predict()
        elif self._predict_at >= 0 and f >= self._predict_at:
            self._predict_at = -1
            self._predict()
        if self._next_beat >= 0 and f >= self._next_beat - self.latency_frames:
            self._last_beat = self._next_beat
            self._next_beat = -1.0
            self._predict_at = int(round(self._last_beat + self._period / 2))
            return bool(active)
        return False
