"""vj — a live VJ instrument: music in, BigGAN-deep imagery out.

Importing :mod:`vj` is cheap: heavy dependencies (torch, aubio, PyAV, GL) are imported by the modules that use them.
"""

__version__ = "0.1.0"
