"""The show's effects offline: the live pipeline's shaders run headless (EGL) on every rendered frame.

``vj render`` and ``vj render --replay`` apply the same :class:`vj.display.pipeline.Pipeline` (blend/sharpen,
Catmull-Rom upscale, post.frag effects with feedback trails) as ``vj live``, with the effect envelopes advanced by
the same :class:`vj.display.fx.FxState` from the same features and parameters — only on the video's clock
(frame ``k`` at ``k / fps``) instead of the display's, and with every frame generated (no interpolation: blend
weight 1). Everything here is a pure function of its inputs, so the same inputs give identical frames.

:func:`fx_timeline` (plain Python, no GL) turns per-frame features/parameters into post.frag uniforms;
:class:`OfflineFx` (one EGL context, one pipeline) applies them to generated images in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from vj.display.fx import FxState, hit_and_beat, auto_levels
from vj.engine.slots import EventLatch
from vj.errors import VJError


@dataclass
class FrameFx:
    """What the post pass needs for one video frame.

    Attributes:
        uniforms: post.frag uniforms (see :meth:`vj.display.fx.FxState.update`).
        sharpen: unsharp-mask amount 0..1 (``fx.sharpen.amount``).
        levels: compute auto-levels black/white points from the new image (``fx.levels.amount > 0``).
        freeze: hold the previous image (``freeze``), as the live display does.
    """

    uniforms: dict
    sharpen: float
    levels: bool
    freeze: bool


def fx_timeline(times_s: Iterable[float], features: Iterable, params: Iterable[dict],
                beat_counts: Iterable[int] | None = None) -> list[FrameFx]:
    """Effect uniforms for each video frame, as the live main loop computes them once per display frame.

    Args:
        times_s: frame times [s], increasing (the effect clock; the flash limiter and strobe use it).
        features: the newest :class:`vj.audio.features.Features` at each frame (None before the first hop).
        params: the registry values in force at each frame (``{name: value}``).
        beat_counts: the show's beat clock count at each frame (as ``vj live``'s tempo clock gave it); None =
            count the analysis beats (``Features.beat_count``) as live does without a clock.

    Returns:
        One :class:`FrameFx` per frame.
    """
    fx = FxState()
    onsets, beats = EventLatch(), EventLatch()
    out = []
    prev_t = None
    bc = iter(beat_counts) if beat_counts is not None else None
    for t, f, p in zip(times_s, features, params):
        dt = 0.0 if prev_t is None else t - prev_t
        prev_t = t
        n_on = onsets.update(f.onset_count) if f is not None else 0
        if bc is not None:
            n_beat = min(beats.update(next(bc)), 1)  # a resync jump is one beat, not several (as live)
        else:
            n_beat = beats.update(f.beat_count) if f is not None else 0
        level = f.level if f is not None else 0.0
        u = fx.update(t, dt, n_on, n_beat, level, p, *hit_and_beat(f))
        out.append(FrameFx(u, float(p.get("fx.sharpen.amount", 0.0)), p.get("fx.levels.amount", 0.0) > 0,
                           p.get("freeze", 0.0) >= 0.5))
    return out


class OfflineFx:
    """One headless EGL context and the live :class:`~vj.display.pipeline.Pipeline` on it.

    Args:
        output_size: video size (width, height) [px].
        frame_size: generator frame size (width, height) [px].

    Raises:
        VJError: no EGL context (names the Debian packages and ``--no-fx``), or a shader failed to load.
    """

    def __init__(self, output_size: tuple[int, int], frame_size: tuple[int, int]):
        import moderngl

        from vj.display.pipeline import Pipeline

        try:
            self.ctx = moderngl.create_standalone_context(backend="egl")
        except Exception as exc:  # noqa: BLE001
            raise VJError(f"the effects pass needs EGL (Debian: libegl1 libgl1-mesa-dri), or use --no-fx: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        try:
            self.pipeline = Pipeline(self.ctx, output_size, frame_size)
        except Exception as exc:  # noqa: BLE001
            self.ctx.release()
            raise VJError(f"the effects pass could not start: {exc}") from None
        self.output_size = tuple(output_size)
        self._have_frame = False

    def frame(self, image: np.ndarray | None, fx: FrameFx) -> np.ndarray:
        """Apply one frame's effects.

        Args:
            image: the generated frame, uint8 [shape=(H, W, 4)] RGBA, row 0 = top; ignored while ``fx.freeze``
                (after the first frame), as the live display holds its image.
            fx: this frame's :class:`FrameFx`.

        Returns:
            uint8 [shape=(height, width, 3)] RGB of the output size, row 0 = top.
        """
        p = self.pipeline
        if image is not None and (not fx.freeze or not self._have_frame):
            levels = auto_levels(image) if fx.levels else None
            if not self._have_frame:
                p.upload(image)
            p.upload(image, levels)
            self._have_frame = True
        p.render(1.0, fx.sharpen, fx.uniforms)
        return p.read_final().copy()

    def close(self) -> None:
        """Release the GL objects and the context."""
        try:
            self.pipeline.release()
        finally:
            self.ctx.release()


def rgba_from_generator(images) -> np.ndarray:
    """Generator output (torch [N, 3, H, W] in [-1, 1]) → uint8 [N, H, W, 4] RGBA, as live uploads it."""
    from vj.engine.gpu import to_rgba_uint8

    return np.ascontiguousarray(to_rgba_uint8(images.float()).cpu().numpy())
