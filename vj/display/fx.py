"""Effect timing in plain Python (no GL): envelopes, the flash limiter, frame interpolation, auto-levels.

The main thread calls :meth:`FxState.update` once per display frame with the newest features and the registry's
values; it returns the uniforms the post shader needs. Keeping the timing here makes it testable without a GPU.

Photosensitivity: every full-frame flash (the strobe *and* the onset flash) must pass one :class:`FlashLimiter`,
which allows at most 3 flash starts per second whatever the parameters say (after the WCAG 2.3.1 three-flashes
threshold). The registry clamps ``strobe.rate_hz`` to 3 Hz as well; the limiter is what guarantees it.
"""

from __future__ import annotations

import math

import numpy as np

from vj.motion import beat_distance_s, hit_strength

#: The most full-frame flashes per second, whatever the parameters ask for.
MAX_FLASH_HZ = 3.0


class FlashLimiter:
    """Allows a flash to start only if the previous one started at least ``1 / max_hz`` seconds ago.

    Args:
        max_hz: ceiling on flash starts per second (> 0; values above :data:`MAX_FLASH_HZ` are lowered to it).
    """

    def __init__(self, max_hz: float = MAX_FLASH_HZ):
        self.max_hz = min(float(max_hz), MAX_FLASH_HZ)
        self.min_gap_s = 1.0 / self.max_hz
        self._last_s = -math.inf
        self.allowed = 0
        self.denied = 0

    def allow(self, now_s: float) -> bool:
        """Ask to start a flash at ``now_s`` [s]; returns True (and records it) if allowed."""
        if now_s - self._last_s >= self.min_gap_s - 1e-9:
            self._last_s = now_s
            self.allowed += 1
            return True
        self.denied += 1
        return False


class Strobe:
    """A strobe at ``rate_hz`` (capped by the shared :class:`FlashLimiter`), lit for ``on_s`` per flash.

    Args:
        limiter: the flash limiter shared with every other full-frame flash.
        on_s: how long each flash stays lit [s].
    """

    def __init__(self, limiter: FlashLimiter, on_s: float = 1.0 / 30.0):
        self.limiter = limiter
        self.on_s = float(on_s)
        self._next_s = -math.inf
        self._lit_until_s = -math.inf

    def update(self, now_s: float, enabled: bool, rate_hz: float) -> bool:
        """Returns True while a flash is lit at ``now_s`` [s]."""
        if not enabled:
            self._next_s = -math.inf
            return now_s < self._lit_until_s
        rate = min(max(float(rate_hz), 0.1), MAX_FLASH_HZ)
        if now_s >= self._next_s and self.limiter.allow(now_s):
            self._lit_until_s = now_s + self.on_s
            self._next_s = now_s + 1.0 / rate
        return now_s < self._lit_until_s


class InterpolationClock:
    """Where the display is between the last two generated frames.

    The display shows ``mix(previous, newest, t)`` with ``t`` the elapsed fraction of the measured generator
    frame interval since the newest frame arrived, taken at the end of the display frame being drawn (``ahead_s``
    in :meth:`t`, the display's frame interval): motion stays smooth at the display rate whatever the generator
    rate, a new frame is already part of the first picture drawn after it arrives, and a generator at or above
    the display rate is shown unblended (no display frame of delay). The fade costs ``max(0, interval/2 −
    ahead_s)`` of latency on average. ``freeze`` holds ``t``.

    Args:
        initial_interval_s: interval assumed before two frames have arrived [s].
        smoothing: weight of the newest interval in the running estimate (0..1).
    """

    def __init__(self, initial_interval_s: float = 0.1, smoothing: float = 0.3):
        self.interval_s = float(initial_interval_s)
        self.smoothing = float(smoothing)
        self._arrival_s: float | None = None
        self._t = 1.0

    def frame_arrived(self, now_s: float) -> None:
        """A new frame became the 'newest' at ``now_s`` [s]."""
        if self._arrival_s is not None:
            dt = min(max(now_s - self._arrival_s, 1e-3), 5.0)
            self.interval_s += (dt - self.interval_s) * self.smoothing
        self._arrival_s = now_s
        self._t = 0.0

    def t(self, now_s: float, freeze: bool = False, ahead_s: float = 0.0) -> float:
        """Blend weight of the newest frame, 0..1, for a picture drawn at ``now_s`` [s] that stays on screen for
        ``ahead_s`` [s] (the display's frame interval; 0: evaluated at ``now_s``); held while ``freeze``."""
        if self._arrival_s is None:
            return 1.0
        if not freeze:
            elapsed = now_s + max(float(ahead_s), 0.0) - self._arrival_s
            self._t = min(max(elapsed / max(self.interval_s, 1e-3), 0.0), 1.0)
        return self._t


def auto_levels(image: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel black and white points of an image, for the auto-levels effect.

    Args:
        image: uint8 [shape=(H, W, 3 or 4)].
        lo_pct, hi_pct: percentiles taken as black and white (0..100).

    Returns:
        (lo, hi): float32 [shape=(3,)] each, 0..1, with ``hi - lo >= 0.05``.
    """
    rgb = image[::2, ::2, :3].reshape(-1, 3).astype(np.float32) / 255.0
    lo = np.percentile(rgb, lo_pct, axis=0).astype(np.float32)
    hi = np.percentile(rgb, hi_pct, axis=0).astype(np.float32)
    hi = np.maximum(hi, lo + 0.05)
    return lo, hi


def hit_and_beat(f) -> tuple[float | None, float | None]:
    """``(hit, beat_distance_s)`` of the newest features for :meth:`FxState.update`; ``(None, None)`` before the
    first hop (``f`` None)."""
    return (None, None) if f is None else (hit_strength(f), beat_distance_s(f))


class FxState:
    """Envelopes of the audio-reactive effects, advanced once per display frame.

    Args:
        limiter: the shared flash limiter (a new one if None).
    """

    FLASH_DECAY_S = 0.12  #: time constant of the onset flash
    FLASH_HIT = 0.5  #: hit strength (:func:`vj.motion.hit_strength`) that starts a flash ...
    FLASH_REARM = 0.25  #: ... once it has fallen below this since the previous one (one flash per hit)
    FLASH_BEAT_WINDOW_S = 0.07  #: with a beat clock, only hits this close to one of its beats flash
    ZOOM_DECAY_S = 0.18  #: time constant of the beat zoom punch
    ZOOM_MAX = 0.15  #: zoom at amount 1 on a beat (fraction of the image)
    HUE_TURNS_PER_S = 0.25  #: hue rotation speed at amount 1 [turns/s]

    def __init__(self, limiter: FlashLimiter | None = None):
        self.limiter = limiter or FlashLimiter()
        self.strobe = Strobe(self.limiter)
        self.flash_env = 0.0
        self.zoom_env = 0.0
        self.hue_phase = 0.0  # turns
        self.flashes = 0
        self._armed = True

    def _flash_due(self, onsets: int, hit: float | None, beat_distance_s: float | None) -> bool:
        if hit is None:  # no hit strength given: every reported onset asks for a flash
            return onsets > 0
        hit = float(hit) if math.isfinite(hit) else 0.0
        if hit < self.FLASH_REARM:
            self._armed = True
        if not self._armed or hit < self.FLASH_HIT:
            return False
        self._armed = False
        return beat_distance_s is None or beat_distance_s <= self.FLASH_BEAT_WINDOW_S

    def update(self, now_s: float, dt_s: float, onsets: int, beats: int, level: float, p: dict,
               hit: float | None = None, beat_distance_s: float | None = None) -> dict:
        """Advance the envelopes and return the post-effect uniforms.

        Args:
            now_s: display time [s].
            dt_s: time since the previous update [s].
            onsets, beats: events since the previous update (from :class:`vj.engine.slots.EventLatch`).
            level: input level 0..1 (drives the RGB shift).
            p: the registry's values (``registry.snapshot()`` or a dict with the ``fx.*``, ``master``,
                ``blackout``, ``strobe`` names).
            hit: this frame's hit strength 0..1 (:func:`vj.motion.hit_strength`); given, the onset flash starts
                when it rises past :attr:`FLASH_HIT` (a kick or a snare as it happens, not the onset detector's
                report 35–80 ms later, and never a hi-hat alone); None = on every reported onset.
            beat_distance_s: time to the beat clock's nearest beat [s] (:func:`vj.motion.beat_distance_s`); given,
                only hits within :attr:`FLASH_BEAT_WINDOW_S` of a beat flash (the kick, not the off-beat
                hits); None = no beat clock yet, any hit.

        Returns:
            dict of uniform name → value for ``post.frag``.
        """
        dt = min(max(dt_s, 0.0), 0.5)
        self.flash_env *= math.exp(-dt / self.FLASH_DECAY_S)
        self.zoom_env *= math.exp(-dt / self.ZOOM_DECAY_S)
        if self._flash_due(onsets, hit, beat_distance_s) and p.get("fx.flash.amount", 0.0) > 0 \
                and self.limiter.allow(now_s):
            self.flash_env = 1.0
            self.flashes += 1
        if beats > 0:
            self.zoom_env = 1.0
        self.hue_phase = (self.hue_phase + p.get("fx.hue.amount", 0.0) * self.HUE_TURNS_PER_S * dt) % 1.0
        strobe_lit = self.strobe.update(now_s, p.get("strobe", 0.0) >= 0.5, p.get("strobe.rate_hz", 2.0))
        level = min(max(float(level) if math.isfinite(level) else 0.0, 0.0), 1.0)
        return {
            "u_zoom": 1.0 + p.get("fx.zoom.amount", 0.0) * self.ZOOM_MAX * self.zoom_env,
            "u_flash": 0.8 * p.get("fx.flash.amount", 0.0) * self.flash_env,
            "u_hue": 2.0 * math.pi * ((self.hue_phase + p.get("fx.hue.shift", 0.0)) % 1.0),
            "u_feedback": p.get("fx.feedback.amount", 0.0),
            "u_kaleido": p.get("fx.kaleido.amount", 0.0),
            "u_segments": float(p.get("fx.kaleido.segments", 6.0)),
            "u_rgbshift": p.get("fx.rgbshift.amount", 0.0) * (0.002 + 0.02 * level),
            "u_contrast": 2.0 ** ((p.get("fx.contrast.amount", 0.5) - 0.5) * 3.0),
            "u_brightness": p.get("fx.brightness.amount", 0.5) - 0.5,
            "u_levels": p.get("fx.levels.amount", 0.0),
            "u_master": p.get("master", 1.0),
            "u_blackout": 1.0 if p.get("blackout", 0.0) >= 0.5 else 0.0,
            "u_strobe": 1.0 if strobe_lit else 0.0,
        }
