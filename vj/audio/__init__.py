"""Audio in and streaming analysis.

* :mod:`vj.audio.decode` — read an audio file (or the bundled ``demo``) into float32 samples.
* :mod:`vj.audio.sources` — builds a source from its command-line spelling; the sources by job:
  :mod:`vj.audio.source` (shared surface), :mod:`vj.audio.file_source`, :mod:`vj.audio.portaudio` (devices,
  streams, hung closes), :mod:`vj.audio.capture_clock`, :mod:`vj.audio.live_input` (input + supervisor).
* :mod:`vj.audio.features` — the :class:`~vj.audio.features.Features` record published once per hop.
* :mod:`vj.audio.analysis` — :class:`~vj.audio.analysis.StreamingAnalyzer`, hop-by-hop analysis that the live
  audio path and offline commands share; :mod:`vj.audio.chroma` (12-bin chroma) and :mod:`vj.audio.beat` (the
  causal beat tracker) are its parts.
* :mod:`vj.audio.demo` — the synthesiser of the bundled demo piece.
"""
