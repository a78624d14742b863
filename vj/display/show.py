"""The frame loop: the main thread's :meth:`Show.run`, one :meth:`Show.frame` per display frame, never waiting for
the generator.

Each pass: dispatch window events → poll the control surfaces (tempo follow, preset crossfades, quantised
changes) → apply queued parameter changes (once per frame) → take the newest generated frame if there is one
(unless frozen) → advance the effect envelopes from the newest features → render the pipeline → present → overlay
→ swap → note the swap instant (latency of a newly shown frame, display rate) → screenshot, recording, stats →
sleep only for ``--fps-cap``.
"""

from __future__ import annotations

import logging
import math
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vj.clock import now_s
from vj.display.fx import FxState, hit_and_beat, InterpolationClock, auto_levels
from vj.engine.slots import EventLatch

log = logging.getLogger("vj")


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an RGB image as PNG (no dependency beyond zlib).

    Args:
        path: output file.
        rgb: uint8 [shape=(H, W, 3)], row 0 = top.
    """
    h, w, c = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    Path(path).write_bytes(png)


@dataclass
class ShowOptions:
    """Options of the main loop.

    Attributes:
        fit: ``"letterbox"`` or ``"fill"`` (how the output sits in a window of another aspect ratio).
        fps_cap: most display frames per second (0 = only vsync) [Hz].
        duration_s: stop after this long (None = until closed) [s].
        screenshot: PNG path; with ``screenshot_every_s`` a pattern with ``{n}`` (0, 1, ...), else saved at exit.
        screenshot_every_s: interval between screenshots [s].
        timed_sets: ``(t_s, name, value)`` changes applied at show time ``t_s`` (tests, scripted demos).
        record_fps: frames per second written by ``--record`` [Hz].
        model: label of the generator (overlay).
        input: label of the input (overlay).
    """

    fit: str = "letterbox"
    fps_cap: float = 0.0
    duration_s: float | None = None
    screenshot: str | None = None
    screenshot_every_s: float | None = None
    timed_sets: list = field(default_factory=list)
    record_fps: float = 30.0
    model: str = ""
    input: str = ""


class Show:
    """Everything the main loop touches; :meth:`run` is the loop.

    Args:
        surface: :class:`vj.display.window.LiveWindow` or :class:`vj.display.window.HeadlessSurface`.
        pipeline: :class:`vj.display.pipeline.Pipeline` on ``surface.ctx``.
        registry: the parameter registry.
        features: latest-wins slot of :class:`Features`.
        frames: the :class:`vj.engine.slots.FrameSlot`.
        stats: :class:`vj.engine.stats.StatsCollector`.
        options: :class:`ShowOptions`.
        source: the audio source (``state``, ``last_error``, ``overflows``), or None.
        inference: the :class:`vj.engine.inference.InferenceThread` (for error counts), or None.
        recorder: a :class:`vj.engine.record.Recorder`, or None.
        class_names: list of the 1000 ImageNet names (overlay), or None.
        controls: the :class:`vj.control.surfaces.Surfaces` (polled once per frame, before the registry applies
            its queue; their tempo clock drives the beat-synced effects), or None.
    """

    def __init__(self, surface, pipeline, registry, features, frames, stats, options: ShowOptions, source=None,
                 inference=None, recorder=None, class_names=None, controls=None):
        self.surface = surface
        self.pipeline = pipeline
        self.registry = registry
        self.features = features
        self.frames = frames
        self.stats = stats
        self.opt = options
        self.source = source
        self.inference = inference
        self.recorder = recorder
        self.ndi = None  #: a vj.engine.ndi.NdiOutput fed once per frame, or None
        self.class_names = class_names
        self.controls = controls
        self.fx = FxState()
        self.clock = InterpolationClock()
        self.onsets = EventLatch()
        self.beats = EventLatch()
        #: cumulative beat count of the show's tempo clock (tap tempo, MIDI clock, or following the analysis —
        #: vj.control.tempo.TempoClock.beat_count); None = count the analysis beats directly
        self.beat_source = controls.clock.beat_count if controls is not None else None
        self.stop_requested = False  # set by SIGINT
        self.last_frame_id = 0
        self._last_latency_hop = -1  # newest audio hop whose latency was measured
        self.frames_shown = 0
        self.swaps = 0
        self.screenshots: list[str] = []
        self.frame_errors = 0  #: display frames that raised and were skipped
        self._pending_shown: tuple[float, float] | None = None  # (capture time, publish time) of a new frame
        self._classes: tuple[int, ...] = ()
        self._pending_timed = sorted(options.timed_sets)

    # -- helpers -----------------------------------------------------------------------------------------------
    def _source_state(self) -> str:
        st = getattr(self.source, "state", None)
        return getattr(st, "value", str(st or ""))

    def _grab(self) -> np.ndarray:
        """What the output shows: the window's framebuffer (overlay included) or, headless, the final output."""
        fbo = self.surface.screen_fbo()
        if fbo is None:
            return self.pipeline.read_final()
        w, h = self.surface.framebuffer_size()
        data = fbo.read(viewport=(0, 0, w, h), components=3, alignment=1)
        # moderngl selects a colour attachment as read buffer, which the window's default framebuffer rejects
        # (GL_INVALID_OPERATION) before reading its back buffer correctly; clear the flag so pyglet, which checks
        # glGetError after its own calls, does not take it for its own error.
        _ = self.surface.ctx.error
        return np.frombuffer(data, np.uint8).reshape(h, w, 3)[::-1]

    def _screenshot(self, n: int | None, image: np.ndarray | None = None) -> None:
        path = self.opt.screenshot if n is None else self.opt.screenshot.replace("{n}", str(n))
        try:
            write_png(path, self._grab() if image is None else image)
            self.screenshots.append(path)
        except OSError as exc:
            log.warning("screenshot %s failed: %s", path, exc)

    def _overlay_info(self, f, now: float) -> dict:
        p = self.registry.snapshot()
        names = self.class_names
        classes = [names[c] if names and 0 <= c < len(names) else str(c) for c in self._classes]
        err = getattr(self.source, "last_error", None)
        return {
            "display_fps": self.stats.display.rate(now),
            "gan_fps": self.stats.gan_rate(now),
            "model": self.opt.model,
            "bpm": (f.bpm if f is not None and f.bpm > 0 else p.get("tempo.bpm")),
            "latency_ms_p50": self.stats.latency_ms(50),
            "latency_ms_p95": self.stats.latency_ms(95),
            "dropped_frames": self.frames.overwritten,
            "loudness_db": f.loudness_db if f is not None else -120.0,
            "input": self.opt.input,
            "source_state": self._source_state(),
            "source_error": err,
            "classes": classes,
            "master": p.get("master"),
            "blackout": p.get("blackout", 0) >= 0.5,
            "freeze": p.get("freeze", 0) >= 0.5,
            "strobe": p.get("strobe", 0) >= 0.5,
            "recording": self.recorder is not None,
            "message": getattr(self.surface, "message", ""),
            "features": f,  # bar, phrase and section-event line (vj.display.overlay.bar_line)
        }

    # -- the loop ----------------------------------------------------------------------------------------------
    #: consecutive failed frames after which the loop gives up (a broken GL context, not a passing hiccup)
    MAX_FAILED_FRAMES = 300

    def run(self) -> None:
        """Run until the window closes, Escape, SIGINT (:attr:`stop_requested`) or ``duration_s``.

        A frame that raises is skipped, counted (:attr:`frame_errors`) and logged once; the show goes on. Only
        :attr:`MAX_FAILED_FRAMES` failures in a row end the loop (by re-raising the last error).
        """
        opt = self.opt
        t0 = self.stats.t0_s
        last = now_s()
        self._next_shot = t0 + opt.screenshot_every_s if opt.screenshot and opt.screenshot_every_s else math.inf
        self._shot_n = 0
        self._next_overlay = 0.0
        self._rec_gap = 1.0 / opt.record_fps if opt.record_fps > 0 else math.inf
        self._next_rec = t0
        self._rec_pending_t: float | None = None
        in_a_row = 0
        while not (self.stop_requested or self.surface.should_close):
            now = now_s()
            if opt.duration_s is not None and now - t0 >= opt.duration_s:
                break
            try:
                self.frame(now, now - last)
                in_a_row = 0
            except Exception as exc:  # noqa: BLE001 — the show never stops for one bad frame
                self.frame_errors += 1
                in_a_row += 1
                if self.frame_errors == 1:
                    log.warning("a display frame failed (skipped, show goes on): %s", exc)
                if in_a_row >= self.MAX_FAILED_FRAMES:
                    raise
                time.sleep(0.01)
            last = now
            if opt.fps_cap > 0:
                wait = 1.0 / opt.fps_cap - (now_s() - now)
                if wait > 0:
                    time.sleep(wait)
        if opt.screenshot and not opt.screenshot_every_s:  # draw the last frame again into the back buffer
            fbo = self.surface.screen_fbo()
            if fbo is not None:
                self.pipeline.present(fbo, self.surface.framebuffer_size(), opt.fit)
                overlay = getattr(self.surface, "overlay", None)
                if overlay is not None and overlay.visible:
                    overlay.draw()
            self._screenshot(None)

    def frame(self, now: float, dt: float) -> None:
        """One pass of the loop at ``now`` [s] (vj clock), ``dt`` [s] after the previous one.

        Raises:
            whatever a GL call, the overlay or a control surface raised (:meth:`run` counts it and goes on).
        """
        opt = self.opt
        t0 = self.stats.t0_s
        overlay = getattr(self.surface, "overlay", None)
        self.surface.poll(now)
        if self.controls is not None:
            self.controls.poll(now, self.features)
        while self._pending_timed and now - t0 >= self._pending_timed[0][0]:
            _, name, value = self._pending_timed.pop(0)
            self.registry.set(name, value)
        self.registry.apply_pending()
        p = self.registry.snapshot()
        freeze = p.get("freeze", 0.0) >= 0.5

        new_frame = None
        if not freeze or self.last_frame_id == 0:
            new_frame = self.frames.take(self.last_frame_id)
            if new_frame is not None:
                levels = auto_levels(new_frame.image) if p.get("fx.levels.amount", 0.0) > 0 else None
                if self.last_frame_id == 0:  # the very first frame: nothing to interpolate from
                    self.pipeline.upload(new_frame.image)
                self.pipeline.upload(new_frame.image, levels)
                self.clock.frame_arrived(now)
                self.last_frame_id = new_frame.frame_id
                self._classes = new_frame.classes
                # latency counts only the first frame reflecting a newer hop (not re-used old audio)
                fresh = new_frame.hop_index > self._last_latency_hop
                if fresh:
                    self._last_latency_hop = new_frame.hop_index
                # counted at the next swap (even if this pass fails after the upload)
                self._pending_shown = (new_frame.capture_time_s if fresh else 0.0, new_frame.t_done_s)

        _, f = self.features.get()
        onsets = self.onsets.update(f.onset_count) if f is not None else 0
        if self.beat_source is not None:
            beats = min(self.beats.update(self.beat_source()), 1)  # a resync jump is one beat, not several
        else:
            beats = self.beats.update(f.beat_count) if f is not None else 0
        level = f.level if f is not None else 0.0
        fx = self.fx.update(now, dt, onsets, beats, level, p, *hit_and_beat(f))
        self.pipeline.render(self.clock.t(now, freeze, self.stats.swap_interval_s), p.get("fx.sharpen.amount", 0.0), fx)
        fbo = self.surface.screen_fbo()
        if fbo is not None:
            self.pipeline.present(fbo, self.surface.framebuffer_size(), opt.fit)
            if overlay is not None and overlay.visible:
                if now >= self._next_overlay:
                    overlay.update(self._overlay_info(f, now))
                    self._next_overlay = now + 0.25
                _ = self.surface.ctx.error  # pyglet checks glGetError after its calls: start it clean
                overlay.draw()
        if self.recorder is not None and self._rec_pending_t is not None:
            img = self.pipeline.finish_readback()
            if img is not None:
                self.recorder.push_video(img, self._rec_pending_t - t0)
            self._rec_pending_t = None
        recording = self.recorder is not None and now >= self._next_rec
        if recording:
            self.pipeline.start_readback()
            self._next_rec = max(self._next_rec + self._rec_gap, now - self._rec_gap)
        if self.ndi is not None:
            self.ndi.frame()  # its own asynchronous read-back of the final output (NDI's pixel layout)
        shot = self._grab() if now >= self._next_shot else None  # the back buffer, before the swap
        self.surface.flip()
        swap = now_s()
        if recording:  # stamped when it became visible (as latency is measured), not when the pass began
            self._rec_pending_t = swap
        self.swaps += 1
        self.stats.swap(swap)
        self.stats.generated(swap, self.frames.published)
        if self._pending_shown is not None:
            self.frames_shown += 1
            self.stats.frame_shown(swap, *self._pending_shown)
            self._pending_shown = None
        if shot is not None:
            self._screenshot(self._shot_n, shot)
            self._shot_n += 1
            self._next_shot += opt.screenshot_every_s
        if self.stats.due(swap):
            self.emit_stats(swap)

    def emit_stats(self, now: float) -> dict:
        """Write this second's stats line (see :mod:`vj.engine.stats`)."""
        extra = {
            "dropped_frames": self.frames.overwritten,
            "audio_overflows": int(getattr(self.source, "overflows", 0) or 0),
            "source_state": self._source_state(),
        }
        if self.recorder is not None:
            extra["record_dropped"] = self.recorder.dropped_video
        if self.ndi is not None:
            extra.update(self.ndi.stats())
        if self.inference is not None and self.inference.errors:
            extra["generator_errors"] = self.inference.errors
        if self.frame_errors:
            extra["display_errors"] = self.frame_errors
        return self.stats.emit(now, **extra)
