"""The display side of ``vj live``: shader loading, the GL image pipeline, effects timing, overlay, window.

* :mod:`vj.display.shaders` — :class:`ShaderLoader`, the one place GLSL files in ``shaders/`` are read.
* :mod:`vj.display.pipeline` — :class:`Pipeline`, owner of every GL object: frame textures, interpolation,
  upscale, post effects with ping-pong feedback, presentation with letterbox/fill.
* :mod:`vj.display.fx` — pure-Python effect envelopes (flash, zoom punch, hue, strobe) and the flash limiter.
* :mod:`vj.display.overlay` — the operator overlay (pyglet text drawn after the moderngl frame).
* :mod:`vj.display.window` — the pyglet window, keyboard, fullscreen; and the headless (EGL) variant.

All GL calls happen on the main thread.
"""
