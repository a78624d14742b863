"""The display side of ``vj live``: the frame loop, shader loading, the GL image pipeline, effects, overlay, window.

The frame loop is :class:`Show` (:mod:`vj.display.show`): :meth:`Show.run` calls :meth:`Show.frame` once per
display frame on the main thread — window events, control surfaces (:meth:`vj.control.surfaces.Surfaces.poll`),
the registry's queued changes, the newest generated frame, effect envelopes, render, present, overlay, swap,
recording/screenshots/stats — and never waits for the generator.

* :mod:`vj.display.show` — :class:`Show` and :class:`ShowOptions` (the loop and its options).
* :mod:`vj.display.shaders` — :class:`ShaderLoader`, the one place GLSL files in ``shaders/`` are read.
* :mod:`vj.display.pipeline` — :class:`Pipeline`, owner of every GL object: frame textures, interpolation,
  upscale, post effects with ping-pong feedback, presentation with letterbox/fill.
* :mod:`vj.display.fx` — pure-Python effect envelopes (flash, zoom punch, hue, strobe) and the flash limiter.
* :mod:`vj.display.overlay` — the operator overlay (pyglet text drawn after the moderngl frame).
* :mod:`vj.display.window` — the pyglet window (Esc, F, H/Tab; every other key is :mod:`vj.control.keyboard`'s)
  and the headless (EGL) variant.

All GL calls happen on the main thread.
"""

from vj.display.show import Show, ShowOptions

__all__ = ["Show", "ShowOptions"]
