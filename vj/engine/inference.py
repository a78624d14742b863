"""The inference thread: newest features + live parameters → latents (the mapping) → a frame in the frame slot.

It never waits for the display: it takes whatever features are newest (when no new hop came for
:attr:`InferenceThread.DRIFT_AFTER_S` — input lost, file ended, no audio yet — the last state with a slowly
wandering level, so the picture keeps drifting instead of freezing), steps the
:class:`vj.mapping.Mapper` by the real time elapsed, runs the generator and publishes into a
:class:`vj.engine.slots.FrameSlot`, then starts over (optionally capped at ``max_fps``).

The generator call is wrapped by a *frame function* ``fn(latents, out=None) -> uint8 [H, W, 4]`` so the way it runs
can be swapped: :class:`FrameFn` uses :func:`vj.engine.gpu.make_runner` (CUDA graphs / fused uint8 output) when
that module is there and works, else plain eager PyTorch.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Callable

import numpy as np

from vj.engine.slots import FrameSlot, LatestSlot

log = logging.getLogger("vj")


def to_rgba8(images) -> np.ndarray:
    """Generator output → uint8 RGBA images.

    Args:
        images: torch tensor [shape=(N, 3, H, W)], RGB in [-1, 1] (NaN → 0).

    Returns:
        np.ndarray uint8 [shape=(N, H, W, 4)], alpha 255, row 0 = top.
    """
    import torch

    x = torch.nan_to_num(images.detach().float(), nan=0.0).clamp(-1.0, 1.0)
    x = ((x + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    n, h, w, _ = x.shape
    out = np.empty((n, h, w, 4), np.uint8)
    out[..., :3] = x
    out[..., 3] = 255
    return out


class FrameFn:
    """The generator as ``fn(latents, out=None) -> uint8 [H, W, 4]``, one image per call.

    Uses :func:`vj.engine.gpu.make_runner` (CUDA graph on NVIDIA GPUs, prepared eager on the CPU) when that module is
    there; the runner is created on the first call, i.e. on the inference thread, which must own all CUDA work of a
    captured graph. If the runner cannot be made, or fails three calls in a row, it falls back for good to plain
    eager PyTorch (one log line) — the show goes on.

    Args:
        gen: ``gen(noise [N,128], class_vector [N,1000], truncation) -> [N,3,H,W]`` in [-1, 1], float32.
        device: torch device of ``gen``.
        use_runner: try the runner first.

    Attributes:
        kind: ``"runner"`` or ``"eager"`` once the first frame was made (``"pending"`` before).
    """

    def __init__(self, gen, device="cpu", use_runner: bool = True):
        self.gen = gen
        self.device = device
        self.use_runner = use_runner
        self.kind = "pending"
        self._runner = None
        self._fails = 0

    def _make_runner(self):
        from vj.engine.gpu import make_runner

        try:
            return make_runner(self.gen, batch_size=1, device=self.device)
        except Exception as exc:  # noqa: BLE001 — eager rather than refuse to play
            log.info("generator runner unavailable (%s); running eager", exc)
            return None

    def _eager(self, lat) -> np.ndarray:
        import torch

        param = next(iter(self.gen.parameters()), None)
        dev = param.device if param is not None else torch.device(self.device)
        dtype = param.dtype if param is not None else torch.float32
        with torch.inference_mode():
            noise = torch.from_numpy(np.ascontiguousarray(lat.noise, np.float32))[None].to(dev, dtype)
            cv = torch.from_numpy(np.ascontiguousarray(lat.class_vector, np.float32))[None].to(dev, dtype)
            return to_rgba8(self.gen(noise, cv, float(lat.truncation)))[0]

    def __call__(self, lat, out: np.ndarray | None = None) -> np.ndarray:
        """Generate one image for ``lat`` (:class:`vj.mapping.Latents`); fills ``out`` (uint8 [H, W, 4]) if given."""
        if self.kind == "pending":
            self._runner = self._make_runner() if self.use_runner else None
            self.kind = "runner" if self._runner is not None else "eager"
        if self._runner is not None:
            try:
                res = self._runner.run(lat.noise[None], lat.class_vector[None], float(lat.truncation),
                                       out=None if out is None else out[None])
                self._fails = 0
                return res[0]
            except Exception as exc:  # noqa: BLE001
                self._fails += 1
                if self._fails < 3:
                    raise
                log.warning("generator runner keeps failing (%s); switching to eager", exc)
                self.close()
                self.kind = "eager"
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


def make_frame_fn(gen, device="cpu", use_runner: bool = True) -> FrameFn:
    """The frame function for ``gen`` (see :class:`FrameFn`)."""
    return FrameFn(gen, device, use_runner)


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
    """

    def __init__(self, frame_fn: Callable, mapper, features: LatestSlot, frames: FrameSlot, registry=None,
                 max_fps: float = 0.0):
        self.frame_fn = frame_fn
        self.mapper = mapper
        self.features = features
        self.frames = frames
        self.registry = registry
        self.max_fps = float(max_fps)
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
        self.mapper.apply_params(self.registry.snapshot())
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

        Returns:
            True if a frame was published.
        """
        self._sync_controls()
        seq, f = self.features.get()
        if seq != self._seen_seq:
            self._seen_seq, self._seen_at = seq, now_s
        self.drifting = f is None or now_s - self._seen_at > self.DRIFT_AFTER_S
        if self.drifting:
            f = self._drift(f, now_s)
        lat = self.mapper.step(f, dt_s)
        t0 = time.perf_counter()
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
            self.errors += 1
            self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if self.errors == 1:
                log.warning("generator failed (frame skipped, show goes on): %s", self.last_error)
            return False
        self.last_gen_s = time.perf_counter() - t0
        self.frame_id += 1
        self.classes = tuple(self.mapper.classes)
        self.frames.publish(frame_id=self.frame_id, hop_index=int(lat.hop_index),
                            capture_time_s=float(lat.capture_time_s), t_start_s=now_s,
                            t_done_s=time.perf_counter(), classes=self.classes)
        return True

    def _run(self) -> None:
        last = time.perf_counter()
        min_gap = 1.0 / self.max_fps if self.max_fps > 0 else 0.0
        while not self._stop.is_set():
            now = time.perf_counter()
            dt = now - last
            last = now
            ok = self.step(now, dt)
            if not ok:
                self._stop.wait(0.05)  # don't spin on a failing generator
            elif min_gap:
                wait = min_gap - (time.perf_counter() - now)
                if wait > 0:
                    self._stop.wait(wait)
        close = getattr(self.frame_fn, "close", None)
        if close is not None:
            close()
