"""Generator runners: one non-blocking API for the inference thread, CUDA graph on NVIDIA GPUs, eager on the CPU.

A runner owns a prepared generator and fixed-size buffers for one batch size. The inference thread uses::

    runner = make_runner(gen, batch_size=1, device="cuda", dtype=torch.float16)   # on the inference thread
    ticket = runner.submit(noise, class_vector, truncation)   # returns at once on CUDA
    ...                                                        # prepare the next latents meanwhile
    frames = runner.result(ticket)                             # uint8 [N, H, W, 4] RGBA, host memory

Pipelining: at most :attr:`Runner.depth` (2) tickets may be outstanding (submitted, result not yet taken), so
the usual loop is "submit frame k+1, then take frame k". ``run(...)`` is ``result(submit(...))``.

Inputs (numpy arrays or torch tensors, any float dtype, any device):

* ``noise``: ``[N, 128]`` (N = the runner's batch size), already truncated by the caller if wanted;
* ``class_vector``: ``[N, 1000]`` class weights;
* ``truncation``: a float, or ``[N]`` per-image values, in [0, 1]; a *tensor input* of the captured graph, so it
  changes continuously with no re-capture.

Output: ``np.ndarray`` uint8 ``[N, H, W, 4]`` RGBA (alpha 255), row 0 at the top, NHWC so it uploads straight
into a GL texture; ``value = round((x + 1) * 127.5)`` clamped to 0..255 for the generator's ``x`` in [-1, 1].

Threading contract. A runner is not thread-safe: create it, and call ``submit``/``result``/``run``/``close``,
from one thread — the inference thread. For :class:`GraphRunner` this is required, not just advised: the CUDA
graph, its memory pool, the streams and the events are created by the constructor, and all CUDA work for the
captured graph (warm-up, capture, replay, copies) must stay on the thread that created them. Other threads
only ever see the numpy arrays ``result`` returns (fresh arrays, or the caller's ``out``).

:class:`GraphRunner` (CUDA): at start-up the generator (fp16 by default, batch-norm maths in fp32; see
:func:`vj.models.fast.to_precision`, NHWC) is warmed up on a side stream and captured once, together with the
float -> uint8 RGBA conversion, into a :class:`torch.cuda.CUDAGraph` reading static input buffers (noise, class
vector, truncation). ``submit`` stages the inputs in pinned memory, copies them into the static buffers and
replays the graph on the compute stream, then copies the frame into one of two device output buffers
(alternating, so a replay never overwrites a frame still being copied out); a copy stream waits for that and
copies it to pinned host memory, recording an event that ``result`` waits on. If capture fails, one WARNING line
is logged and the same buffers and streams run the generator eagerly (same API, same output).

:class:`CPURunner`: eager, NHWC, :func:`torch.inference_mode`, threads = physical cores (see
:func:`vj.models.fast.prepare_cpu`); ``submit`` computes the frame before returning (nothing to overlap on a CPU).
:func:`make_runner` picks bf16 for BigGAN on CPUs with native bf16 (AVX512-BF16/AMX), else fp32.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from typing import Any

import numpy as np
import torch

__all__ = ["Runner", "CPURunner", "GraphRunner", "make_runner", "to_rgba_uint8"]

log = logging.getLogger("vj")


def to_rgba_uint8(images: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Convert generator output to uint8 RGBA, NHWC.

    Args:
        images: ``[N, 3, H, W]`` RGB in [-1, 1], any float dtype, either memory format.
        out: optional uint8 ``[N, H, W, 4]`` on the same device to write into (its alpha is set to 255).

    Returns:
        uint8 ``[N, H, W, 4]``: ``round((x + 1) * 127.5)`` clamped to 0..255 (computed in fp32), alpha 255.
    """
    n, c, h, w = images.shape
    if c != 3:
        raise ValueError(f"images must be [N, 3, H, W], got {list(images.shape)}")
    if out is None:
        out = torch.empty((n, h, w, 4), dtype=torch.uint8, device=images.device)
    rgb = images.permute(0, 2, 3, 1).float().add(1.0).mul_(127.5).round_().clamp_(0.0, 255.0)
    out[..., :3].copy_(rgb)
    out[..., 3].fill_(255)
    return out


def _as_input(x: Any, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Check and convert one input to a float32 CPU (or same-device) tensor of ``shape``."""
    t = torch.as_tensor(x)
    if not t.is_floating_point():
        t = t.float()
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {list(shape)}, got {list(t.shape)}")
    return t


class Runner:
    """Common API and ticket bookkeeping of the runners (see the module docstring).

    Attributes:
        batch_size (int), resolution (int, px), device (torch.device), dtype (torch.dtype of the generator),
        depth (int: tickets that may be outstanding, 2), graphed (bool: a CUDA graph is replayed).
    """

    depth = 2
    graphed = False

    def __init__(self, gen: torch.nn.Module, batch_size: int, device: torch.device, dtype: torch.dtype):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.device = device
        self.dtype = dtype
        self.resolution = int(gen.resolution)
        self.dim_z = int(getattr(gen, "dim_z", 128))
        self.num_classes = int(getattr(gen, "num_classes", 1000))
        self._next = 0
        self._outstanding: set[int] = set()
        self._closed = False

    # -- inputs ------------------------------------------------------------------------------------------------
    def _inputs(self, noise, class_vector, truncation):
        n = self.batch_size
        z = _as_input(noise, "noise", (n, self.dim_z))
        c = _as_input(class_vector, "class_vector", (n, self.num_classes))
        t = torch.as_tensor(truncation, dtype=torch.float32)
        if t.dim() > 1 or t.numel() not in (1, n):
            raise ValueError(f"truncation must be a float or a [{n}] tensor, got shape {list(t.shape)}")
        return z, c, t.reshape(-1).expand(n)

    def _new_ticket(self) -> int:
        if self._closed:
            raise RuntimeError("runner is closed")
        if len(self._outstanding) >= self.depth:
            raise RuntimeError(f"{self.depth} tickets already outstanding; take a result before submitting more")
        ticket = self._next
        self._next += 1
        self._outstanding.add(ticket)
        return ticket

    def _take(self, ticket: int) -> None:
        if ticket not in self._outstanding:
            raise KeyError(f"ticket {ticket} is not outstanding (already taken, or never submitted)")
        self._outstanding.discard(ticket)

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
            ValueError: wrong shapes.
            RuntimeError: :attr:`depth` tickets already outstanding, or the runner is closed.
        """
        raise NotImplementedError

    def ready(self, ticket: int) -> bool:
        """True when :meth:`result` for ``ticket`` would return without waiting."""
        raise NotImplementedError

    def result(self, ticket: int, out: np.ndarray | None = None) -> np.ndarray:
        """Wait for ``ticket``'s frames and return them (each ticket's result can be taken once).

        Args:
            ticket: from :meth:`submit`.
            out: optional C-contiguous uint8 ``[N, H, W, 4]`` array to fill (e.g. a frame slot's buffer).

        Returns:
            uint8 ``[N, H, W, 4]`` RGBA: ``out``, or a fresh array.

        Raises:
            KeyError: unknown or already-taken ticket.
        """
        raise NotImplementedError

    def run(self, noise, class_vector, truncation, out: np.ndarray | None = None) -> np.ndarray:
        """Synchronous convenience: ``result(submit(noise, class_vector, truncation), out)``."""
        return self.result(self.submit(noise, class_vector, truncation), out)

    def close(self) -> None:
        """Release buffers (and the CUDA graph). Further calls raise RuntimeError."""
        self._closed = True
        self._outstanding.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def _deliver(frames: torch.Tensor, out: np.ndarray | None) -> np.ndarray:
        src = frames.numpy()
        if out is None:
            return src.copy()
        if out.shape != src.shape or out.dtype != np.uint8:
            raise ValueError(f"out must be uint8 {list(src.shape)}, got {out.dtype} {list(out.shape)}")
        np.copyto(out, src)
        return out


class CPURunner(Runner):
    """Eager CPU runner: NHWC, inference mode, threads = physical cores, uint8 RGBA out.

    Args:
        gen: float32 generator on the CPU (BigGAN-deep from :func:`vj.models.load_generator`, or the CPPN); a copy
            is prepared by :func:`vj.models.fast.prepare_cpu` (threads, NHWC, denormals flushed, dtype), so the
            caller's module is left as it was (an eager fallback can keep using it).
        batch_size: images per call.
        dtype: ``torch.float32`` (default) or ``torch.bfloat16`` (faster on CPUs with AVX512-BF16/AMX; lower PSNR).
        threads: intra-op threads (None: physical cores).
    """

    def __init__(self, gen: torch.nn.Module, batch_size: int = 1, dtype: torch.dtype = torch.float32,
                 threads: int | None = None):
        super().__init__(gen, batch_size, torch.device("cpu"), dtype)
        from vj.models.fast import prepare_cpu

        self.gen = prepare_cpu(copy.deepcopy(gen), dtype=dtype, threads=threads)
        shape = (self.batch_size, self.resolution, self.resolution, 4)
        self._frames = [torch.empty(shape, dtype=torch.uint8) for _ in range(2)]
        self._done: set[int] = set()

    def submit(self, noise, class_vector, truncation) -> int:
        z, c, t = self._inputs(noise, class_vector, truncation)
        ticket = self._new_ticket()
        try:
            with torch.inference_mode():
                img = self.gen(*_model_inputs(self.gen, z.float(), c.float(), t))
                to_rgba_uint8(img, self._frames[ticket % 2])
        except BaseException:
            self._outstanding.discard(ticket)
            raise
        self._done.add(ticket)
        return ticket

    def ready(self, ticket: int) -> bool:
        return ticket in self._done

    def result(self, ticket: int, out: np.ndarray | None = None) -> np.ndarray:
        self._take(ticket)
        self._done.discard(ticket)
        return self._deliver(self._frames[ticket % 2], out)


def _model_inputs(gen, z: torch.Tensor, c: torch.Tensor, t: torch.Tensor):
    """Inputs in the dtype ``gen`` expects: float32 for BigGAN (it casts itself), else its parameters' dtype."""
    if hasattr(gen, "bn_stats") or hasattr(gen, "generator"):
        return z, c, t
    p = next(gen.parameters(), None)
    dt = p.dtype if p is not None else torch.float32
    return z.to(dt), c.to(dt), t.to(dt)


def _try_capture(fn, stream, warmup: int):
    """Capture ``fn`` (see :func:`_capture_graph`); on any failure log ONE warning line and return ``(None, None)``.

    The caller then runs ``fn`` eagerly with the same buffers.
    """
    try:
        return _capture_graph(fn, stream, warmup)
    except Exception as exc:  # any capture failure: keep the show going, eagerly
        with contextlib.suppress(Exception):
            torch.cuda.synchronize()
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        log.warning("CUDA graph capture failed (%s: %s); running the generator eagerly", type(exc).__name__, first)
        return None, None


def _capture_graph(fn, stream: torch.cuda.Stream, warmup: int = 3):
    """Warm ``fn`` up on ``stream`` (a side stream) and capture it into a CUDA graph.

    Returns:
        ``(graph, output)``; replaying ``graph`` recomputes ``output`` in place.
    """
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        output = fn()
    torch.cuda.synchronize()
    return graph, output


class GraphRunner(Runner):
    """CUDA runner: generator + uint8 RGBA conversion captured in one CUDA graph, pipelined copies to the host.

    Args:
        gen: float32 BigGAN-deep (from :func:`vj.models.load_generator`) or CPPN, on any device; a copy is moved
            to ``device``, converted to ``dtype`` (BigGAN: fp32 batch-norm maths, see
            :func:`vj.models.fast.to_precision`) and to NHWC; the caller's module is left as it was.
        batch_size: images per replay.
        device: a CUDA device.
        dtype: ``torch.float16`` (default), ``torch.bfloat16`` or ``torch.float32``.
        capture: False skips the graph (eager on the same streams and buffers).
        warmup: eager iterations before capture (on the side stream).

    Raises:
        VJError: ``device`` is not a CUDA device or CUDA is unavailable.

    See the module docstring for the threading contract: construct and use it on one thread.
    """

    def __init__(self, gen: torch.nn.Module, batch_size: int = 1, device="cuda", dtype: torch.dtype = torch.float16,
                 capture: bool = True, warmup: int = 3):
        from vj.errors import VJError

        device = torch.device(device)
        if device.type != "cuda" or not torch.cuda.is_available():
            raise VJError(f"GraphRunner needs a CUDA device (got {device}; CUDA available: "
                          f"{torch.cuda.is_available()}); use make_runner() to get the CPU runner")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        super().__init__(gen, batch_size, device, dtype)
        from vj.models.fast import to_precision

        with torch.cuda.device(device):
            gen = copy.deepcopy(gen).to(device).eval().requires_grad_(False).to(memory_format=torch.channels_last)
            if hasattr(gen, "bn_stats") or hasattr(gen, "generator"):
                gen = to_precision(gen, dtype)
            else:
                gen = gen.to(dtype)
            self.gen = gen
            n, r = self.batch_size, self.resolution
            self._noise = torch.zeros((n, self.dim_z), device=device)
            self._class = torch.zeros((n, self.num_classes), device=device)
            self._class[:, 0] = 1.0
            self._trunc = torch.full((n,), 0.5, device=device)
            self._rgba = torch.zeros((n, r, r, 4), dtype=torch.uint8, device=device)
            self._dev_out = [torch.zeros_like(self._rgba) for _ in range(2)]
            self._host_out = [torch.empty((n, r, r, 4), dtype=torch.uint8).pin_memory() for _ in range(2)]
            self._host_in = [
                (torch.empty((n, self.dim_z)).pin_memory(), torch.empty((n, self.num_classes)).pin_memory(),
                 torch.empty((n,)).pin_memory())
                for _ in range(2)
            ]
            self._stream = torch.cuda.Stream(device)  # inputs, replay, device-side output copy
            self._copy_stream = torch.cuda.Stream(device)  # device -> pinned host
            self._inputs_free = [torch.cuda.Event() for _ in range(2)]  # host_in[s] consumed
            self._frame_done = [torch.cuda.Event() for _ in range(2)]  # dev_out[s] written
            # blocking: result() sleeps in cudaEventSynchronize instead of spinning a core the audio thread needs
            self._copied = [torch.cuda.Event(blocking=True) for _ in range(2)]  # host_out[s] filled
            # weights and buffers were written on the current stream; the side streams start after that work
            self._stream.wait_stream(torch.cuda.current_stream(device))
            self._copy_stream.wait_stream(torch.cuda.current_stream(device))
            for e in self._inputs_free + self._copied:
                e.record(self._stream)
            self._slot_of: dict[int, int] = {}
            self._graph = None
            if capture:
                self._graph, _ = _try_capture(self._forward, self._stream, warmup)
                self.graphed = self._graph is not None

    def _forward(self) -> torch.Tensor:
        with torch.inference_mode():
            img = self.gen(*_model_inputs(self.gen, self._noise, self._class, self._trunc))
            return to_rgba_uint8(img, self._rgba)

    def submit(self, noise, class_vector, truncation) -> int:
        z, c, t = self._inputs(noise, class_vector, truncation)
        ticket = self._new_ticket()
        slot = ticket % 2
        try:
            hz, hc, ht = self._host_in[slot]
            self._inputs_free[slot].synchronize()  # the H2D copy from this staging slot two tickets ago is done
            hz.copy_(z)
            hc.copy_(c)
            ht.copy_(t)
            with torch.cuda.device(self.device), torch.cuda.stream(self._stream):
                self._noise.copy_(hz, non_blocking=True)
                self._class.copy_(hc, non_blocking=True)
                self._trunc.copy_(ht, non_blocking=True)
                self._inputs_free[slot].record(self._stream)
                if self._graph is not None:
                    self._graph.replay()
                else:
                    self._forward()
                # dev_out[slot] may still be read by the copy of ticket - 2: wait for that on the GPU.
                self._stream.wait_event(self._copied[slot])
                self._dev_out[slot].copy_(self._rgba, non_blocking=True)
                self._frame_done[slot].record(self._stream)
            with torch.cuda.device(self.device), torch.cuda.stream(self._copy_stream):
                self._copy_stream.wait_event(self._frame_done[slot])
                self._host_out[slot].copy_(self._dev_out[slot], non_blocking=True)
                self._copied[slot].record(self._copy_stream)
        except BaseException:
            self._outstanding.discard(ticket)
            raise
        self._slot_of[ticket] = slot
        return ticket

    def ready(self, ticket: int) -> bool:
        slot = self._slot_of.get(ticket)
        return slot is not None and self._copied[slot].query()

    def result(self, ticket: int, out: np.ndarray | None = None) -> np.ndarray:
        self._take(ticket)
        slot = self._slot_of.pop(ticket)
        self._copied[slot].synchronize()
        return self._deliver(self._host_out[slot], out)

    def close(self) -> None:
        if not self._closed:
            with contextlib.suppress(Exception):
                torch.cuda.synchronize(self.device)
            self._graph = None
        super().close()


def make_runner(gen: torch.nn.Module, batch_size: int = 1, device="auto", dtype: torch.dtype | None = None,
                threads: int | None = None, capture: bool = True) -> Runner:
    """The runner for ``device``: :class:`GraphRunner` on CUDA, :class:`CPURunner` on the CPU.

    Args:
        gen: float32 generator (BigGAN-deep or CPPN); the runner prepares its own copy.
        batch_size: images per call.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: None = fp16 on CUDA; on the CPU :func:`vj.models.fast.cpu_dtype` (bf16 for BigGAN where the CPU
            has native bf16, else fp32).
        threads: CPU threads (CPU runner only; None = physical cores).
        capture: CUDA only; False runs eagerly.

    Returns:
        A :class:`Runner`.

    Raises:
        VJError: a CUDA device was asked for but CUDA is unavailable, or an unknown device string.
    """
    from vj.models import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        return GraphRunner(gen, batch_size, dev, dtype or torch.float16, capture=capture)
    if dtype is None:
        from vj.models.fast import cpu_dtype

        dtype = cpu_dtype(gen)
    runner = CPURunner(gen, batch_size, dtype, threads=threads)
    log.info("generator: CPU runner, %s, %d thread(s), batch %d", str(dtype).replace("torch.", ""),
             torch.get_num_threads(), runner.batch_size)
    return runner
