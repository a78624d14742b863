"""The eager CPU runner: :class:`CPURunner` (NHWC, inference mode, threads = physical cores, uint8 RGBA out).

``submit`` computes the frame before returning (nothing to overlap on a CPU). The API is
:class:`vj.engine.runner.Runner`'s; importable from :mod:`vj.engine.gpu` too.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from vj.engine.runner import Runner, _model_inputs, to_rgba_uint8

__all__ = ["CPURunner"]


class CPURunner(Runner):
    """Eager CPU runner: NHWC, inference mode, threads = physical cores, uint8 RGBA out.

    Args:
        gen: float32 generator on any device (BigGAN-deep from :func:`vj.models.load_generator`, or the CPPN); a
            copy is prepared by :func:`vj.models.fast.prepare_cpu` (threads, NHWC, denormals flushed, dtype), so
            the caller's module is left as it was (an eager fallback can keep using it).
        batch_size: images per call.
        dtype: ``torch.float32`` (default) or ``torch.bfloat16`` (faster on CPUs with AVX512-BF16/AMX; lower PSNR).
            The CPPN always runs fp32.
        threads: intra-op threads (None: physical cores).
    """

    kind = "cpu"

    def __init__(self, gen: torch.nn.Module, batch_size: int = 1, dtype: torch.dtype = torch.float32,
                 threads: int | None = None):
        from vj.models import is_biggan
        from vj.models.fast import prepare_cpu

        if not is_biggan(gen):
            dtype = torch.float32
        super().__init__(gen, batch_size, torch.device("cpu"), dtype)
        self.gen = prepare_cpu(copy.deepcopy(gen).to("cpu"), dtype=dtype, threads=threads)
        shape = (self.batch_size, self.resolution, self.resolution, 4)
        self._frames = [torch.empty(shape, dtype=torch.uint8) for _ in range(self.depth)]
        self._finite = [True] * self.depth
        self._done: set[int] = set()

    def submit(self, noise, class_vector, truncation) -> int:
        z, c, t = self._inputs(noise, class_vector, truncation)
        ticket, slot = self._new_ticket()
        try:
            with torch.inference_mode():
                img = self.gen(*_model_inputs(self.gen, z.float().cpu(), c.float().cpu(), t))
                self._finite[slot] = bool(torch.isfinite(img).all())
                to_rgba_uint8(img, self._frames[slot])
        except BaseException:
            self._book.take(ticket)
            raise
        self._done.add(ticket)
        return ticket

    def ready(self, ticket: int) -> bool:
        return ticket in self._done

    def result(self, ticket: int, out: np.ndarray | None = None) -> np.ndarray:
        slot = self._book.take(ticket)
        self._done.discard(ticket)
        self.last_finite = self._finite[slot]
        return self._deliver(self._frames[slot], out)

    def close(self) -> None:
        self.gen = None
        self._frames = []
        super().close()
