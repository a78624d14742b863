"""Streaming, hop-by-hop audio analysis → :class:`~vj.audio.features.Features`.

One :class:`StreamingAnalyzer` is fed exactly ``hop_size`` mono samples per call — by the live audio callback
(in real time) and by :func:`analyze_signal` (offline render / ``vj analyze``), so both see the same numbers.
Every buffer is allocated in ``__init__``; :meth:`StreamingAnalyzer.process` does no I/O, logging or locking and
allocates nothing but the returned record (its 12-value chroma copy, and the small tuples its stages hand on).

Per hop it computes

* clean-up: NaN/inf replaced by 0 (counted in :attr:`StreamingAnalyzer.nonfinite_count`), samples clipped to
  ±4, DC removed by subtracting a slowly tracked mean;
* loudness: RMS in dBFS of the hop before gain control (its variance: DC-free), a 0..1 ``level`` against the
  recent loudness range, silence detection with 3 dB hysteresis;
* automatic gain control: a dB-domain envelope of the raw loudness with separate rise/fall time constants,
  gain = target − envelope, clamped; the gained signal feeds everything below, so detection is level-invariant;
* bands: bass/mid/high energy from a 2048-sample Hann FFT, each normalised against its recent range;
* onsets: aubio's onset detector (default ``specflux``, chosen by measurement; see docs/benchmarks.md),
  suppressed in silence; ``onset_peak``, the flux's peak over the last 1/30 s, for frame-rate consumers;
* beats: :class:`vj.audio.beat.BeatTracker` fed by a log-magnitude spectral-flux envelope (or aubio's own
  tempo tracker with ``beat_tracker="aubio"``);
* bars and sections: :class:`vj.audio.bars.BarTracker` (meter, downbeat, bar phase, phrases) and
  :class:`vj.audio.sections.SectionTracker` (build, drop, breakdown), after the beat clock and chroma;
* pitch: aubio ``yinfast`` (de Cheveigné & Kawahara 2002, FFT form) → MIDI + confidence;
* chroma: a 4096-sample Hann FFT, its interpolated spectral peaks folded onto 12 pitch classes tuned to A440,
  log-compressed and bass-weighted (:mod:`vj.audio.chroma`; after Fujishima 1999, "Realtime chord recognition
  of musical sound", and Gómez 2006's HPCP).
"""

from __future__ import annotations

import math

import numpy as np

from vj.audio.analysis_config import AnalysisConfig, RangeTracker
from vj.audio.features import Features

_EPS = 1e-12

__all__ = ["AnalysisConfig", "StreamingAnalyzer", "analyze_signal"]


class StreamingAnalyzer:
    """Hop-by-hop analysis of a mono stream.

    Args:
        sample_rate: sampling rate of the stream [Hz] > 0.
        hop_size: samples per :meth:`process` call [samples] > 0 (512 at 44.1/48 kHz ≈ 11 ms).
        config: settings; None uses :class:`AnalysisConfig` defaults.

    Attributes:
        hop_index: index of the last hop processed (-1 before the first).
        frame_rate: hops per second [Hz] = sample_rate / hop_size.
        nonfinite_count: NaN/inf input samples replaced by 0 since the stream started.

    Raises:
        ValueError: non-positive sample rate or hop size, unknown onset/pitch method or beat tracker. Windows
            shorter than the hop are lengthened to the hop.
    """

    def __init__(self, sample_rate: int, hop_size: int = 512, config: AnalysisConfig | None = None):
        from vj.audio.beat import BeatTracker
        from vj.audio.chroma import PeakChroma

        if sample_rate <= 0 or hop_size <= 0:
            raise ValueError("sample_rate and hop_size must be positive")
        cfg = config or AnalysisConfig()
        self.config = cfg
        self.sample_rate = int(sample_rate)
        self.hop_size = int(hop_size)
        sr, hop = self.sample_rate, self.hop_size
        self.frame_rate = sr / hop
        self._settle_hops = int(cfg.agc_settle_s * self.frame_rate)
        self._dc_alpha = 1.0 - math.exp(-1.0 / self.frame_rate)  # DC tracker time constant 1 s
        if cfg.pitch_method not in ("yin", "yinfast", "yinfft", "mcomb", "fcomb", "schmitt", "specacf"):
            raise ValueError(f"unknown pitch method {cfg.pitch_method!r}")
        if cfg.beat_tracker not in ("clock", "aubio"):
            raise ValueError(f"unknown beat tracker {cfg.beat_tracker!r} (clock or aubio)")
        if cfg.onset_method not in _ONSET_METHODS:
            raise ValueError(f"unknown onset method {cfg.onset_method!r} (one of {', '.join(_ONSET_METHODS)})")
        self._onset_buf = max(cfg.onset_buf_size, hop)
        self._pitch_buf = max(cfg.pitch_buf_size, hop)
        self._n_long = max(cfg.chroma_fft_size, 2 * hop)
        self._n_short = min(2048 if sr <= 50000 else 4096, self._n_long)
        self._clock = BeatTracker(
            self.frame_rate, min_bpm=cfg.min_bpm, max_bpm=cfg.max_bpm, prior_bpm=cfg.prior_bpm,
            prior_octaves=cfg.prior_octaves, warmup_s=cfg.beat_warmup_s, min_confidence=cfg.beat_min_confidence,
            latency_frames=(self._n_short / 4) / hop,  # Hann-window flux peaks ~1/4 window after the onset
            tempo_every=max(1, round(self.frame_rate / 10.0)),  # ~10 tempo updates/s whatever the hop
            phase_every=max(1, round(self.frame_rate / 40.0)),  # ~40 phase measurements/s
        )
        # --- bars, phrases and section events: vj.audio.bars / vj.audio.sections
        from vj.audio.bars import BarTracker
        from vj.audio.sections import SectionTracker

        self._bars = BarTracker(self.frame_rate, sr / self._n_short, self._n_short // 2 + 1,
                                latency_frames=(self._n_short / 4) / hop)
        self._sections = SectionTracker(self.frame_rate, sr / self._n_short, self._n_short // 2 + 1)
        self.bar_sync = None  #: a vj.audio.bars.BarSync whose requests (taps on the one) reach the bar tracker

        # --- sample buffers (ping-pong, so shifting never overlaps)
        self._ring = np.zeros(self._n_long, dtype=np.float32)
        self._ring2 = np.zeros(self._n_long, dtype=np.float32)
        self._x = np.zeros(hop, dtype=np.float32)  # cleaned hop
        self._g = np.zeros(hop, dtype=np.float32)  # gained hop (fed to aubio)
        self._finite = np.zeros(hop, dtype=bool)
        self._sq = np.zeros(hop, dtype=np.float32)
        # long FFT (chroma)
        self._win_long = np.hanning(self._n_long)
        self._wbuf_long = np.zeros(self._n_long)  # float64: numpy's FFT would convert (allocate) otherwise
        self._spec_long = np.zeros(self._n_long // 2 + 1, dtype=np.complex128)
        self._mag_long = np.zeros(self._n_long // 2 + 1)
        self._peak_chroma = PeakChroma(
            self._n_long, sr, cfg.chroma_fmin_hz, cfg.chroma_fmax_hz, cfg.tuning_hz, cfg.chroma_bass_octaves
        )
        self._chroma = np.zeros(12, dtype=np.float32)
        # short FFT (bands, onset-strength envelope for the beat tracker)
        self._win_short = np.hanning(self._n_short)
        self._wbuf_short = np.zeros(self._n_short)
        nb = self._n_short // 2 + 1
        self._spec_short = np.zeros(nb, dtype=np.complex128)
        self._mag = np.zeros(nb)
        self._logmag = np.zeros(nb)
        self._prev_logmag = np.zeros(nb)
        self._diff = np.zeros(nb)
        f = np.arange(nb) * sr / self._n_short
        self._b_bass = slice(1, max(2, int(np.searchsorted(f, cfg.bass_hz))))
        self._b_mid = slice(self._b_bass.stop, max(self._b_bass.stop + 1, int(np.searchsorted(f, cfg.high_hz))))
        self._b_high = slice(self._b_mid.stop, nb)
        # Spectral-flux weights: 1/f above 100 Hz, i.e. every octave counts alike (a log-frequency filterbank in
        # effect), so kick and snare are not outvoted by the many hi-hat bins; nothing above 16 kHz.
        self._flux_w = ((f > 0) & (f < 16000.0)) / np.maximum(f, 100.0)
        self._flux_w *= 100.0
        self._flux_scale = cfg.flux_gamma * 4.0 / self._n_short

        self._odf_decay = math.exp(-1.0 / (12.0 * self.frame_rate))  # onset_strength's maximum forgets in ~12 s
        # the flux of one hop grows with the hop (more change between frames): the floor is set for 512 samples
        self._onset_min_flux = cfg.onset_min_flux * min(1.0, hop / 512.0)
        self._odf_recent = np.zeros(max(1, int(round(0.05 * self.frame_rate))))  # last ~50 ms of flux
        self._peak_hops = np.arange(max(1, min(len(self._odf_recent), round(self.frame_rate / 30.0))))  # 1/30 s
        self.reset()

    def _make_aubio(self) -> None:
        """(Re)create the aubio objects; each takes exactly ``hop_size`` samples per call."""
        import aubio

        cfg, sr, hop = self.config, self.sample_rate, self.hop_size
        self._onset_det = aubio.onset(cfg.onset_method, self._onset_buf, hop, sr)
        self._onset_det.set_threshold(float(cfg.onset_threshold))
        self._onset_det.set_minioi_s(float(cfg.onset_minioi_s))
        self._onset_det.set_silence(-90.0)  # vj decides silence itself, on the level before gain control
        self._pitch_det = aubio.pitch(cfg.pitch_method, self._pitch_buf, hop, sr)
        self._pitch_det.set_unit("midi")
        self._pitch_det.set_tolerance(float(cfg.pitch_tolerance))
        self._pitch_det.set_silence(-90.0)
        self._tempo = None
        if cfg.beat_tracker == "aubio":
            self._tempo = aubio.tempo("default", max(1024, 2 * hop), hop, sr)
            self._tempo.set_silence(-90.0)

    def reset(self) -> None:
        """Start a new stream: clear buffers, counters and trackers (numpy buffers are reused; the aubio objects,
        which cannot be cleared, are recreated — call it between streams, not from the audio callback)."""
        self._make_aubio()
        fall = self.config.range_fall_db_per_s / self.frame_rate
        self._level_rt = RangeTracker(fall, self.config.range_min_db)
        self._band_rt = [RangeTracker(fall, self.config.range_min_db) for _ in range(3)]
        self._odf_max = 1e-3
        self.hop_index = -1
        self.nonfinite_count = 0
        self._onset_count = 0
        self._beat_count = 0
        self._dc = None
        self._agc_env_db = None
        self._gain_db = 0.0
        self._silent = True
        self._silent_hops = 0
        self._sound_hops = 0
        self._ring[:] = 0.0
        self._prev_logmag[:] = 0.0
        self._odf_recent[:] = 0.0
        self._clock.reset()
        self._bars.reset()
        self._sections.reset()

    def resync_bar(self) -> None:
        """Tap on the "one": the beat nearest the next hop becomes the downbeat (thread-safe; see
        :meth:`vj.audio.bars.BarTracker.resync`)."""
        self._bars.resync()

    # ------------------------------------------------------------------ per hop
    def process(self, hop: np.ndarray, capture_time_s: float | None = None) -> Features:
        """Analyse one hop.

        The stages run in this order, each on what the previous left in the analyser's buffers:
        :meth:`_clean` → :meth:`_loudness` (and gain control) → :meth:`_push_ring` → :meth:`_spectrum`
        (bands, spectral flux) → :meth:`_onset` → :meth:`_beat` → :meth:`_pitch` → :meth:`_chroma_of_ring`.

        Args:
            hop: np.ndarray [shape=(hop_size,), float32, nominally -1..1] — the newest mono samples. It is
                copied; the caller may reuse its buffer.
            capture_time_s: host time [s] at which the hop's last sample was captured; None → stream time.

        Returns:
            The :class:`Features` of this hop (a new object; its chroma is a copy).

        Raises:
            ValueError: hop has the wrong length.
        """
        hs = self.hop_size
        if hop.shape != (hs,):
            raise ValueError(f"process() needs exactly {hs} mono samples, got shape {hop.shape}")
        self.hop_index += 1
        time_s = (self.hop_index + 1) * hs / self.sample_rate
        mean = self._clean(hop)
        loud_db, silent, gain, rms, level = self._loudness(mean)
        self._push_ring()
        bass, mid, high, odf, onset_strength = self._spectrum(silent)
        onset, onset_peak = self._onset(odf, silent)
        beat, bpm, beat_phase = self._beat(odf, silent)
        pm, conf = self._pitch(silent)
        chroma = self._chroma_of_ring(silent)
        bars, sections = self._bar_and_section(beat, bpm, beat_phase, chroma, silent, time_s)
        return Features(
            hop_index=self.hop_index,
            time_s=time_s,
            capture_time_s=time_s if capture_time_s is None else float(capture_time_s),
            rms=rms,
            loudness_db=loud_db,
            level=level,
            bass=bass,
            mid=mid,
            high=high,
            onset=onset,
            onset_strength=onset_strength,
            onset_peak=onset_peak,
            onset_count=self._onset_count,
            beat=beat,
            beat_count=self._beat_count,
            bpm=bpm,
            beat_phase=beat_phase,
            tempo_confidence=self._clock.confidence if self._tempo is None else 0.0,
            pitch_midi=pm,
            pitch_confidence=conf,
            chroma=chroma.copy(),
            silent=silent,
            gain=gain,
            meter=bars.meter,
            beat_in_bar=bars.beat_in_bar,
            downbeat=bars.downbeat,
            downbeat_count=bars.downbeat_count,
            bar_phase=bars.bar_phase,
            bar_count=bars.bar_count,
            phrase_pos=bars.phrase_pos,
            event=sections.event,
            event_confidence=sections.event_confidence,
            event_count=sections.event_count,
            last_event=sections.last_event,
            last_event_time_s=sections.last_event_time_s,
            last_event_confidence=sections.last_event_confidence,
            section=sections.section,
        )

    def _bar_and_section(self, beat: bool, bpm: float, beat_phase: float, chroma: np.ndarray, silent: bool,
                         time_s: float):
        """One step of the bar tracker (meter, downbeat, bar phase, phrases; a pending tap on the "one" first)
        and of the section tracker (build, drop, breakdown), after the beat and chroma stages.

        Returns:
            ``(bars, sections)``: the :class:`vj.audio.bars.BarTracker` and
            :class:`vj.audio.sections.SectionTracker`, whose attributes now describe this hop.
        """
        bars, sections = self._bars, self._sections
        if self.bar_sync is not None and self.bar_sync.pending():
            bars.resync()
        if self._tempo is None:
            period = self._clock.period_frames
        else:
            period = 60.0 * self.frame_rate / bpm if bpm > 0 else 0.0
        bars.update(beat, beat_phase, period, self._diff, chroma, active=not silent)
        sections.update(self._mag, self._gain_db, self._diff, beat, beat_phase, bars, time_s, active=not silent)
        return bars, sections

    def _clean(self, hop: np.ndarray) -> float:
        """Copy the hop into ``self._x``: NaN/inf → 0 (counted), clipped to ±4, DC removed by a one-pole mean
        tracker (~1 s time constant).

        Returns:
            The hop's mean before DC removal (the loudness stage needs it) [full scale].
        """
        hs = self.hop_size
        x = self._x
        np.copyto(x, hop, casting="unsafe")
        np.isfinite(x, out=self._finite)
        bad = hs - int(np.count_nonzero(self._finite))
        if bad:
            self.nonfinite_count += bad
            np.copyto(x, 0.0, where=~self._finite)
        np.clip(x, -4.0, 4.0, out=x)
        mean = float(x.mean())
        if self._dc is None:
            self._dc = mean
        else:
            self._dc += self._dc_alpha * (mean - self._dc)
        x -= self._dc
        return mean

    def _loudness(self, mean: float) -> tuple[float, bool, float, float, float]:
        """Loudness, silence and automatic gain control; writes the gained hop to ``self._g``.

        Loudness is the hop's variance in dBFS (so a DC step not yet tracked reads as silence too). Silence has
        3 dB of hysteresis. The gain follows a dB-domain envelope of the loudness with separate rise/fall time
        constants (fast both ways for the first ``agc_settle_s`` of sound), gain = target − envelope, clamped.

        Args:
            mean: the hop's mean before DC removal (from :meth:`_clean`).

        Returns:
            ``(loudness_db, silent, gain, rms, level)``: loudness before gain [dBFS], silent (bool), linear gain,
            RMS after gain [full scale], and ``level`` 0..1 against the recent loudness range.
        """
        cfg, hs = self.config, self.hop_size
        x = self._x
        np.multiply(x, x, out=self._sq)
        m1 = mean - self._dc
        ms = max(float(self._sq.mean()) - m1 * m1, 0.0)
        loud_db = max(10.0 * math.log10(ms + _EPS), -120.0)
        if self._silent:
            silent = loud_db < cfg.silence_db + 3.0  # hysteresis: 3 dB to leave silence
        else:
            silent = loud_db < cfg.silence_db
        self._silent = silent
        self._silent_hops = self._silent_hops + 1 if silent else 0
        if not silent:
            self._sound_hops += 1
            if self._agc_env_db is None:
                self._agc_env_db = loud_db
            else:
                # Fast both ways for the first agc_settle_s of sound, so the gain settles whatever came first.
                fast = loud_db > self._agc_env_db or self._sound_hops < self._settle_hops
                tau = cfg.agc_rise_s if fast else cfg.agc_fall_s
                a = 1.0 - math.exp(-hs / (self.sample_rate * tau))
                self._agc_env_db += a * (loud_db - self._agc_env_db)
            self._gain_db = min(max(cfg.agc_target_db - self._agc_env_db, cfg.agc_min_gain_db), cfg.agc_max_gain_db)
        gain = 10.0 ** (self._gain_db / 20.0)
        np.multiply(x, gain, out=self._g)
        rms = math.sqrt(ms) * gain
        level = 0.0 if silent else self._level_rt(loud_db)
        return loud_db, silent, gain, rms, level

    def _push_ring(self) -> None:
        """Append the gained hop to the ring of the last ``chroma_fft_size`` samples (ping-pong, no overlap)."""
        hs = self.hop_size
        ring = self._ring2
        ring[:-hs] = self._ring[hs:]
        ring[-hs:] = self._g
        self._ring, self._ring2 = ring, self._ring

    def _spectrum(self, silent: bool) -> tuple[float, float, float, float, float]:
        """The short Hann FFT of the ring's newest samples: band energies and the log spectral flux.

        The flux is ``Σ w(f) · max(0, log(1 + γ|X_t(f)|) − log(1 + γ|X_{t−1}(f)|))`` with 1/f weights above
        100 Hz (every octave counts alike) and nothing above 16 kHz.

        Returns:
            ``(bass, mid, high, odf, onset_strength)``: bands 0..1 against their recent range (0 in silence), the
            flux (onset detection function) and it normalised 0..1 by its slowly forgetting maximum.
        """
        ring = self._ring
        np.multiply(ring[-self._n_short :], self._win_short, out=self._wbuf_short)
        np.fft.rfft(self._wbuf_short, out=self._spec_short)
        mag = self._mag
        np.abs(self._spec_short, out=mag)
        if silent:
            bass = mid = high = 0.0
        else:
            bass, mid, high = (
                rt(10.0 * math.log10(float(np.dot(mag[sl], mag[sl])) + _EPS))
                for sl, rt in zip((self._b_bass, self._b_mid, self._b_high), self._band_rt)
            )
        lm = self._logmag
        np.multiply(mag, self._flux_scale, out=lm)  # log(1 + γ·|X|), |X| scaled so a full-scale sine is 1
        np.log1p(lm, out=lm)
        np.subtract(lm, self._prev_logmag, out=self._diff)
        np.maximum(self._diff, 0.0, out=self._diff)
        odf = float(np.dot(self._diff, self._flux_w))
        self._logmag, self._prev_logmag = self._prev_logmag, lm
        self._odf_max = max(odf, self._odf_max * self._odf_decay)
        onset_strength = 0.0 if silent else min(odf / self._odf_max, 1.0)
        return bass, mid, high, odf, onset_strength

    def _onset(self, odf: float, silent: bool) -> tuple[bool, float]:
        """aubio's onset detector on the gained hop, confirmed by vj's own flux: aubio's peak picker is relative
        and fires on the flux ripple of a steady tone; a real onset (after gain control) lifts the flux within
        the last ~50 ms above ``onset_min_flux``. Suppressed in silence; counted in the onset counter.

        Returns:
            ``(onset, onset_peak)``: this hop has an onset; the largest normalised flux of the last 1/30 s."""
        r = self._odf_recent
        r[self.hop_index % len(r)] = odf
        onset = bool(self._onset_det(self._g)[0]) and not silent and float(r.max()) >= self._onset_min_flux
        self._onset_count += onset
        peak = float(r[(self.hop_index - self._peak_hops) % len(r)].max())
        return onset, 0.0 if silent else min(peak / self._odf_max, 1.0)

    def _beat(self, odf: float, silent: bool) -> tuple[bool, float, float]:
        """One step of the beat tracker (:class:`vj.audio.beat.BeatTracker` on the flux, or aubio's tempo
        tracker with ``beat_tracker="aubio"``); a long silence (10 s) resets it, as the next song may have
        another tempo.

        Returns:
            ``(beat, bpm, beat_phase)``: a beat at this hop (counted), the tempo [bpm] (0 = unknown), and the
            phase since the last beat, 0..1.
        """
        if self._tempo is not None:
            beat = bool(self._tempo(self._g)[0]) and not silent
            bpm = float(self._tempo.get_bpm())
            period = 60.0 * self.frame_rate / bpm if bpm > 0 else 0.0
            last = self._tempo.get_last() / self.hop_size if self._tempo.get_last() > 0 else -1
            beat_phase = ((self.hop_index - last) / period) % 1.0 if period > 0 and last >= 0 else 0.0
        else:
            active = self._silent_hops < int(2.0 * self.frame_rate)
            if self._silent_hops == int(10.0 * self.frame_rate):
                self._clock.reset()  # long silence: the next song may have another tempo
                self._bars.reset()
                self._sections.reset()
            beat = self._clock.update(odf if not silent else 0.0, active=active)
            bpm = self._clock.bpm
            beat_phase = self._clock.phase()
        if beat:
            self._beat_count += 1
        return beat, bpm, beat_phase

    def _pitch(self, silent: bool) -> tuple[float, float]:
        """aubio's pitch (``pitch_method``) of the gained hop.

        Returns:
            ``(pitch_midi, confidence)``: MIDI note number, 0 when unvoiced (silent, confidence below
            ``pitch_min_confidence``, or out of 0..140); confidence clamped to 0..1.
        """
        pm = float(self._pitch_det(self._g)[0])
        conf = float(self._pitch_det.get_confidence())
        if not math.isfinite(conf):
            conf = 0.0
        conf = min(max(conf, 0.0), 1.0)
        if silent or conf < self.config.pitch_min_confidence or not (0.0 < pm < 140.0):
            pm = 0.0
        return pm, conf

    def _chroma_of_ring(self, silent: bool) -> np.ndarray:
        """12-bin chroma of the whole ring (long Hann FFT → :class:`vj.audio.chroma.PeakChroma`); zeros in
        silence. Returns the analyser's own buffer (the caller copies it)."""
        np.multiply(self._ring, self._win_long, out=self._wbuf_long)
        np.fft.rfft(self._wbuf_long, out=self._spec_long)
        ml = self._mag_long
        np.abs(self._spec_long, out=ml)
        chroma = self._chroma
        if silent:
            chroma[:] = 0.0
        else:
            chroma[:] = self._peak_chroma(ml)
        return chroma


_ONSET_METHODS = ("specflux", "hfc", "complex", "phase", "wphase", "specdiff", "kl", "mkl", "energy", "default")


def analyze_signal(
    y: np.ndarray, sample_rate: int, hop_size: int = 512, config: AnalysisConfig | None = None
) -> list[Features]:
    """Offline driver: run a :class:`StreamingAnalyzer` over a whole signal, hop by hop.

    Args:
        y: np.ndarray [shape=(n,), float32, -1..1] mono samples (a [shape=(n, ch)] array is averaged to mono).
        sample_rate: [Hz] > 0.
        hop_size: [samples] > 0.
        config: analysis settings (None = defaults).

    Returns:
        One :class:`Features` per hop, ``ceil(n / hop_size)`` of them; the last hop is zero-padded.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=1, dtype=np.float32)
    an = StreamingAnalyzer(sample_rate, hop_size, config)
    n_hops = -(-len(y) // hop_size)
    out = []
    buf = np.zeros(hop_size, dtype=np.float32)
    for i in range(n_hops):
        seg = y[i * hop_size : (i + 1) * hop_size]
        if len(seg) < hop_size:
            buf[:] = 0.0
            buf[: len(seg)] = seg
            seg = buf
        out.append(an.process(seg))
    return out
