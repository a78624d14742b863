"""Generator runners: one non-blocking API for the inference thread, CUDA graph on NVIDIA GPUs, eager on the CPU.

A runner owns a prepared generator and fixed-size buffers for one batch size. The inference thread uses::

    runner = make_runner(gen, batch_size=1, device="auto")    # on the inference thread; logs what it chose, and why
    ticket = runner.submit(noise, class_vector, truncation)   # returns at once on CUDA
    ...                                                        # prepare the next latents meanwhile
    frames = runner.result(ticket)                             # uint8 [N, H, W, 4] RGBA, host memory

Pipelining: at most :attr:`Runner.depth` (2) tickets may be outstanding (submitted, result not yet taken), so
the usual loop is "submit frame k+1, then take frame k". Tickets own their slots (:class:`TicketBook`): results
may be taken in any order and each returns its own ticket's frames. ``run(...)`` is ``result(submit(...))``.

Inputs (numpy arrays or torch tensors, any float dtype, any device):

* ``noise``: ``[N, 128]`` (N = the runner's batch size), already truncated by the caller if wanted;
* ``class_vector``: ``[N, 1000]`` class weights;
* ``truncation``: a float, or ``[N]`` per-image values, in [0, 1]; a *tensor input* of the captured graph, so it
  changes continuously with no re-capture.

Output: ``np.ndarray`` uint8 ``[N, H, W, 4]`` RGBA (alpha 255), row 0 at the top, NHWC so it uploads straight
into a GL texture; :func:`to_rgba_uint8` (``round((x + 1) * 127.5)`` clamped to 0..255, NaN as 0).
After each ``result`` the runner's :attr:`Runner.last_finite` says whether the generator's float output was all
finite (computed on the device inside the frame, read back with the frame's own copy: no extra sync).

Threading contract. A runner is not thread-safe: create it, and call ``submit``/``result``/``run``/``close``,
from one thread — the inference thread. For :class:`GraphRunner` this is required, not just advised: the CUDA
graph, its memory pool, the streams and the events are created by the constructor, and all CUDA work for the
captured graph (warm-up, capture, replay, copies) must stay on the thread that created them. Other threads
only ever see the numpy arrays ``result`` returns (fresh arrays, or the caller's ``out``).

:class:`GraphRunner` (CUDA, one precision): the generator (BigGAN: :func:`vj.models.fast.to_precision`, batch-norm
maths and — in fp16 — the residual trunk in fp32; the CPPN stays fp32), NHWC, is warmed up on a side stream with
``cudnn.benchmark`` on (algorithms are chosen during warm-up, never during capture) and captured once, together
with the uint8 RGBA conversion and the NaN/inf flag, into a :class:`torch.cuda.CUDAGraph` with its own memory pool,
reading static input buffers. ``submit`` stages the inputs in pinned memory, copies them into the static buffers,
replays the graph on the compute stream, copies frame + flag (one flat buffer) into the ticket's device slot; a
copy stream then copies that slot to pinned host memory and records the event ``result`` waits on. A failure
during warm-up or capture discards the graph, its pool, the streams and events, and raises :class:`CaptureError`.

:class:`vj.engine.ladder.FallbackRunner` (what :func:`make_runner` returns on CUDA): the ladder that never stops the show —
CUDA graph at the chosen precision → (auto, fp16 failed, compute capability ≥ 8.0: CUDA graph bf16) → CUDA graph
fp32 → eager CUDA fp32 → CPU runner. A rung is left on an error while it is built (warm-up, capture), on its
start-up self-check (the graph's first frames against an eager fp32 pass on the same inputs: all finite, PSNR ≥
:data:`SELF_CHECK_DB` dB), or at run time when a frame's NaN/inf flag is set (that frame is made again on the next
rung). Each step logs one WARNING line.

:class:`CPURunner`: eager, NHWC, :func:`torch.inference_mode`, threads = physical cores (see
:func:`vj.models.fast.prepare_cpu`); ``submit`` computes the frame before returning (nothing to overlap on a CPU).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from typing import Any

import numpy as np
import torch

__all__ = ["Runner", "CPURunner", "GraphRunner", "TicketBook", "CaptureError", "to_rgba_uint8",
           # from vj.engine.ladder (the fallback ladder), importable from here too:
           "FallbackRunner", "Rung", "make_runner", "plan_rungs", "choose_precision", "SELF_CHECK_DB"]

_LADDER = ("FallbackRunner", "Rung", "make_runner", "plan_rungs", "choose_precision", "SELF_CHECK_DB")

log = logging.getLogger("vj")

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


class CaptureError(RuntimeError):
    """Warm-up or CUDA graph capture failed; the runner discarded its graph, pool, streams and events."""


class GraphRunner(Runner):
    """CUDA runner at one precision: generator + uint8 RGBA conversion + NaN/inf flag in one CUDA graph.

    Args:
        gen: float32 BigGAN-deep (from :func:`vj.models.load_generator`) or CPPN, on any device; a copy is moved
            to ``device``, converted to ``dtype`` (BigGAN: :func:`vj.models.fast.to_precision`; the CPPN always
            stays fp32) and to NHWC; the caller's module is left as it was.
        batch_size: images per replay.
        device: a CUDA device.
        dtype: ``torch.float16`` (default), ``torch.bfloat16`` or ``torch.float32``.
        capture: False skips the graph (eager on the same streams and buffers: the "eager CUDA" rung).
        warmup: eager iterations before capture (on the side stream), >= 1.
        cuda: the CUDA API to use (default :mod:`torch.cuda`); tests pass a stand-in with the same names
            (``Stream``, ``Event``, ``stream``, ``graph``, ``CUDAGraph``, ``graph_pool_handle``, ``synchronize``,
            ``current_stream``, ``device``, ``empty_cache``) to drive this class on a CPU.

    Raises:
        VJError: ``device`` is not a CUDA device or CUDA is unavailable.
        CaptureError: warm-up or capture failed (everything it built is released first).

    See the module docstring for the threading contract: construct and use it on one thread.
    """

    def __init__(self, gen: torch.nn.Module, batch_size: int = 1, device="cuda", dtype: torch.dtype = torch.float16,
                 capture: bool = True, warmup: int = 3, cuda=None):
        from vj.errors import VJError
        from vj.models import is_biggan
        from vj.models.fast import to_precision

        self._cuda = cuda if cuda is not None else torch.cuda
        device = torch.device(device)
        if cuda is None:
            if device.type != "cuda" or not torch.cuda.is_available():
                raise VJError(f"GraphRunner needs a CUDA device (got {device}; CUDA available: "
                              f"{torch.cuda.is_available()}); use make_runner() to get the CPU runner")
            if device.index is None:
                device = torch.device("cuda", torch.cuda.current_device())
        biggan = is_biggan(gen)
        if not biggan:
            dtype = torch.float32  # the CPPN always runs fp32
        super().__init__(gen, batch_size, device, dtype)
        self.kind = "cuda-graph" if capture else "cuda-eager"
        self._graph = None
        self._pool = None
        cu = self._cuda
        with self._on_device():
            gen = copy.deepcopy(gen).to(device).eval().requires_grad_(False).to(memory_format=torch.channels_last)
            self.gen = to_precision(gen, dtype) if biggan else gen
            n, r = self.batch_size, self.resolution
            self._frame_bytes = n * r * r * 4
            self._noise = torch.zeros((n, self.dim_z), device=device)
            self._class = torch.zeros((n, self.num_classes), device=device)
            self._class[:, 0] = 1.0
            self._trunc = torch.full((n,), 0.5, device=device)
            # frame (uint8 RGBA) and the NaN/inf flag in one flat buffer: one copy moves both to the host
            self._static = torch.zeros(self._frame_bytes + 1, dtype=torch.uint8, device=device)
            self._rgba = self._static[: self._frame_bytes].view(n, r, r, 4)
            self._flag = self._static[self._frame_bytes:]
            self._dev_out = [torch.zeros_like(self._static) for _ in range(self.depth)]
            self._host_out = [self._pinned(torch.empty(self._frame_bytes + 1, dtype=torch.uint8))
                              for _ in range(self.depth)]
            self._host_in = [
                (self._pinned(torch.empty((n, self.dim_z))), self._pinned(torch.empty((n, self.num_classes))),
                 self._pinned(torch.empty((n,))))
                for _ in range(self.depth)
            ]
            self._make_streams()
            if capture:
                try:
                    self._capture(max(1, int(warmup)))
                except CaptureError:
                    self.close()  # the generator copy and every buffer too, not only the graph
                    raise
            elif cu is torch.cuda:
                torch.backends.cudnn.benchmark = True
        self.graphed = self._graph is not None

    # -- set-up ------------------------------------------------------------------------------------------------
    def _on_device(self):
        return self._cuda.device(self.device) if self.device.type == "cuda" else contextlib.nullcontext()

    def _pinned(self, t: torch.Tensor) -> torch.Tensor:
        return t.pin_memory() if self.device.type == "cuda" else t

    def _make_streams(self) -> None:
        cu = self._cuda
        self._stream = cu.Stream(self.device)  # inputs, replay, device-side output copy
        self._copy_stream = cu.Stream(self.device)  # device -> pinned host
        self._inputs_free = [cu.Event() for _ in range(self.depth)]  # host_in[s] consumed
        self._frame_done = [cu.Event() for _ in range(self.depth)]  # dev_out[s] written
        # blocking: result() sleeps in cudaEventSynchronize instead of spinning a core the audio thread needs
        self._copied = [cu.Event(blocking=True) for _ in range(self.depth)]  # host_out[s] filled
        # weights and buffers were written on the current stream; the side streams start after that work
        self._stream.wait_stream(cu.current_stream(self.device))
        self._copy_stream.wait_stream(cu.current_stream(self.device))
        for e in self._inputs_free + self._copied:
            e.record(self._stream)

    def _capture(self, warmup: int) -> None:
        """Warm up on the side stream, then capture :meth:`_forward` into a graph with a private memory pool.

        Raises:
            CaptureError: anything failed; the half-built graph, its pool and the streams/events are released.
        """
        cu = self._cuda
        if cu is torch.cuda:
            # fixed shapes: cuDNN benchmarks its algorithms once, during the warm-up below (never during capture)
            torch.backends.cudnn.benchmark = True
        graph = None
        try:
            s = self._stream
            s.wait_stream(cu.current_stream(self.device))
            with cu.stream(s):
                for _ in range(warmup):
                    self._forward()
            cu.current_stream(self.device).wait_stream(s)
            cu.synchronize(self.device)
            self._pool = cu.graph_pool_handle()
            graph = cu.CUDAGraph()
            with cu.graph(graph, pool=self._pool, stream=s):
                self._forward()
            cu.synchronize(self.device)
        except Exception as exc:
            self._discard_graph(graph)
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise CaptureError(f"{type(exc).__name__}: {first}") from exc
        self._graph = graph

    def _discard_graph(self, graph) -> None:
        """Release a failed graph, its pool and the (possibly invalidated) streams and events."""
        cu = self._cuda
        with contextlib.suppress(Exception):
            cu.synchronize(self.device)
        if graph is not None:
            with contextlib.suppress(Exception):
                graph.reset()
        self._graph = None
        self._pool = None
        self._stream = self._copy_stream = None
        self._inputs_free = self._frame_done = self._copied = []
        with contextlib.suppress(Exception):
            cu.empty_cache()  # the pool's blocks go back to the driver once nothing references them

    def _forward(self) -> torch.Tensor:
        with torch.inference_mode():
            img = self.gen(*_model_inputs(self.gen, self._noise, self._class, self._trunc))
            to_rgba_uint8(img, self._rgba)
            self._flag.copy_(torch.isfinite(img).all().logical_not())  # on the device; no host sync
        return self._rgba

    # -- API ---------------------------------------------------------------------------------------------------
    def submit(self, noise, class_vector, truncation) -> int:
        z, c, t = self._inputs(noise, class_vector, truncation)
        ticket, slot = self._new_ticket()
        cu = self._cuda
        try:
            hz, hc, ht = self._host_in[slot]
            self._inputs_free[slot].synchronize()  # the H2D copy from this staging slot is done
            hz.copy_(z)
            hc.copy_(c)
            ht.copy_(t)
            with self._on_device(), cu.stream(self._stream):
                self._noise.copy_(hz, non_blocking=True)
                self._class.copy_(hc, non_blocking=True)
                self._trunc.copy_(ht, non_blocking=True)
                self._inputs_free[slot].record(self._stream)
                if self._graph is not None:
                    self._graph.replay()
                else:
                    self._forward()
                # dev_out[slot] may still be read by the copy of its previous owner: wait for that on the GPU
                self._stream.wait_event(self._copied[slot])
                self._dev_out[slot].copy_(self._static, non_blocking=True)
                self._frame_done[slot].record(self._stream)
            with self._on_device(), cu.stream(self._copy_stream):
                self._copy_stream.wait_event(self._frame_done[slot])
                self._host_out[slot].copy_(self._dev_out[slot], non_blocking=True)  # frame + flag, one copy
                self._copied[slot].record(self._copy_stream)
        except BaseException:
            self._book.take(ticket)
            raise
        return ticket

    def ready(self, ticket: int) -> bool:
        return self._copied[self._book.slot(ticket)].query()

    def result(self, ticket: int, out: np.ndarray | None = None) -> np.ndarray:
        slot = self._book.take(ticket)
        self._copied[slot].synchronize()
        host = self._host_out[slot]
        self.last_finite = int(host[self._frame_bytes]) == 0
        n, r = self.batch_size, self.resolution
        return self._deliver(host[: self._frame_bytes].view(n, r, r, 4), out)

    def close(self) -> None:
        """Wait for the device, then drop the graph, its pool, the generator, the streams and every buffer."""
        if not self._closed:
            self._discard_graph(self._graph)
            self.gen = None
            self._noise = self._class = self._trunc = self._static = self._rgba = self._flag = None
            self._dev_out, self._host_out, self._host_in = [], [], []
            if self._cuda is torch.cuda:
                with contextlib.suppress(Exception):
                    torch.cuda.synchronize(self.device)
                    # cuBLAS keeps a workspace per (handle, stream) in the caching allocator; ours die here
                    clear = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
                    if clear is not None:
                        clear()
                    torch.cuda.empty_cache()
        super().close()


def __getattr__(name: str):
    """The ladder's names (:mod:`vj.engine.ladder`) resolve here too, so callers import runners from one place."""
    if name in _LADDER:
        from vj.engine import ladder

        return getattr(ladder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
