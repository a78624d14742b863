"""The inference thread: newest features + live parameters → latents (the mapping) → a frame in the frame slot.

It never waits for the display: it takes whatever features are newest (the same ones again if no new hop came —
the noise motion then drifts on the last state, so visuals keep moving when input is lost), steps the
:class:`vj.mapping.Mapper` by the real time elapsed, runs the generator and publishes into a
:class:`vj.engine.slots.FrameSlot`, then starts over (optionally capped at ``max_fps``).

The generator call is wrapped by a *frame function* ``fn(latents) -> uint8 [H, W, 4]`` so the way it runs can be
swapped: :func:`make_frame_fn` uses :func:`vj.engine.gpu.make_runner` (CUDA graphs / fused uint8 output) when that
module is there and works, else plain eager PyTorch.
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


def make_frame_fn(gen, device="cpu", dtype=None, use_runner: bool = True) -> Callable:
    """Wrap a generator as ``fn(latents) -> uint8 [H, W, 4]`` (one image per call).

    Args:
        gen: ``gen(noise [N,128], class_vector [N,1000], truncation) -> [N,3,H,W]`` in [-1, 1].
        device: torch device of ``gen``.
        dtype: torch dtype of ``gen``'s parameters (float32 when None).
        use_runner: try :func:`vj.engine.gpu.make_runner` first (if that module exists).

    Returns:
        the frame function; it has a ``kind`` attribute (``"runner"`` or ``"eager"``) for the overlay/logs.
    """
    import torch

    dtype = dtype or torch.float32
    if use_runner:
        try:
            from vj.engine.gpu import make_runner  # written separately; optional here
        except ImportError:
            make_runner = None
        if make_runner is not None:
            try:
                runner = make_runner(gen, batch_size=1, device=device, dtype=dtype)
            except Exception as exc:  # noqa: BLE001 — fall back to eager rather than refuse to start
                log.info("generator runner unavailable (%s); running eager", exc)
            else:
                def run_runner(lat) -> np.ndarray:
                    out = runner(lat.noise[None], lat.class_vector[None], float(lat.truncation))
                    if hasattr(out, "cpu"):
                        out = out.cpu().numpy()
                    out = np.asarray(out)
                    return out[0] if out.ndim == 4 else out

                run_runner.kind = "runner"
                return run_runner

    dev = torch.device(device)

    @torch.inference_mode()
    def run_eager(lat) -> np.ndarray:
        noise = torch.from_numpy(np.ascontiguousarray(lat.noise, np.float32))[None].to(dev, dtype)
        cv = torch.from_numpy(np.ascontiguousarray(lat.class_vector, np.float32))[None].to(dev, dtype)
        return to_rgba8(gen(noise, cv, float(lat.truncation)))[0]

    run_eager.kind = "eager"
    return run_eager


class InferenceThread:
    """Generates frames continuously from the newest features and parameters.

    Args:
        frame_fn: ``fn(latents) -> uint8 [H, W, 4]`` (see :func:`make_frame_fn`).
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
        classes = tuple(self.registry.classes)
        if classes and classes != tuple(self.mapper.classes):
            try:
                self.mapper.set_classes(list(classes))
            except Exception as exc:  # a bad palette is ignored, not fatal
                self.last_error = str(exc)

    def step(self, now_s: float, dt_s: float) -> bool:
        """Generate and publish one frame (what the thread loop does; public for tests).

        Returns:
            True if a frame was published.
        """
        from vj.audio.features import Features

        self._sync_controls()
        _, f = self.features.get()
        if f is None:
            f = Features()
        lat = self.mapper.step(f, dt_s)
        t0 = time.perf_counter()
        try:
            img = self.frame_fn(lat)
        except Exception as exc:  # noqa: BLE001 — bad latents or a driver hiccup: skip the frame
            self.errors += 1
            self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if self.errors == 1:
                log.warning("generator failed (frame skipped, show goes on): %s", self.last_error)
            return False
        self.last_gen_s = time.perf_counter() - t0
        h, w = img.shape[:2]
        buf = self.frames.write_buffer(h, w)
        if img.shape[2] == 4:
            buf[...] = img
        else:
            buf[..., :3] = img[..., :3]
            buf[..., 3] = 255
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
