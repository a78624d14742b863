"""The per-hop analysis record shared by the audio thread, the mapping, the display and offline commands.

A :class:`Features` is produced for every hop of audio by :class:`vj.audio.analysis.StreamingAnalyzer`.
Live, the audio callback publishes the newest one into a latest-wins slot; consumers sampling at the display rate
may skip hops, so discrete events are also given as monotonically increasing counters (``onset_count``,
``beat_count``): a consumer compares with the counts it saw last time and misses no onset or beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Chroma bin names, bin 0 = C, tuned to A440 (equal temperament).
CHROMA_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _zeros12() -> np.ndarray:
    return np.zeros(12, dtype=np.float32)


@dataclass(slots=True)
class Features:
    """Analysis of one hop of audio.

    Attributes:
        hop_index: index of the hop since the stream started (0-based).
        time_s: stream time at the *end* of the hop [s] (hop_index + 1) * hop_size / sample_rate.
        capture_time_s: the vj clock (:func:`vj.clock.now_s`) instant at which the hop's last sample was captured [s];
            for live input derived from PortAudio's ADC time where available; offline equal to ``time_s``.
        rms: RMS of the hop after DC removal and automatic gain control, 0..~1 (linear).
        loudness_db: RMS of the hop in dBFS after DC removal, before gain control, -120..0 (up to +12 for
            input beyond full scale, which is clipped to ±4).
        level: loudness normalised to 0..1 against its recent range (what visuals use; 0 in silence).
        bass, mid, high: band energies (< 250 Hz, 250 Hz–4 kHz, > 4 kHz), each normalised 0..1 against its own
            recent range (0 in silence).
        onset: True if an onset was detected in this hop.
        onset_strength: onset detection function value (spectral flux), normalised 0..1 by its decaying maximum
            (0 in silence).
        onset_peak: the largest ``onset_strength`` of the hops in the last 1/30 s (one video frame at 30 fps;
            at least one hop), 0..1 — what a frame-rate consumer samples so it misses no hit between two frames.
        onset_count: number of onsets since the stream started (latched event counter).
        beat: True if a beat fell in this hop.
        beat_count: number of beats since the stream started (latched event counter).
        bpm: current tempo estimate [beats per minute]; 0 while unknown.
        beat_phase: position within the current beat, 0..1 (0 = on the beat); 0 while unknown.
        tempo_confidence: the beat clock's confidence in ``bpm``, 0..1 (the share of its tempo posterior within
            ±4 % of ``bpm``, half or double it: :attr:`vj.audio.beat.BeatTracker.confidence`); below 0.6 it emits
            no beats (0 with aubio's tracker).
        pitch_midi: estimated fundamental as a fractional MIDI note number; 0 when unvoiced.
        pitch_confidence: confidence of the pitch estimate, 0..1.
        chroma: float32 [shape=(12,)] pitch-class energy C..B, normalised so the maximum is 1 (all 0 in silence).
        silent: True when the input is below the silence threshold.
        gain: current automatic-gain-control factor applied to the input (linear).
        meter: beats per bar inferred by :class:`vj.audio.bars.BarTracker`, 3 or 4.
        beat_in_bar: position of the last beat in its bar, 0 (the downbeat) .. meter-1; -1 while unknown.
        downbeat: True if the beat of this hop is the bar's "one".
        downbeat_count: number of downbeats since the stream started (latched event counter).
        bar_phase: position within the bar, 0..1 (0 = the downbeat); 0 while unknown.
        bar_count: whole bars since the phrase anchor (see ``phrase_pos``).
        phrase_pos: bars since the phrase anchor (the start of the sound, or the last drop/breakdown) modulo 32,
            with the bar phase as fraction, 0..32 [bars]; the position in a 16- or 8-bar phrase is
            ``phrase_pos % 16`` / ``% 8``.
        event: section event reported in this hop: ``"build"``, ``"drop"``, ``"breakdown"``, or ``""``
            (:class:`vj.audio.sections.SectionTracker`).
        event_confidence: confidence of ``event``, 0..1 (0 without an event).
        event_count: section events since the stream started (latched event counter).
        last_event: the most recent section event (``""`` before the first); ``last_event_time_s`` its
            stream time [s] and ``last_event_confidence`` its confidence (0 before the first).
        section: the section the tracker believes it is in: ``""`` (not yet known), ``"full"``,
            ``"breakdown"``, ``"build"``.
    """

    hop_index: int = -1
    time_s: float = 0.0
    capture_time_s: float = 0.0
    rms: float = 0.0
    loudness_db: float = -120.0
    level: float = 0.0
    bass: float = 0.0
    mid: float = 0.0
    high: float = 0.0
    onset: bool = False
    onset_strength: float = 0.0
    onset_peak: float = 0.0
    onset_count: int = 0
    beat: bool = False
    beat_count: int = 0
    bpm: float = 0.0
    beat_phase: float = 0.0
    tempo_confidence: float = 0.0
    pitch_midi: float = 0.0
    pitch_confidence: float = 0.0
    chroma: np.ndarray = field(default_factory=_zeros12)
    silent: bool = True
    gain: float = 1.0
    meter: int = 4
    beat_in_bar: int = -1
    downbeat: bool = False
    downbeat_count: int = 0
    bar_phase: float = 0.0
    bar_count: int = 0
    phrase_pos: float = 0.0
    event: str = ""
    event_confidence: float = 0.0
    event_count: int = 0
    last_event: str = ""
    last_event_time_s: float = 0.0
    last_event_confidence: float = 0.0
    section: str = ""
