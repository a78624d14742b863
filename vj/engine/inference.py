"""The inference thread: newest features + live parameters → latents (the mapping) → a frame in the frame slot.

It never waits for the display: it takes whatever features are newest (when no new hop came for
:attr:`InferenceThread.DRIFT_AFTER_S` — input lost, file ended, no audio yet — the last state with a slowly
wandering level, so the picture keeps drifting instead of freezing), steps the
:class:`vj.mapping.Mapper` by the real time elapsed, runs the generator and publishes into a
:class:`vj.engine.slots.FrameSlot`, then starts over (optionally capped at ``max_fps``).

The generator call is wrapped by a *frame function* ``fn(latents, out=None) -> uint8 [H, W, 4]`` so the way it runs
can be swapped: :class:`FrameFn` uses :func:`vj.engine.gpu.make_runner` (CUDA graphs / fused uint8 output) when
that module is there and works, else plain eager PyTorch. When the frame function is :attr:`FrameFn.pipelined`
(a runner on a GPU), the thread submits frame k+1 before it takes and publishes frame k, so generation overlaps
the copy-out and the texture upload; each published frame keeps the hop id, capture time and start time of its
own latents. On the CPU it generates and publishes one frame per step, as before.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Callable

import numpy as np

from vj import clock
from vj.engine.slots import FrameSlot, LatestSlot

log = logging.getLogger("vj")


class FrameFn:
    """The generator as ``fn(latents, out=None) -> uint8 [H, W, 4]``, one image per call, plus a pipelined form.

    Uses :func:`vj.engine.gpu.make_runner` (on CUDA its fallback ladder: CUDA graph → ... → CPU; on the CPU the
    prepared eager runner); the runner is created on the first call, i.e. on the inference thread, which must own
    all CUDA work of a captured graph. If the runner cannot be made, or fails three calls in a row, it falls back
    for good to plain eager PyTorch (one log line) — the show goes on.

    Pipelined form (used by :class:`InferenceThread` when :attr:`pipelined`): ``ticket = submit(lat)`` starts a
    frame and returns at once on a GPU; ``take(ticket, out)`` waits for it. Submitting frame k+1 before taking
    frame k lets the GPU generate while the host copies out and uploads the previous frame.

    Args:
        gen: ``gen(noise [N,128], class_vector [N,1000], truncation) -> [N,3,H,W]`` in [-1, 1], float32.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a torch device.
        use_runner: try the runner first.
        precision: ``"auto"``, ``"fp16"``, ``"bf16"`` or ``"fp32"`` (see :func:`vj.engine.gpu.choose_precision`).

    Attributes:
        kind: ``"runner"`` or ``"eager"`` once the first frame was made (``"pending"`` before).
    """

    def __init__(self, gen, device="cpu", use_runner: bool = True, precision: str = "auto"):
        self.gen = gen
        self.device = device
        self.use_runner = use_runner
        self.precision = precision
        self.kind = "pending"
        self._runner = None
        self._fails = 0

    @property
    def pipelined(self) -> bool:
        """True once a runner on a CUDA device is in use (on the CPU a submit computes the frame: no overlap)."""
        r = self._runner
        return r is not None and getattr(r.device, "type", "cpu") == "cuda"

    def _make_runner(self):
        from vj.engine.gpu import make_runner

        try:
            return make_runner(self.gen, batch_size=1, device=self.device, precision=self.precision)
        except Exception as exc:  # noqa: BLE001 — eager rather than refuse to play
            log.info("generator runner unavailable (%s); running eager", exc)
            return None

    def _eager(self, lat) -> np.ndarray:
        import torch

        from vj.engine.gpu import to_rgba_uint8

        param = next(iter(self.gen.parameters()), None)
        dev = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None else torch.float32
        with torch.inference_mode():
            noise = torch.from_numpy(np.ascontiguousarray(lat.noise, np.float32))[None].to(dev, dtype)
            cv = torch.from_numpy(np.ascontiguousarray(lat.class_vector, np.float32))[None].to(dev, dtype)
            return to_rgba_uint8(self.gen(noise, cv, float(lat.truncation))).cpu().numpy()[0]

    def _start(self) -> None:
        if self.kind == "pending":
            self._runner = self._make_runner() if self.use_runner else None
            self.kind = "runner" if self._runner is not None else "eager"

    def _failed(self, exc) -> None:
        self._fails += 1
        if self._fails < 3:
            raise exc
        log.warning("generator runner keeps failing (%s); switching to eager", exc)
        self.close()
        self.kind = "eager"

    def submit(self, lat):
        """Start the frame for ``lat``; returns a ticket for :meth:`take` (eager: the finished frame itself)."""
        self._start()
        if self._runner is not None:
            try:
                ticket = self._runner.submit(lat.noise[None], lat.class_vector[None], float(lat.truncation))
                self._fails = 0
                return ("runner", ticket)
            except Exception as exc:  # noqa: BLE001
                self._failed(exc)
        return ("frame", self._eager(lat))

    def take(self, ticket, out: np.ndarray | None = None) -> np.ndarray:
        """The frame of ``ticket`` (from :meth:`submit`), written into ``out`` (uint8 [H, W, 4]) if given.

        Raises:
            KeyError: a ticket already taken or never issued.
            RuntimeError: the runner it was submitted to has been closed.
        """
        what, value = ticket
        if what == "runner":
            if self._runner is None:
                raise RuntimeError("the runner this frame was submitted to is closed")
            res = self._runner.result(value, out=None if out is None else out[None])
            return res[0]
        if out is not None:
            out[...] = value
            return out
        return value

    def __call__(self, lat, out: np.ndarray | None = None) -> np.ndarray:
        """Generate one image for ``lat`` (:class:`vj.mapping.Latents`); fills ``out`` (uint8 [H, W, 4]) if given."""
        self._start()
        if self._runner is not None:
            try:
                res = self._runner.run(lat.noise[None], lat.class_vector[None], float(lat.truncation),
                                       out=None if out is None else out[None])
                self._fails = 0
                return res[0]
            except Exception as exc:  # noqa: BLE001
                self._failed(exc)
        img = self._eager(lat)
        if out is not None:
            out[...] = img
            return out
        return img

    def close(self) -> None:
        """Release the runner (call on the thread that used it)."""
        if self._runner is not None:
            try:
                self._runner.close()
            except Exception:  # noqa: BLE001
                pass
            self._runner = None


def make_frame_fn(gen, device="cpu", use_runner: bool = True, precision: str = "auto") -> FrameFn:
    """The frame function for ``gen`` (see :class:`FrameFn`)."""
    return FrameFn(gen, device, use_runner, precision)


class InferenceThread:
    """Generates frames continuously from the newest features and parameters.

    Args:
        frame_fn: ``fn(latents, out=None) -> uint8 [H, W, 4]`` RGBA (see :class:`FrameFn`); closed (if it has
            ``close``) on this thread when it ends.
        mapper: a :class:`vj.mapping.Mapper` (owned by this thread after :meth:`start`).
        features: slot of the newest :class:`vj.audio.features.Features` (may be empty at first).
        frames: the frame slot to publish into.
        registry: the :class:`vj.control.params.ParamRegistry` (read with ``snapshot()``; ``classes``), or None.
        max_fps: most frames per second to generate (0 = no cap) [Hz].
        latency_fn: ``fn() -> float | None``, the show's current sound-to-picture latency [s] (the median from
            a hop's capture to the swap that first shows its frame), or None while unmeasured. With
            ``gan.pulse_lead_auto`` on, the beat pulse's lead is that latency plus what the display's cross-fade
            adds, ``max(0, generator interval / 2 − display interval)`` (see
            :class:`vj.display.fx.InterpolationClock`), so the jolt is *seen* on the beat on whatever machine;
            :attr:`pulse_lead_s` says what it is.
        display_interval_fn: ``fn() -> float | None``, the display's frame interval [s] (None: unknown, taken as 0).
    """

    #: the most the automatic pulse lead may be [s] (the fader's range)
    MAX_LEAD_S = 0.3

    def __init__(self, frame_fn: Callable, mapper, features: LatestSlot, frames: FrameSlot, registry=None,
                 max_fps: float = 0.0, latency_fn: Callable[[], float | None] | None = None,
                 display_interval_fn: Callable[[], float | None] | None = None):
        self.frame_fn = frame_fn
        self.mapper = mapper
        self.features = features
        self.frames = frames
        self.registry = registry
        self.max_fps = float(max_fps)
        self.latency_fn = latency_fn
        self.display_interval_fn = display_interval_fn
        self.pulse_lead_s = math.nan  #: the beat pulse's lead in use [s] (NaN until the first step)
        self._interval_s = 0.0  # generator step interval, smoothed [s]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frame_id = 0
        self.errors = 0  #: generator calls that raised (the frame is skipped; the show goes on)
        self.last_error: str | None = None
        self.last_gen_s = math.nan  #: duration of the last generator call [s]
        self.classes: tuple[int, ...] = tuple(getattr(mapper, "classes", ()))
        self._size: tuple[int, int] | None = None  # (H, W) of the generator's frames, after the first
        self._seen_seq = 0  # features sequence number last seen, and when it changed [s]
        self._seen_at = -math.inf
        self.drifting = False
        self._pending = None  # (ticket, latents, start [s], submit time [s]) of the frame in flight, pipelined

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._run, name="vj-inference", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Ask the thread to stop and join it. Returns True if it ended within ``timeout_s`` [s] (a generator
        call in progress is allowed to finish)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _sync_controls(self) -> None:
        if self.registry is None:
            return
        values = self.registry.snapshot()
        self.mapper.apply_params(values)
        settings = getattr(self.mapper, "settings", None)
        if settings is not None and self.latency_fn is not None and values.get("gan.pulse_lead_auto", 0.0) >= 0.5:
            try:
                latency = self.latency_fn()
                display = self.display_interval_fn() if self.display_interval_fn is not None else None
            except Exception:  # noqa: BLE001 — a statistics hiccup keeps the fader's lead
                latency = display = None
            if latency is not None and math.isfinite(latency) and latency >= 0:
                fade = 0.5 * self._interval_s - (display if display and math.isfinite(display) else 0.0)
                settings.pulse_lead_s = min(latency + max(fade, 0.0), self.MAX_LEAD_S)  # both terms >= 0
        self.pulse_lead_s = float(getattr(settings, "pulse_lead_s", math.nan))
        palette = self.registry.palette  # target = registry.classes; source/mix during a preset crossfade
        if palette.target or palette.source:
            try:
                self.mapper.set_palette(list(palette.source), list(palette.target), palette.mix)
            except Exception as exc:  # a bad palette is ignored, not fatal
                self.last_error = str(exc)

    #: no new audio hop for this long [s] → drift (input lost, file ended, or no audio yet)
    DRIFT_AFTER_S = 0.5
    #: period of the drift's level wander [s]
    DRIFT_PERIOD_S = 7.0

    def _drift(self, f, now_s: float):
        """Features that keep the picture moving when no new audio arrives: the last state, with a slowly
        wandering level (the mapping moves the noise vector with level changes; a constant level would hold it)."""
        from dataclasses import replace

        from vj.audio.features import Features

        base = f if f is not None else Features()
        level = 0.35 + 0.25 * math.sin(2.0 * math.pi * now_s / self.DRIFT_PERIOD_S)
        return replace(base, level=level, onset=False, beat=False)

    def step(self, now_s: float, dt_s: float) -> bool:
        """Generate and publish one frame (what the thread loop does; public for tests).

        Pipelined (``frame_fn.pipelined`` true, after the first frame): submit this step's frame, then take and
        publish the previous step's frame, with its own latents' hop id, capture time and start time.

        Returns:
            True unless the generator failed (a frame was published, or — the first pipelined step — is in flight).
        """
        if 0.0 < dt_s < 1.0:
            self._interval_s += (dt_s - self._interval_s) * (0.05 if self._interval_s else 1.0)
        self._sync_controls()
        seq, f = self.features.get()
        if seq != self._seen_seq:
            self._seen_seq, self._seen_at = seq, now_s
        self.drifting = f is None or now_s - self._seen_at > self.DRIFT_AFTER_S
        if self.drifting:
            f = self._drift(f, now_s)
        lat = self.mapper.step(f, dt_s)
        if self._size is not None and getattr(self.frame_fn, "pipelined", False):
            return self._step_pipelined(lat, now_s)
        self._drop_pending()
        t0 = clock.now_s()
        try:
            if self._size is not None:  # known frame size: generate straight into the slot's buffer
                buf = self.frames.write_buffer(*self._size)
                self.frame_fn(lat, out=buf)
            else:
                img = self.frame_fn(lat)
                self._size = img.shape[:2]
                buf = self.frames.write_buffer(*self._size)
                buf[...] = img
        except Exception as exc:  # noqa: BLE001 — bad latents or a driver hiccup: skip the frame
            self._error(exc)
            return False
        self.last_gen_s = clock.now_s() - t0
        self._publish(lat, now_s)
        return True

    def _error(self, exc: Exception) -> None:
        self.errors += 1
        self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if self.errors == 1:
            log.warning("generator failed (frame skipped, show goes on): %s", self.last_error)

    def _publish(self, lat, start_s: float) -> None:
        self.frame_id += 1
        self.classes = tuple(self.mapper.classes)
        self.frames.publish(frame_id=self.frame_id, hop_index=int(lat.hop_index),
                            capture_time_s=float(lat.capture_time_s), t_start_s=start_s,
                            t_done_s=clock.now_s(), classes=self.classes)

    def _step_pipelined(self, lat, now_s: float) -> bool:
        """Submit frame k+1, then take and publish frame k (see :meth:`step`)."""
        t0 = clock.now_s()
        try:
            ticket = self.frame_fn.submit(lat)
        except Exception as exc:  # noqa: BLE001
            self._error(exc)
            return False
        pending, self._pending = self._pending, (ticket, lat, now_s, t0)
        if pending is None:
            return True
        ticket_k, lat_k, start_k, t0_k = pending
        try:
            buf = self.frames.write_buffer(*self._size)
            self.frame_fn.take(ticket_k, out=buf)
        except Exception as exc:  # noqa: BLE001
            self._error(exc)
            return False
        self.last_gen_s = clock.now_s() - t0_k  # submit of frame k to its frame in host memory
        self._publish(lat_k, start_k)
        return True

    def _drop_pending(self) -> None:
        """Take (and drop) a frame still in flight, so its slot is free (pipelining stopped, or the thread ends)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            try:
                self.frame_fn.take(pending[0])
            except Exception:  # noqa: BLE001 — its runner may be gone already
                pass

    def _run(self) -> None:
        last = clock.now_s()
        min_gap = 1.0 / self.max_fps if self.max_fps > 0 else 0.0
        while not self._stop.is_set():
            now = clock.now_s()
            dt = now - last
            last = now
            ok = self.step(now, dt)
            if not ok:
                self._stop.wait(0.05)  # don't spin on a failing generator
            elif min_gap:
                wait = min_gap - (clock.now_s() - now)
                if wait > 0:
                    self._stop.wait(wait)
        self._drop_pending()
        close = getattr(self.frame_fn, "close", None)
        if close is not None:
            close()
