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

Where the pieces live (all importable from here): :mod:`vj.engine.runner` (the :class:`Runner` API,
:class:`TicketBook`, :func:`to_rgba_uint8`), :mod:`vj.engine.cpu_runner` (:class:`CPURunner`),
:mod:`vj.engine.graph_runner` (:class:`GraphRunner`, :class:`CaptureError`) and :mod:`vj.engine.ladder`
(:func:`make_runner` and the fallback ladder).
"""

from __future__ import annotations

from vj.engine.cpu_runner import CPURunner
from vj.engine.graph_runner import CaptureError, GraphRunner
from vj.engine.runner import DTYPE_NAMES, PRECISIONS, Runner, TicketBook, to_rgba_uint8

__all__ = ["Runner", "CPURunner", "GraphRunner", "TicketBook", "CaptureError", "to_rgba_uint8",
           # from vj.engine.ladder (the fallback ladder), importable from here too:
           "FallbackRunner", "Rung", "make_runner", "plan_rungs", "choose_precision", "SELF_CHECK_DB"]

_LADDER = ("FallbackRunner", "Rung", "make_runner", "plan_rungs", "choose_precision", "SELF_CHECK_DB")


def __getattr__(name: str):
    """The ladder's names (:mod:`vj.engine.ladder`) resolve here too, so callers import runners from one place."""
    if name in _LADDER:
        from vj.engine import ladder

        return getattr(ladder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
