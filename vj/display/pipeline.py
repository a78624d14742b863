"""The GL image pipeline: one class owns every GL object (textures, framebuffers, programs).

Per display frame (main thread only)::

    newest frame ─upload─► u_curr ┐
    previous frame ───────► u_prev ┴► blend.frag (interpolate by t, unsharp mask) at the generator size
        ─► upscale.frag (Catmull-Rom bicubic, crop to the output aspect) at the output size — only when RGB shift
           or kaleidoscope is on; otherwise post.frag samples the small frame bicubically itself (FX_DIRECT)
        ─► post.frag (zoom, kaleidoscope, RGB shift, levels, hue, contrast/brightness, feedback trails,
                      flash, strobe, master, blackout) ─► look (ping-pong, read next frame) + final
        ─► present.frag into the window (letterbox or fill)

The final texture is what ``--record`` and ``--screenshot`` read back (the operator overlay is drawn on top of the
window only, never into it).
"""

from __future__ import annotations

import numpy as np

from vj.display.shaders import ShaderLoader

#: the uniforms of post.frag with neutral values (no effect, full brightness)
NEUTRAL_FX = {
    "u_zoom": 1.0,
    "u_kaleido": 0.0,
    "u_segments": 6.0,
    "u_rgbshift": 0.0,
    "u_hue": 0.0,
    "u_contrast": 1.0,
    "u_brightness": 0.0,
    "u_levels": 0.0,
    "u_feedback": 0.0,
    "u_flash": 0.0,
    "u_strobe": 0.0,
    "u_master": 1.0,
    "u_blackout": 0.0,
}

FIT_MODES = ("letterbox", "fill")


def present_geometry(window_size: tuple[int, int], output_size: tuple[int, int], fit: str):
    """Viewport and crop that show the output in a window keeping its aspect ratio.

    Args:
        window_size: framebuffer size of the window (width, height) [px].
        output_size: size of the output image (width, height) [px].
        fit: ``"letterbox"`` (all of the output, black bars) or ``"fill"`` (fill the window, crop the output).

    Returns:
        (viewport, crop): viewport (x, y, width, height) [px] and crop (fraction visible in x, y).
    """
    ww, wh = max(int(window_size[0]), 1), max(int(window_size[1]), 1)
    ow, oh = output_size
    a_win, a_out = ww / wh, ow / oh
    if fit == "fill":
        crop = (1.0, a_out / a_win) if a_win > a_out else (a_win / a_out, 1.0)
        return (0, 0, ww, wh), crop
    if a_win > a_out:  # bars left and right
        w = max(int(round(wh * a_out)), 1)
        return ((ww - w) // 2, 0, w, wh), (1.0, 1.0)
    h = max(int(round(ww / a_out)), 1)
    return (0, (wh - h) // 2, ww, h), (1.0, 1.0)


class Pipeline:
    """Owner of the GL objects of the image pipeline.

    Args:
        ctx: moderngl context (current on this thread).
        output_size: output resolution (width, height) [px].
        frame_size: generator frame size (width, height) [px]; textures are resized when frames differ.
        loader: shader loader (a new :class:`ShaderLoader` on ``ctx`` if None).

    Raises:
        vj.display.shaders.ShaderError: a shader failed to load.
    """

    def __init__(self, ctx, output_size: tuple[int, int], frame_size: tuple[int, int] = (128, 128),
                 loader: ShaderLoader | None = None):
        import moderngl

        self.ctx = ctx
        self.loader = loader or ShaderLoader(ctx)
        self.output_size = (int(output_size[0]), int(output_size[1]))
        self._p_blend = self.loader.program("quad.vert", "blend.frag")
        self._p_up = self.loader.program("quad.vert", "upscale.frag")
        self._p_present = self.loader.program("quad.vert", "present.frag")
        self._vaos = {id(p): ctx.vertex_array(p, []) for p in (self._p_blend, self._p_up, self._p_present)}
        self._post_variant(frozenset())  # compile the plain variant now: a broken shader fails at start-up
        self._look_live = False  # the feedback buffers hold last frame's look
        w, h = self.output_size
        self._up_tex = self._texture((w, h), 4, linear=True)
        self._up_fbo = ctx.framebuffer(color_attachments=[self._up_tex])
        self._look = [self._texture((w, h), 4, linear=True) for _ in range(2)]
        self.final = self._texture((w, h), 4, linear=True)
        self._post_fbos = [ctx.framebuffer(color_attachments=[t, self.final]) for t in self._look]
        self._final_fbo = ctx.framebuffer(color_attachments=[self.final])
        self._ping = 0
        for fbo in self._post_fbos:
            fbo.clear(0.0, 0.0, 0.0, 1.0)
        self._frame_size = (0, 0)
        self._prev = self._curr = self._blend_tex = self._blend_fbo = None
        self._resize_frames(frame_size)
        self.level_lo = np.zeros(3, np.float32)
        self.level_hi = np.ones(3, np.float32)
        self._pbo = None
        self._pbo_pending = False
        self._moderngl = moderngl

    # -- resources -------------------------------------------------------------------------------------------
    def _texture(self, size, components, linear):
        t = self.ctx.texture(size, components)
        f = self.ctx.LINEAR if linear else self.ctx.NEAREST
        t.filter = (f, f)
        t.repeat_x = t.repeat_y = False
        return t

    def _post_variant(self, defines: frozenset):
        """The post.frag program for a set of ``FX_*`` defines (compiled on first use) and its vertex array."""
        prog = self.loader.program("quad.vert", "post.frag", defines)
        if id(prog) not in self._vaos:
            self._vaos[id(prog)] = self.ctx.vertex_array(prog, [])
        return prog

    @staticmethod
    def post_defines(fx: dict) -> frozenset:
        """The ``FX_*`` variant that renders ``fx`` (post.frag uniforms): only the effects in use."""
        d = set()
        if fx.get("u_kaleido", 0.0) > 0.0:
            d.add("FX_KALEIDO")
        if fx.get("u_rgbshift", 0.0) > 0.0:
            d.add("FX_RGBSHIFT")
        if fx.get("u_levels", 0.0) > 0.0:
            d.add("FX_LEVELS")
        if fx.get("u_hue", 0.0) % 6.283185307179586 > 1e-4:
            d.add("FX_HUE")
        if fx.get("u_feedback", 0.0) > 0.0:
            d.add("FX_FEEDBACK")
        if not d & {"FX_KALEIDO", "FX_RGBSHIFT"}:  # one sample per pixel: upscale inside post.frag
            d.add("FX_DIRECT")
        return frozenset(d)

    def _resize_frames(self, frame_size) -> None:
        fw, fh = int(frame_size[0]), int(frame_size[1])
        if (fw, fh) == self._frame_size:
            return
        for obj in (self._prev, self._curr, self._blend_fbo, self._blend_tex):
            if obj is not None:
                obj.release()
        self._prev = self._texture((fw, fh), 4, linear=False)
        self._curr = self._texture((fw, fh), 4, linear=False)
        self._blend_tex = self._texture((fw, fh), 4, linear=False)
        self._blend_fbo = self.ctx.framebuffer(color_attachments=[self._blend_tex])
        zero = np.zeros((fh, fw, 4), np.uint8)
        self._prev.write(zero)
        self._curr.write(zero)
        self._frame_size = (fw, fh)

    # -- per frame -------------------------------------------------------------------------------------------
    def upload(self, image: np.ndarray, levels: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Make ``image`` the newest frame; the one before becomes the previous frame.

        Args:
            image: uint8 [shape=(H, W, 4)] RGBA, row 0 = top.
            levels: optional (lo, hi) black/white points for auto-levels (see :func:`vj.display.fx.auto_levels`).
        """
        h, w = image.shape[:2]
        self._resize_frames((w, h))
        self._prev, self._curr = self._curr, self._prev
        self._curr.write(np.ascontiguousarray(image))
        if levels is not None:
            self.level_lo, self.level_hi = levels

    def render(self, t: float, sharpen: float, fx: dict | None = None) -> None:
        """Run blend → upscale → post into the final texture.

        Args:
            t: blend weight of the newest frame (0 = previous frame, 1 = newest).
            sharpen: unsharp-mask amount 0..1.
            fx: post.frag uniforms (missing ones take :data:`NEUTRAL_FX`).
        """
        ctx = self.ctx
        ctx.disable(self._moderngl.BLEND | self._moderngl.DEPTH_TEST | self._moderngl.CULL_FACE)
        # 1. blend at the frame size
        self._blend_fbo.use()
        self._prev.use(0)
        self._curr.use(1)
        self._set(self._p_blend, u_prev=0, u_curr=1, u_t=float(min(max(t, 0.0), 1.0)),
                  u_sharpen=float(min(max(sharpen, 0.0), 1.0)))
        self._vaos[id(self._p_blend)].render(vertices=3)
        # 2. upscale to the output size, cropping to cover its aspect ratio — a pass of its own only when the
        #    effects sample the picture more than once per pixel; otherwise post.frag does it (FX_DIRECT)
        fw, fh = self._frame_size
        ow, oh = self.output_size
        a_src, a_out = fw / fh, ow / oh
        crop = (1.0, a_src / a_out) if a_out > a_src else (a_out / a_src, 1.0)
        u = dict(NEUTRAL_FX)
        if fx:
            u.update(fx)
        defines = self.post_defines(u)
        if "FX_DIRECT" not in defines:
            self._up_fbo.use()
            self._blend_tex.use(0)
            self._set(self._p_up, u_src=0, u_crop=crop)
            self._vaos[id(self._p_up)].render(vertices=3)
        # 3. post effects (the variant with only the effects in use); ping-pong feedback when trails are on
        prog = self._post_variant(defines)
        src, dst = self._ping, 1 - self._ping
        if "FX_FEEDBACK" in defines:
            if not self._look_live:  # trails switched on: start from black, not from a stale look
                for fbo in self._post_fbos:
                    fbo.clear(0.0, 0.0, 0.0, 1.0)
                self._look_live = True
            self._post_fbos[dst].use()
            self._ping = dst
        else:
            self._look_live = False
            self._final_fbo.use()
        self._up_tex.use(0)
        self._look[src].use(1)
        self._blend_tex.use(2)
        self._set(prog, u_image=0, u_previous=1, u_src=2, u_crop=crop, u_resolution=(float(ow), float(oh)),
                  u_level_lo=tuple(float(x) for x in self.level_lo),
                  u_level_hi=tuple(float(x) for x in self.level_hi), **u)
        self._vaos[id(prog)].render(vertices=3)

    def present(self, fbo, window_size: tuple[int, int], fit: str = "letterbox") -> None:
        """Draw the final texture into ``fbo`` (the window's framebuffer) keeping the aspect ratio.

        Args:
            fbo: target framebuffer (``ctx.screen`` / ``ctx.detect_framebuffer()``).
            window_size: its size (width, height) [px].
            fit: ``"letterbox"`` or ``"fill"``.
        """
        viewport, crop = present_geometry(window_size, self.output_size, fit)
        fbo.use()
        fbo.viewport = (0, 0, int(window_size[0]), int(window_size[1]))
        fbo.clear(0.0, 0.0, 0.0, 1.0)
        fbo.viewport = viewport
        self.final.use(0)
        self._set(self._p_present, u_output=0, u_crop=crop)
        self._vaos[id(self._p_present)].render(vertices=3)

    @staticmethod
    def _set(program, **uniforms) -> None:
        for name, value in uniforms.items():
            if name in program:
                program[name].value = value

    # -- read back -------------------------------------------------------------------------------------------
    def read_final(self) -> np.ndarray:
        """The final output now, uint8 [shape=(H, W, 3)], row 0 = top (synchronous read)."""
        w, h = self.output_size
        data = self._final_fbo.read(components=3, alignment=1)
        return np.frombuffer(data, np.uint8).reshape(h, w, 3)[::-1]

    def start_readback(self) -> None:
        """Start an asynchronous copy of the final output into a pixel buffer (collect with
        :meth:`finish_readback` on a later frame, so the main thread does not wait for the GPU)."""
        w, h = self.output_size
        if self._pbo is None:
            self._pbo = self.ctx.buffer(reserve=w * h * 3)
        self._final_fbo.read_into(self._pbo, components=3, alignment=1)
        self._pbo_pending = True

    def finish_readback(self) -> np.ndarray | None:
        """The image copied by the last :meth:`start_readback` (uint8 [H, W, 3], row 0 = top), or None."""
        if not self._pbo_pending:
            return None
        self._pbo_pending = False
        w, h = self.output_size
        return np.frombuffer(self._pbo.read(), np.uint8).reshape(h, w, 3)[::-1]

    def release(self) -> None:
        """Release every GL object (main thread, context still current)."""
        objs = [self._up_fbo, self._up_tex, self._final_fbo, self.final, *self._post_fbos, *self._look,
                self._prev, self._curr, self._blend_fbo, self._blend_tex, *self._vaos.values()]
        if self._pbo is not None:
            objs.append(self._pbo)
        for o in objs:
            try:
                o.release()
            except Exception:
                pass
        self.loader.release()
