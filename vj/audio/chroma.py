"""12-bin chroma (pitch-class profile) of one magnitude spectrum, from interpolated spectral peaks.

A plain fold of FFT bins onto pitch classes (Fujishima 1999) is unreliable below ~300 Hz with a 4096-sample
window: a semitone there is narrower than two bins, so a pure 220 Hz tone lands in bins whose centres belong to
G# and A#. Like the HPCP of E. Gómez ("Tonal description of music audio signals", PhD thesis, UPF 2006) this
module therefore

1. picks local maxima of the magnitude spectrum between ``fmin`` and ``fmax`` (at most ``peak_range_db`` below
   the largest),
2. refines each peak's frequency by fitting a parabola to the log magnitudes of the peak bin and its neighbours
   (J. O. Smith, *Spectral Audio Signal Processing*, "Quadratic interpolation of spectral peaks"),
3. maps it to a fractional MIDI pitch ``69 + 12·log2(f / tuning_hz)`` and adds to its nearest pitch class
   ``log(1 + γ·magnitude)`` (log compression as in M. Müller, *Fundamentals of Music Processing*, 2015,
   §3.1.2.1) × a cos² tuning weight over 4/3 semitone (Gómez 2006) × a mild bass weight
   ``exp(-octaves above fmin / bass_octaves)`` (fundamentals of low notes outweigh upper partials).

Pitches below ``fmin_hz`` (100 Hz by default: G2) count through their harmonics only.

The result is normalised so its maximum is 1 (all zeros when no peak qualifies). Written for vj (no code copied).
"""

from __future__ import annotations

import math

import numpy as np


class PeakChroma:
    """Chroma from the magnitude spectrum of an ``n_fft``-sample window.

    Args:
        n_fft: FFT size [samples] (the spectrum has ``n_fft // 2 + 1`` bins).
        sample_rate: [Hz].
        fmin_hz, fmax_hz: frequency range of the peaks used [Hz].
        tuning_hz: frequency of A4 [Hz]; bin 0 of the chroma is C.
        bass_octaves: bass weighting constant [octaves].
        peak_range_db: ignore peaks more than this below the largest peak [dB] (Hann side lobes are ≤ −31 dB).
        gamma: log-compression factor γ (applied to magnitudes scaled so a full-scale sinusoid gives 1).
        min_curvature: a peak counts only if its log-magnitude parabola is at least this sharp (a Hann main lobe
            gives ≈ 1.4; broad noise bumps less), in natural-log units per bin².

    Defaults were chosen by measurement (benchmarks/analysis_accuracy.py: piano recording, synthetic chords,
    pure tones); below ``fmin_hz`` the low-frequency rumble of real recordings outvoted the notes.
    """

    def __init__(
        self,
        n_fft: int,
        sample_rate: int,
        fmin_hz: float = 100.0,
        fmax_hz: float = 5000.0,
        tuning_hz: float = 440.0,
        bass_octaves: float = 8.0,
        peak_range_db: float = 30.0,
        gamma: float = 10.0,
        min_curvature: float = 0.8,
    ):
        self.n_fft = int(n_fft)
        self.sample_rate = int(sample_rate)
        self.tuning_hz = float(tuning_hz)
        self.bass_octaves = float(bass_octaves)
        self.fmin_hz = float(fmin_hz)
        self.gamma = float(gamma)
        self.range = 10.0 ** (-peak_range_db / 20.0)
        self.min_curvature = float(min_curvature)
        self.norm = 4.0 / n_fft  # Hann window: a full-scale sinusoid's peak → ~1
        df = sample_rate / n_fft
        self._k0 = max(2, int(math.floor(fmin_hz / df)))
        self._k1 = min(n_fft // 2 - 1, int(math.ceil(min(fmax_hz, 0.45 * sample_rate) / df)))
        m = max(self._k1 - self._k0, 1)
        self._gt = np.zeros(m, dtype=bool)
        self._ge = np.zeros(m, dtype=bool)
        self.chroma = np.zeros(12, dtype=np.float64)

    def __call__(self, mag: np.ndarray) -> np.ndarray:
        """Chroma of one spectrum.

        Args:
            mag: np.ndarray [shape=(n_fft // 2 + 1,), float, >= 0] magnitude spectrum of a windowed frame.

        Returns:
            np.ndarray [shape=(12,), float64, 0..1] — a view of an internal buffer (copy it to keep it).
        """
        k0, k1 = self._k0, self._k1
        c = mag[k0:k1]
        np.greater(c, mag[k0 - 1 : k1 - 1], out=self._gt)
        np.greater_equal(c, mag[k0 + 1 : k1 + 1], out=self._ge)
        self._gt &= self._ge
        top = float(c.max()) if len(c) else 0.0
        self.chroma[:] = 0.0
        if top <= 1e-9:
            return self.chroma
        np.greater(c, top * self.range, out=self._ge)
        self._gt &= self._ge
        k = np.flatnonzero(self._gt) + k0  # peak bins (small: tens of entries)
        if len(k) == 0:
            return self.chroma
        a = np.log(mag[k - 1] + 1e-12)
        b = np.log(mag[k] + 1e-12)
        g = np.log(mag[k + 1] + 1e-12)
        den = a - 2.0 * b + g
        keep = den < -self.min_curvature  # sinusoid-shaped (a Hann main lobe gives ≈ -1.4), not a noise bump
        if not keep.all():
            k, a, b, g, den = k[keep], a[keep], b[keep], g[keep], den[keep]
            if len(k) == 0:
                return self.chroma
        delta = 0.5 * (a - g) / den
        f = (k + np.clip(delta, -0.5, 0.5)) * (self.sample_rate / self.n_fft)
        f = np.maximum(f, self.fmin_hz * 0.5)
        midi = 69.0 + 12.0 * np.log2(f / self.tuning_hz)
        nearest = np.rint(midi)
        d = midi - nearest  # -0.5..0.5 semitones
        w = np.cos(np.pi * d / (4.0 / 3.0)) ** 2  # cos² over a 4/3-semitone window
        w *= np.log1p(self.gamma * self.norm * mag[k])
        w *= np.exp(-np.log2(f / self.fmin_hz).clip(0.0) / self.bass_octaves)
        self.chroma += np.bincount(nearest.astype(np.intp) % 12, weights=w, minlength=12)
        mx = self.chroma.max()
        if mx > 0:
            self.chroma /= mx
        return self.chroma
