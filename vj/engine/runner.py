"""What every generator runner shares: the :class:`Runner` API, ticket bookkeeping and the one RGBA conversion.

* :func:`to_rgba_uint8`: generator output ``[N, 3, H, W]`` in [-1, 1] to uint8 RGBA NHWC (tensor ops only, so it
  can be captured in a CUDA graph).
* :class:`TicketBook`: which outstanding ticket owns which buffer slot.
* :class:`Runner`: the non-blocking ``submit``/``ready``/``result``/``run``/``close`` API, its input checks and
  delivery into the caller's array; implemented by :class:`vj.engine.cpu_runner.CPURunner` and
  :class:`vj.engine.graph_runner.GraphRunner`.

The API, pipelining and threading contract are described in :mod:`vj.engine.gpu`, which re-exports these names.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["DTYPE_NAMES", "PRECISIONS", "Runner", "TicketBook", "to_rgba_uint8"]

DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def to_rgba_uint8(images: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Convert generator output to uint8 RGBA, NHWC (the project's one RGBA conversion).

    Args:
        images: ``[N, 3, H, W]`` RGB in [-1, 1], any float dtype, either memory format, any device.
        out: optional uint8 ``[N, H, W, 4]`` on the same device to write into (its alpha is set to 255).

    Returns:
        uint8 ``[N, H, W, 4]`` on ``images``' device: ``round((x + 1) * 127.5)`` clamped to 0..255 (computed in
        fp32; NaN counts as 0, i.e. 128), alpha 255. Only tensor ops: safe inside a CUDA graph capture.

    Raises:
        ValueError: not 3 channels.
    """
    n, c, h, w = images.shape
    if c != 3:
        raise ValueError(f"images must be [N, 3, H, W], got {list(images.shape)}")
    if out is None:
        out = torch.empty((n, h, w, 4), dtype=torch.uint8, device=images.device)
    rgb = images.permute(0, 2, 3, 1).float().nan_to_num(0.0).add_(1.0).mul_(127.5).round_().clamp_(0.0, 255.0)
    out[..., :3].copy_(rgb)
    out[..., 3].fill_(255)
    return out


def _as_input(x: Any, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Check and convert one input to a float tensor of ``shape`` (its own device)."""
    t = torch.as_tensor(x)
    if not t.is_floating_point():
        t = t.float()
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {list(shape)}, got {list(t.shape)}")
    if not bool(torch.isfinite(t).all()):  # 1 k numbers: cheap, and a NaN input must not look like a bad rung
        raise ValueError(f"{name} is not finite (NaN or inf)")
    return t


class TicketBook:
    """Which ticket owns which buffer slot: the bookkeeping every runner shares.

    A ticket is issued with a free slot and keeps it until its result is taken, so results may be taken in any
    order (submit t0, submit t1, take t1, submit t2, take t0 gives t0's own frame: t2 got t1's freed slot).

    Args:
        depth: number of slots (tickets that may be outstanding at once), >= 1.
    """

    def __init__(self, depth: int = 2):
        if int(depth) < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth = int(depth)
        self._slot_of: dict[int, int] = {}
        self._free = list(range(self.depth))
        self._next = 0

    @property
    def outstanding(self) -> tuple[int, ...]:
        """Tickets issued and not yet taken, oldest first."""
        return tuple(sorted(self._slot_of))

    def issue(self) -> tuple[int, int]:
        """A new ticket and the slot it owns.

        Raises:
            RuntimeError: :attr:`depth` tickets already outstanding.
        """
        if not self._free:
            raise RuntimeError(f"{self.depth} tickets already outstanding; take a result before submitting more")
        slot = self._free.pop(0)
        ticket = self._next
        self._next += 1
        self._slot_of[ticket] = slot
        return ticket, slot

    def _check(self, ticket: int) -> None:
        if ticket in self._slot_of:
            return
        if isinstance(ticket, int) and 0 <= ticket < self._next:
            raise KeyError(f"ticket {ticket} was already taken")
        raise KeyError(f"ticket {ticket!r} was never issued by this runner")

    def slot(self, ticket: int) -> int:
        """The slot ``ticket`` owns. Raises KeyError (never issued, or already taken)."""
        self._check(ticket)
        return self._slot_of[ticket]

    def take(self, ticket: int) -> int:
        """Retire ``ticket`` and free its slot; returns the slot. Raises KeyError (never issued, already taken)."""
        self._check(ticket)
        slot = self._slot_of.pop(ticket)
        self._free.append(slot)
        return slot

    def clear(self) -> None:
        """Forget every outstanding ticket (the runner closed)."""
        self._free.extend(self._slot_of.values())
        self._slot_of.clear()


class Runner:
    """Common API of the runners (see the module docstring).

    Attributes:
        batch_size (int), resolution (int, px), device (torch.device), dtype (torch.dtype of the generator),
        depth (int: tickets that may be outstanding, 2), graphed (bool: a CUDA graph is replayed),
        kind (str: "cuda-graph", "cuda-eager" or "cpu"), last_finite (bool: the frames of the last ``result``
        were all finite before conversion).
    """

    depth = 2
    graphed = False
    kind = "runner"

    def __init__(self, gen: torch.nn.Module, batch_size: int, device: torch.device, dtype: torch.dtype):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.device = device
        self.dtype = dtype
        self.resolution = int(gen.resolution)
        self.dim_z = int(getattr(gen, "dim_z", 128))
        self.num_classes = int(getattr(gen, "num_classes", 1000))
        self.last_finite = True
        self._book = TicketBook(self.depth)
        self._closed = False

    # -- inputs ------------------------------------------------------------------------------------------------
    def _inputs(self, noise, class_vector, truncation):
        n = self.batch_size
        z = _as_input(noise, "noise", (n, self.dim_z))
        c = _as_input(class_vector, "class_vector", (n, self.num_classes))
        t = torch.as_tensor(truncation, dtype=torch.float32)
        if t.dim() > 1 or t.numel() not in (1, n):
            raise ValueError(f"truncation must be a float or a [{n}] tensor, got shape {list(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError("truncation is not finite (NaN or inf)")
        return z, c, t.reshape(-1).expand(n)

    def _new_ticket(self) -> tuple[int, int]:
        if self._closed:
            raise RuntimeError("runner is closed")
        return self._book.issue()

    # -- API ---------------------------------------------------------------------------------------------------
    def submit(self, noise, class_vector, truncation) -> int:
        """Start generating one batch.

        Args:
            noise: ``[N, 128]`` float (numpy or torch).
            class_vector: ``[N, 1000]`` float.
            truncation: float or ``[N]`` float in [0, 1].

        Returns:
            int ticket for :meth:`result`.

        Raises:
            ValueError: wrong shapes, or a NaN/inf input.
            RuntimeError: :attr:`depth` tickets already outstanding, or the runner is closed.
        """
        raise NotImplementedError

    def ready(self, ticket: int) -> bool:
        """True when :meth:`result` for ``ticket`` would return without waiting."""
        raise NotImplementedError

    def result(self, ticket: int, out: np.ndarray | None = None) -> np.ndarray:
        """Wait for ``ticket``'s frames and return them (each ticket's result can be taken once, in any order).

        Args:
            ticket: from :meth:`submit`.
            out: optional C-contiguous uint8 ``[N, H, W, 4]`` array to fill (e.g. a frame slot's buffer).

        Returns:
            uint8 ``[N, H, W, 4]`` RGBA: ``out``, or a fresh array. Sets :attr:`last_finite`.

        Raises:
            KeyError: a ticket never issued by this runner, or already taken.
        """
        raise NotImplementedError

    def run(self, noise, class_vector, truncation, out: np.ndarray | None = None) -> np.ndarray:
        """Synchronous convenience: ``result(submit(noise, class_vector, truncation), out)``."""
        return self.result(self.submit(noise, class_vector, truncation), out)

    def close(self) -> None:
        """Release the generator and every buffer (and the CUDA graph). Further calls raise RuntimeError."""
        self._closed = True
        self._book.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def describe(self) -> str:
        """One phrase for the log: e.g. ``"CUDA graph runner, fp16"``."""
        what = {"cuda-graph": "CUDA graph runner", "cuda-eager": "eager CUDA runner", "cpu": "CPU runner"}
        return f"{what.get(self.kind, self.kind)}, {DTYPE_NAMES.get(self.dtype, str(self.dtype))}"

    @staticmethod
    def _deliver(frames: torch.Tensor, out: np.ndarray | None) -> np.ndarray:
        src = frames.numpy()
        if out is None:
            return src.copy()
        if out.shape != src.shape or out.dtype != np.uint8:
            raise ValueError(f"out must be uint8 {list(src.shape)}, got {out.dtype} {list(out.shape)}")
        np.copyto(out, src)
        return out


def _model_inputs(gen, z: torch.Tensor, c: torch.Tensor, t: torch.Tensor):
    """Inputs in the dtype ``gen`` expects: float32 for BigGAN (it casts itself), else its parameters' dtype."""
    from vj.models import is_biggan

    if is_biggan(gen):
        return z, c, t
    p = next(gen.parameters(), None)
    dt = p.dtype if p is not None else torch.float32
    return z.to(dt), c.to(dt), t.to(dt)
