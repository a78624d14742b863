"""Mapping: audio :class:`~vj.audio.features.Features` + settings → BigGAN latents.

This is a causal, frame-rate-independent reimplementation of the mapping of Matt Siegelman's deep music
visualizer (github.com/msieg/deep-music-visualizer). The controls and what they mean come from its README; the
details the README leaves out come from reading its script (``visualize.py``): the jitter mask re-drawn every 200
frames, the 1:3 blend of each noise update with the previous one, and the ``2 × truncation − tempo_sensitivity``
reversal bound. That repository carries no licence, so its behaviour is rewritten here and none of its code is
copied:

* **Class vector** — up to 12 ImageNet classes are tied to the 12 pitch classes (chroma bins). Each video frame,
  the weight of a class moves towards the (sharpened, max-normalised) chroma energy of its pitch at a rate set by
  ``pitch_sensitivity``; ``smooth_factor`` then smooths the weights so small pitch fluctuations do not make the
  picture flicker; ``depth`` is the largest weight a class reaches.
* **Noise vector** — each of the 128 dimensions moves in its own direction by
  ``tempo_sensitivity × (loudness + rise of loudness)`` per frame, with ``jitter`` damping a random half of the
  dimensions (re-drawn periodically) to avoid repetition; each move is blended 1:3 with the previous one; a
  dimension reverses when it reaches ``±(2 × truncation − tempo_sensitivity)``.
* **Truncation** — constant per frame (the registry's value live).

Deviations from the original, on purpose:

* Causal by default (what live needs): loudness is normalised against its recent range (by the analysis,
  :attr:`vj.audio.features.Features.level`), class smoothing is an
  exponential moving average with the same mean delay as the original's ``smooth_factor``-frame block average,
  and the pitch ranking used by ``sort_classes_by_power`` is the running chroma power so far. With
  ``lookahead=True`` (offline renders, :func:`map_offline`) loudness is normalised over the whole song, class
  weights are smoothed with a centred moving average and the ranking is over the whole song, as the original.
* ``sort_classes_by_power`` does what the original README describes: ``classes[0]`` is tied to the most powerful
  pitch, ``classes[1]`` to the next, and so on. Without it, the ``num_classes`` most powerful pitches are tied to
  the classes in chromatic order (C, C#, …) — the original's code tied classes to pitch rank either way.
* Motion is defined per second (at a 30 fps reference) so changing ``fps`` does not change the speed.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from vj.audio.features import Features
from vj.errors import VJError
from vj.latents import DIM_Z, NUM_CLASSES, LatentTrack
from vj.motion import BeatPulse, decay_s, hit_strength, offline_events
from vj.parameters import LIVE, mapping_ranges, setting

__all__ = ["LatentTrack", "Latents", "Mapper", "MappingSettings", "map_offline", "pick_classes", "truncated_noise"]

#: the live parameters that drive the mapping, in declaration order
_DRIVING = tuple(p for p in LIVE if p.mapping)

REF_FPS = 30.0  #: motion constants are defined per frame at this rate

#: Valid ranges of the numeric settings (inclusive), from their declarations in :mod:`vj.parameters` (which the
#: render CLI and the live registry read too).
RANGES: dict[str, tuple[float, float]] = mapping_ranges()


def _default(field_name: str):
    """The declared default of a setting for an offline render (:attr:`vj.parameters.Param.render_value`)."""
    p = setting(field_name)
    return int(p.render_value) if p.kind == "int" else p.render_value


@dataclass
class MappingSettings:
    """The deep music visualizer's controls (plus two live extras); ranges and defaults are declared in
    :mod:`vj.parameters` (the defaults here are ``vj render``'s, the original's own).

    Attributes:
        pitch_sensitivity: 200..295, how fast class weights follow the chroma (higher = faster).
        tempo_sensitivity: 0..1, how far the noise vector moves with loudness and its rise.
        depth: 0..1, maximum class-vector weight.
        jitter: 0..1, damping of a random half of the noise dimensions, re-drawn every ~6.7 s.
        truncation: 0.05..1, BigGAN truncation (also bounds the noise vector).
        smooth_factor: 1..200 [video frames], smoothing of the class vector.
        num_classes: 1..12, how many classes (pitches) are used.
        classes: ImageNet indices (at most 12); None → ``num_classes`` random classes from ``seed``.
        sort_classes_by_power: tie ``classes[0]`` to the most powerful pitch, and so on.
        fps: video frame rate [frames/s] the mapping is stepped at (render) or nominal (live).
        speed: 0..4, multiplier on noise motion (live extra; 1 = the original's behaviour).
        beat_kick: 0..1, extra noise jump when a beat is reported (live extra; 0 = the original's behaviour).
        pulse: 0..1, depth of the beat-locked noise jolt (:mod:`vj.motion`; 0 = none).
        calm: 0..1, reduction of the steady loudness motion (0 = the original's, 1 = none between beats).
        onset_follow: 0..1, noise step with each frame's onset strength (:attr:`Features.onset_peak`, weighted
            towards the bass and mids; 0 = none).
        class_beat: 0..1, class mix moves on the beats and 0.6× as fast on average (0 = the original's follower).
        truncation_pulse: 0..1, truncation swing on each beat (±0.15 at 1; down when truncation > 0.8).
        pulse_lead_s: 0..0.3 [s], how far ahead of the analysis the pulse is evaluated (display latency).
    """

    pitch_sensitivity: float = _default("pitch_sensitivity")
    tempo_sensitivity: float = _default("tempo_sensitivity")
    depth: float = _default("depth")
    jitter: float = _default("jitter")
    truncation: float = _default("truncation")
    smooth_factor: float = _default("smooth_factor")
    num_classes: int = _default("num_classes")
    classes: list[int] | None = None
    sort_classes_by_power: bool = False
    fps: float = _default("fps")
    speed: float = _default("speed")
    beat_kick: float = _default("beat_kick")
    pulse: float = _default("pulse")
    calm: float = _default("calm")
    onset_follow: float = _default("onset_follow")
    class_beat: float = _default("class_beat")
    truncation_pulse: float = _default("truncation_pulse")
    pulse_lead_s: float = _default("pulse_lead_s")

    def validate(self) -> "MappingSettings":
        """Check every value against :data:`RANGES`.

        Returns:
            self, for chaining.

        Raises:
            VJError: a value is NaN/inf or out of range, or ``classes`` has more than 12 / invalid indices.
        """
        for name, (lo, hi) in RANGES.items():
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
                raise VJError(f"{name.replace('_', '-')} must be within {lo:g}..{hi:g} (got {v!r})")
        if self.classes is not None:
            if not 1 <= len(self.classes) <= 12:
                raise VJError(f"give 1 to 12 classes (got {len(self.classes)})")
            if any(not 0 <= int(c) < NUM_CLASSES for c in self.classes):
                raise VJError("class indices must be within 0..999")
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "MappingSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})


@dataclass
class Latents:
    """BigGAN inputs for one video frame.

    Attributes:
        noise: float32 [shape=(128,)], the noise vector z, within ±2·truncation.
        class_vector: float32 [shape=(1000,)], non-negative class weights (a soft mix), max ≤ depth.
        truncation: float, 0.05..1.
        hop_index: index of the audio hop these latents reflect (-1 if none).
        capture_time_s: capture time of that hop [s] (host clock), for latency measurement.
    """

    noise: np.ndarray
    class_vector: np.ndarray
    truncation: float
    hop_index: int = -1
    capture_time_s: float = 0.0


def pick_classes(settings: MappingSettings, seed: int) -> list[int]:
    """The class palette: ``settings.classes`` cut to ``num_classes``, or random distinct classes from ``seed``."""
    if settings.classes:
        return [int(c) for c in settings.classes[: settings.num_classes]]
    rng = np.random.default_rng(seed)
    return [int(c) for c in rng.choice(NUM_CLASSES, size=settings.num_classes, replace=False)]


def truncated_noise(rng: np.random.Generator, truncation: float, dim: int = DIM_Z) -> np.ndarray:
    """A truncated-normal noise vector (each entry resampled until |x| ≤ 2), scaled by ``truncation``.

    Returns:
        float32 [shape=(dim,)] within ±2·truncation (the "truncation trick", Brock et al. 2019).
    """
    x = rng.standard_normal(dim)
    bad = np.abs(x) > 2
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(x) > 2
    return (x * truncation).astype(np.float32)


class Mapper:
    """Causal mapping, stepped once per video frame with the newest :class:`Features`.

    Args:
        settings: the controls (validated here).
        seed: seeds the class choice (when ``settings.classes`` is None), the initial noise vector, its
            directions and the jitter masks: same seed + same features → identical latents.

    Raises:
        VJError: invalid settings.
    """

    JITTER_PERIOD_S = 200 / REF_FPS  # the original re-draws its jitter mask every 200 frames
    PULSE_GAIN = 4.0  # noise step at a pulse's peak frame, in units of tempo_sensitivity (at pulse = 1)
    FOLLOW_GAIN = 2.0  # noise step per reference frame at onset strength 1, in units of tempo_sensitivity

    def __init__(self, settings: MappingSettings | None = None, seed: int = 0):
        self.settings = (settings or MappingSettings()).validate()
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed + 1)
        self.classes = pick_classes(self.settings, self.seed)
        s = self.settings
        self.noise = truncated_noise(self._rng, s.truncation)
        self._direction = np.where(self._rng.random(DIM_Z) < 0.5, -1.0, 1.0).astype(np.float32)
        self._last_update = np.zeros(DIM_Z, np.float32)
        self._jitter_mask = self._new_jitter_mask()
        self._jitter_age_s = 0.0
        self._weights = np.zeros(12, np.float32)  # per pitch class, before smoothing
        self._smoothed = np.zeros(12, np.float32)
        self._power = np.zeros(12, np.float64)  # running chroma power for the pitch ranking
        self._rise_peak = 1e-3
        self._prev_level = 0.0
        self._beat_count = None
        self._pulse = BeatPulse(self.settings.pulse_lead_s)
        self._pulse_value = 0.0  # the pulse envelope now (0..~1.4)
        self._period_s = 0.0  # beat period [s], 0 while the tempo is unknown
        # Offline (lookahead) overrides, filled by map_offline.
        self._fixed_order: np.ndarray | None = None
        # Preset crossfade: class vector = (1 - mix) * v(_fade_source) + mix * v(classes)
        self._fade_source: list[int] = []
        self._fade_mix = 1.0

    # -- live controls --------------------------------------------------------------------------------------
    def set_classes(self, classes: list[int]) -> None:
        """Change the palette (live); weights carry over pitch by pitch, so the change is smooth."""
        classes = [int(c) for c in classes][:12]
        if not classes or any(not 0 <= c < NUM_CLASSES for c in classes):
            raise VJError("class indices must be within 0..999")
        self.classes = classes
        self.settings.num_classes = len(classes)

    def set_palette(self, source: list[int], target: list[int], mix: float) -> None:
        """Follow a palette crossfade (a preset switch): the class vector blends
        ``(1 - mix) * v(source) + mix * v(target)``, each built from the same chroma weights.

        Args:
            source: ImageNet indices fading out (empty = no fade).
            target: ImageNet indices fading in (becomes :attr:`classes`).
            mix: 0..1 progress of the fade.

        Raises:
            VJError: an index outside 0..999.
        """
        if list(target) and list(target) != list(self.classes):
            self.set_classes(list(target))
        source = [int(c) for c in source][:12]
        if any(not 0 <= c < NUM_CLASSES for c in source):
            raise VJError("class indices must be within 0..999")
        mix = min(max(float(mix), 0.0), 1.0) if math.isfinite(mix) else 1.0
        fading = bool(source) and source != list(self.classes) and mix < 1.0
        self._fade_source = source if fading else []
        self._fade_mix = mix if fading else 1.0

    def apply_params(self, values: dict[str, float]) -> None:
        """Take the registry's values of the live parameters that drive the mapping (those with a
        :attr:`vj.parameters.Param.mapping` field); others and unknown names are ignored.

        Each value is converted to its field's unit (``× fps`` for :attr:`~vj.parameters.Param.per_second`
        ones: seconds → frames) and clamped to :data:`RANGES`.
        """
        s = self.settings
        for p in _DRIVING:
            v = values.get(p.name)
            if v is None or not math.isfinite(v):
                continue
            v = float(v) * s.fps if p.per_second else float(v)
            lo, hi = RANGES[p.mapping]
            setattr(s, p.mapping, min(max(v, lo), hi))

    # -- internals -----------------------------------------------------------------------------------------
    def _new_jitter_mask(self) -> np.ndarray:
        damp = self._rng.random(DIM_Z) < 0.5
        return np.where(damp, 1.0 - self.settings.jitter, 1.0).astype(np.float32)

    def _pitch_order(self, n: int) -> np.ndarray:
        """Pitch classes tied to the first ``n`` classes of a palette."""
        ranking = self._fixed_order if self._fixed_order is not None else np.argsort(-self._power, kind="stable")
        top = ranking[:n]
        return top if self.settings.sort_classes_by_power else np.sort(top)

    def _class_gate(self) -> float:
        """Rate multiplier of the class follower: ``(1 − q) + 0.4 q × pulse / its mean`` (q = ``class_beat``), so
        the class mix moves on the beats and 0.6 q slower on average; ``1 − 0.6 q`` while the tempo is unknown."""
        q = self.settings.class_beat
        if q <= 0:
            return 1.0
        if self._period_s <= 0:
            return 1.0 - 0.6 * q
        mean = decay_s(self._period_s) / self._period_s  # ∫ envelope over one beat / period
        return (1.0 - q) + 0.4 * q * self._pulse_value / mean

    def _class_targets(self, chroma: np.ndarray, dt_s: float) -> np.ndarray:
        """Per-pitch weights after the pitch-sensitivity follower (before smoothing), float32 [12]."""
        s = self.settings
        c = np.nan_to_num(np.asarray(chroma, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        peak = float(c.max()) if c.size else 0.0
        if peak <= 1e-6:  # silence: hold the palette as it is (no slow fade into an arbitrary mix)
            return self._weights
        target = (c / peak) ** 2
        rate_hz = 0.5 + (s.pitch_sensitivity - 200.0) / 95.0 * 11.5  # 0.5 .. 12 per second
        a = 1.0 - math.exp(-rate_hz * dt_s * self._class_gate())
        self._weights += (target - self._weights) * a
        return self._weights

    def _smooth(self, weights: np.ndarray) -> np.ndarray:
        n = self.settings.smooth_factor
        a = 1.0 - (1.0 - 2.0 / (n + 1.0)) ** self._class_gate()  # EMA, mean delay of an n-frame average
        self._smoothed += (weights - self._smoothed) * a
        return self._smoothed

    def _class_vector(self, pitch_weights: np.ndarray) -> np.ndarray:
        cv = self._palette_vector(pitch_weights, self.classes)
        if self._fade_source:
            cv = (1.0 - self._fade_mix) * self._palette_vector(pitch_weights, self._fade_source) + self._fade_mix * cv
        return cv

    def _palette_vector(self, pitch_weights: np.ndarray, classes: list[int]) -> np.ndarray:
        s = self.settings
        order = self._pitch_order(len(classes))
        w = pitch_weights[order]
        cv = np.zeros(NUM_CLASSES, np.float32)
        peak = float(w.max()) if w.size else 0.0
        if peak > 1e-6:
            w = w / peak
        else:  # silence: hold an even mix so the picture stays an image, not noise
            w = np.full(len(order), 1.0 / max(len(order), 1), np.float32)
        np.add.at(cv, np.asarray(classes[: len(order)]), w.astype(np.float32) * s.depth)
        return cv

    def _noise_step(self, level: float, rise: float, beat: bool, dt_s: float, jolt_s: float = 0.0,
                    follow: float = 0.0) -> None:
        s = self.settings
        frames = dt_s * REF_FPS  # the original's motion is per frame at ~30 fps
        self._jitter_age_s += dt_s
        if self._jitter_age_s >= self.JITTER_PERIOD_S:
            self._jitter_age_s = 0.0
            self._jitter_mask = self._new_jitter_mask()
        update = s.tempo_sensitivity * s.speed * (level + rise) * self._direction * self._jitter_mask * frames
        update = update * (1.0 - s.calm)
        if beat and s.beat_kick > 0:
            update = update + s.beat_kick * s.tempo_sensitivity * self._direction * 0.5
        blend = 0.75 ** frames  # 1:3 blend with the previous update, per reference frame
        update = (1.0 - blend) * update + blend * self._last_update
        self._last_update = update.astype(np.float32)
        # the pulse bypasses the 1:3 blend (which would smear it over ~4 frames): it lands where it is scheduled
        jolt = self.PULSE_GAIN * s.pulse * s.tempo_sensitivity * s.speed * jolt_s * REF_FPS
        # so does the onset follower: this frame's hits, at once (a steady follower would lag them)
        jolt += self.FOLLOW_GAIN * s.onset_follow * s.tempo_sensitivity * s.speed * follow * frames
        self.noise = (self.noise + self._last_update + jolt * self._direction * self._jitter_mask).astype(np.float32)
        bound = max(2.0 * s.truncation - s.tempo_sensitivity, 0.05)
        self._direction[self.noise >= bound] = -1.0
        self._direction[self.noise <= -bound] = 1.0
        np.clip(self.noise, -2.0 * s.truncation, 2.0 * s.truncation, out=self.noise)

    def _level_and_rise(self, f: Features, dt_s: float) -> tuple[float, float]:
        # Features.level is already normalised 0..1 against its recent range by the analysis (with a minimum
        # span, so hiss is not stretched to full scale); the original normalised over the whole song instead.
        level = min(max(float(f.level), 0.0), 1.0) if math.isfinite(f.level) else 0.0
        rise = max(0.0, level - self._prev_level)
        self._prev_level = level
        self._rise_peak = max(self._rise_peak * math.exp(-dt_s / 8.0), rise, 1e-3)
        return level, rise / self._rise_peak

    # -- public --------------------------------------------------------------------------------------------
    def step(self, f: Features, dt_s: float | None = None) -> Latents:
        """Advance one video frame.

        Args:
            f: the newest features (the hop at or before this frame's time).
            dt_s: time since the previous step [s]; default 1 / ``settings.fps``.

        Returns:
            :class:`Latents` for this frame (arrays are fresh copies).
        """
        dt = 1.0 / self.settings.fps if dt_s is None or not dt_s > 0 else min(float(dt_s), 1.0)
        chroma = np.asarray(f.chroma, np.float32)
        if np.isfinite(chroma).all():
            self._power = self._power * math.exp(-dt / 30.0) + chroma
        beat = self._beat_count is not None and f.beat_count > self._beat_count
        self._beat_count = f.beat_count
        level, rise = self._level_and_rise(f, dt)
        jolt = self._advance_pulse(f, dt)
        weights = self._class_targets(chroma, dt)
        cv = self._class_vector(self._smooth(weights))
        self._noise_step(level, rise, beat, dt, jolt, hit_strength(f))
        return Latents(self.noise.copy(), cv, self._truncation(), f.hop_index, f.capture_time_s)

    def _advance_pulse(self, f: Features, dt_s: float) -> float:
        """Schedule and evaluate the beat pulse for this step; returns its displacement [s of envelope]."""
        self._pulse.lead_s = self.settings.pulse_lead_s
        now = self._pulse.observe(f, dt_s)
        if f.bpm > 0 and math.isfinite(f.bpm):
            self._period_s = 60.0 / f.bpm
        jolt, self._pulse_value = self._pulse.advance(now)
        return jolt

    def _truncation(self) -> float:
        """Truncation with the beat swing: up on the pulse, or down when the setting leaves no room above."""
        s = self.settings
        swing = 0.15 * s.truncation_pulse * min(self._pulse_value, 1.4)
        t = s.truncation + (swing if s.truncation <= 0.8 else -swing)
        return float(min(max(t, RANGES["truncation"][0]), RANGES["truncation"][1]))


def _centred_average(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving average along axis 0 over ``n`` frames (edges use the frames available)."""
    if n <= 1:
        return x
    half_lo, half_hi = (n - 1) // 2, n // 2
    c = np.cumsum(np.vstack([np.zeros((1, x.shape[1]), x.dtype), x]), axis=0)
    idx = np.arange(x.shape[0])
    lo = np.clip(idx - half_lo, 0, x.shape[0])
    hi = np.clip(idx + half_hi + 1, 0, x.shape[0])
    return (c[hi] - c[lo]) / (hi - lo)[:, None]


def map_offline(
    frames: list[Features], settings: MappingSettings, seed: int = 0, lookahead: bool = False
) -> LatentTrack:
    """Map one :class:`Features` per video frame to a :class:`LatentTrack`.

    Args:
        frames: the newest features at each video frame's time (frame k at k / ``settings.fps``).
        settings: the controls.
        seed: see :class:`Mapper`.
        lookahead: smooth with future audio as the original did (global loudness normalisation, centred
            class smoothing, whole-song pitch ranking); False = exactly what live would produce.

    Returns:
        The latent trajectory, ``len(frames)`` rows.
    """
    mapper = Mapper(settings, seed)
    s = mapper.settings
    dt = 1.0 / s.fps
    n = len(frames)
    noise = np.zeros((n, DIM_Z), np.float32)
    cvs = np.zeros((n, NUM_CLASSES), np.float32)
    truncs = np.zeros(n, np.float32)
    if not lookahead:
        for i, f in enumerate(frames):
            lat = mapper.step(f, dt)
            noise[i], cvs[i], truncs[i] = lat.noise, lat.class_vector, lat.truncation
    else:
        levels = np.array([f.level if math.isfinite(f.level) else 0.0 for f in frames], np.float64)
        span = levels.max() - levels.min() if n else 0.0
        levels = (levels - levels.min()) / span if span > 1e-6 else np.zeros(n)
        rises = np.maximum(np.diff(levels, prepend=levels[:1]), 0.0)
        rises = rises / rises.max() if n and rises.max() > 1e-6 else rises
        chroma = np.stack([np.nan_to_num(np.asarray(f.chroma, np.float32)) for f in frames]) if n else np.zeros((0, 12))
        mapper._fixed_order = np.argsort(-chroma.sum(axis=0), kind="stable")
        mapper._pulse.set_events(*offline_events(frames, s.fps))  # the actual beats and kicks, not predicted ones
        weights = np.zeros((n, 12), np.float32)
        prev_beats = None
        for i, f in enumerate(frames):
            if f.bpm > 0:
                mapper._period_s = 60.0 / f.bpm
            jolt, mapper._pulse_value = mapper._pulse.advance(i * dt)
            weights[i] = mapper._class_targets(chroma[i], dt)
            beat = prev_beats is not None and f.beat_count > prev_beats
            prev_beats = f.beat_count
            mapper._noise_step(float(levels[i]), float(rises[i]), beat, dt, jolt, hit_strength(f))
            noise[i], truncs[i] = mapper.noise, mapper._truncation()
        smoothed = _centred_average(weights, int(round(s.smooth_factor)))
        for i in range(n):
            cvs[i] = mapper._class_vector(smoothed[i])
    return LatentTrack(noise, cvs, truncs, s.fps, mapper.classes, s.to_json())
