"""Audio in and streaming analysis.

* :mod:`vj.audio.decode` — read an audio file (or the bundled ``demo``) into float32 samples.
* :mod:`vj.audio.features` — the :class:`~vj.audio.features.Features` record published once per hop.
* :mod:`vj.audio.analysis` — :class:`~vj.audio.analysis.StreamingAnalyzer`, hop-by-hop analysis that the live
  audio callback and offline commands share.
"""
