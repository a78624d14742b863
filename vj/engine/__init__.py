"""The real-time engine behind ``vj live``: hand-off slots, the audio and inference threads, stats, recording.

* :mod:`vj.engine.slots` — latest-wins slots (features, frames) and event latches; nobody waits on anybody.
* :mod:`vj.engine.audio` — the audio thread front end: source hops → analysis → newest :class:`Features`.
* :mod:`vj.engine.inference` — the inference thread: newest features + live parameters → latents → frames.
* :mod:`vj.engine.stats` — rate meters, audio→photon latency, one JSON line per second (``--stats``).
* :mod:`vj.engine.record` — ``--record``: the output and the input audio to H.264 + AAC off the main thread.
* :mod:`vj.engine.mp4` — :class:`Mp4Writer`, the one H.264 + AAC writer (``--record`` and ``vj render``).
* :mod:`vj.engine.gpu` — the generator runners: CUDA graph with its fallback ladder, eager CUDA, CPU; one RGBA conversion.

The display side (window, shaders, overlay) is :mod:`vj.display`; ``vj live`` wires both in :mod:`vj.commands.live`.
"""
