"""Settings of the streaming analysis (:class:`AnalysisConfig`) and its recent-range normaliser
(:class:`RangeTracker`); used by :class:`vj.audio.analysis.StreamingAnalyzer`."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class AnalysisConfig:
    """Settings of :class:`StreamingAnalyzer`; defaults chosen by measurement (``benchmarks/analysis_accuracy.py``).

    Attributes:
        onset_method: aubio onset detection function (``specflux``, ``hfc``, ``complex``, ``phase``,
            ``wphase``, ``specdiff``, ``kl``, ``mkl``, ``energy``).
        onset_threshold: aubio peak-picking threshold (higher = fewer onsets).
        onset_minioi_s: minimum inter-onset interval [s].
        onset_buf_size: aubio onset window [samples].
        onset_min_flux: an aubio onset is kept only if vj's spectral flux (after gain control) reached this
            value within the last ~50 ms (0 disables the check). Steady tones ripple below ~0.9, onsets in the
            annotated recordings peak at 2.7 or more (measured with flux_gamma = 100).
        flux_gamma: log compression γ of vj's spectral flux, log(1 + γ·|X|) with |X| = 1 for a full-scale sine
            (feeds the beat tracker and the onset check; larger = quieter partials count more).
        beat_tracker: ``"clock"`` (vj's causal beat tracker, :mod:`vj.audio.beat`) or ``"aubio"`` (aubio's tempo
            tracker alone).
        min_bpm, max_bpm: tempo search range [bpm].
        prior_bpm: centre of the tempo prior [bpm]; prior_octaves: its width [octaves].
        beat_warmup_s: no beats before this much audio [s] (nor before the tempo has held still for 0.5 s).
        beat_min_confidence: no beats while the beat clock's tempo confidence (the share of its tempo posterior
            within ±4 % of the estimate, half or double it) is below this, 0..1 (0 = always emit); see :mod:`vj.audio.beat`.
        pitch_method: aubio pitch method; ``yin`` or ``yinfast`` (``yinfft``'s confidence is stale below ~1.3 kHz
            in aubio 0.4.9).
        pitch_buf_size: pitch window [samples]; the lowest detectable pitch is about 2·sample_rate/size
            (86 Hz = F2 for 1024 at 44.1 kHz); the estimate refers to the window centre, size/2 samples before
            the hop end (1024 halves that latency against 2048: raw pitch accuracy 0.90 vs 0.81 at hop end).
        pitch_tolerance: aubio yin threshold (lower = stricter).
        pitch_min_confidence: below this confidence the hop is unvoiced (``pitch_midi`` = 0).
        silence_db: raw loudness below which the input counts as silent [dBFS].
        agc_target_db: loudness the gain control aims for [dBFS].
        agc_rise_s, agc_fall_s: time constants of the gain-control envelope when loudness rises / falls [s].
        agc_settle_s: for this much non-silent audio after a start the envelope uses ``agc_rise_s`` both ways,
            so the gain settles within ~5 s whatever the first seconds held [s].
        agc_max_gain_db, agc_min_gain_db: gain limits [dB].
        range_fall_db_per_s: how fast the recent-range trackers (``level``, bands) forget [dB/s].
        range_min_db: smallest loudness range mapped onto 0..1 [dB].
        bass_hz, high_hz: band edges: bass < bass_hz <= mid < high_hz <= high [Hz].
        chroma_fft_size: window of the chroma FFT [samples].
        chroma_fmin_hz, chroma_fmax_hz: frequency range of the spectral peaks folded into chroma [Hz].
        chroma_bass_octaves: bass weighting; a peak's weight falls by 1/e per this many octaves above fmin.
        tuning_hz: reference A4 [Hz].
    """

    onset_method: str = "specflux"
    onset_threshold: float = 0.2
    onset_minioi_s: float = 0.02
    onset_buf_size: int = 1024
    onset_min_flux: float = 1.5
    beat_tracker: str = "clock"
    flux_gamma: float = 100.0
    min_bpm: float = 60.0
    max_bpm: float = 200.0
    prior_bpm: float = 110.0
    prior_octaves: float = 0.6
    beat_warmup_s: float = 1.5
    beat_min_confidence: float = 0.6
    pitch_method: str = "yinfast"
    pitch_buf_size: int = 1024
    pitch_tolerance: float = 0.2
    pitch_min_confidence: float = 0.6
    silence_db: float = -72.0
    agc_target_db: float = -15.0
    agc_rise_s: float = 0.3
    agc_fall_s: float = 1.5
    agc_settle_s: float = 3.0
    agc_max_gain_db: float = 45.0
    agc_min_gain_db: float = -20.0
    range_fall_db_per_s: float = 2.0
    range_min_db: float = 15.0
    bass_hz: float = 250.0
    high_hz: float = 4000.0
    chroma_fft_size: int = 4096
    chroma_fmin_hz: float = 100.0
    chroma_fmax_hz: float = 5000.0
    chroma_bass_octaves: float = 8.0
    tuning_hz: float = 440.0


class RangeTracker:
    """Maps a dB value onto 0..1 against its recent range: max/min envelopes that forget at a fixed rate.

    Args:
        fall_db: how far each envelope forgets per call [dB].
        min_range_db: smallest range mapped onto 0..1 [dB] (quiet hiss is not stretched to full scale).
    """

    def __init__(self, fall_db: float, min_range_db: float):
        self.fall = fall_db  # dB per hop
        self.min_range = min_range_db
        self.hi = -math.inf
        self.lo = math.inf

    def __call__(self, db: float) -> float:
        if self.hi == -math.inf:
            self.hi, self.lo = db, db - self.min_range
        self.hi = max(db, self.hi - self.fall)
        self.lo = min(db, self.lo + self.fall)
        lo = min(self.lo, self.hi - self.min_range)
        return min(max((db - lo) / (self.hi - lo), 0.0), 1.0)
