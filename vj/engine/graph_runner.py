"""The CUDA runner: :class:`GraphRunner` (generator + uint8 RGBA conversion + NaN/inf flag in one CUDA graph).

Staging in pinned memory, static input buffers, replay on a compute stream, two device output slots and a copy
stream to pinned host memory; see :mod:`vj.engine.gpu` for the pipeline and the threading contract (construct
and use a runner on one thread). :class:`CaptureError` is what a failed warm-up or capture raises. The API is
:class:`vj.engine.runner.Runner`'s; both names are importable from :mod:`vj.engine.gpu` too.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import torch

from vj.engine.runner import Runner, _model_inputs, to_rgba_uint8

__all__ = ["CaptureError", "GraphRunner"]


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
