"""The fallback ladder that never stops the show, and :func:`make_runner`, the one way to get a runner.

On CUDA :func:`make_runner` returns a :class:`FallbackRunner` over :func:`plan_rungs`: CUDA graph at the chosen
precision → (auto, fp16 failed, compute capability ≥ 8.0: CUDA graph bf16) → CUDA graph fp32 → eager CUDA fp32
→ CPU runner. A rung is left on an error while it is built (warm-up, capture: :class:`vj.engine.gpu.CaptureError`),
on its start-up self-check (the graph's first frames against an eager fp32 pass on the same inputs: all finite,
PSNR ≥ :data:`SELF_CHECK_DB` dB), or at run time when a frame's NaN/inf flag is set (that frame is made again on
the next rung). Each step logs one WARNING line. On the CPU it returns a :class:`vj.engine.gpu.CPURunner`.
Either way one INFO line names device, precision and runner, and why (:func:`choose_precision`).

The runners themselves, their API and threading contract: :mod:`vj.engine.gpu`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import dataclass

import numpy as np
import torch

from vj.engine.cpu_runner import CPURunner
from vj.engine.graph_runner import GraphRunner
from vj.engine.runner import DTYPE_NAMES, PRECISIONS, Runner, to_rgba_uint8

__all__ = ["FallbackRunner", "Rung", "make_runner", "plan_rungs", "choose_precision", "SELF_CHECK_DB"]

log = logging.getLogger("vj")

#: PSNR floor of the start-up self-check (graph frames vs an eager fp32 pass on the same inputs) [dB]
SELF_CHECK_DB = 30.0


@dataclass(frozen=True)
class Rung:
    """One step of the fallback ladder: ``kind`` ("cuda-graph", "cuda-eager", "cpu") at ``dtype``."""

    kind: str
    dtype: torch.dtype

    def __str__(self) -> str:
        what = {"cuda-graph": "CUDA graph", "cuda-eager": "eager CUDA", "cpu": "CPU runner"}[self.kind]
        return f"{what} {DTYPE_NAMES.get(self.dtype, str(self.dtype))}"


def choose_precision(precision: str, device: torch.device, gen: torch.nn.Module,
                     capability: tuple[int, int] | None = None) -> tuple[torch.dtype, str]:
    """The generator's dtype for ``precision`` on ``device``, and why (for the log line).

    Rules: the CPPN always runs fp32. On the CPU, ``auto`` is :func:`vj.models.fast.cpu_dtype` (bf16 where the CPU
    has native bf16, else fp32). On CUDA, ``auto`` is fp16 on compute capability >= 7.0 (tensor cores), fp32 below;
    an explicit bf16 below 8.0 becomes fp32 (no bf16 tensor cores).

    Args:
        precision: ``"auto"``, ``"fp16"``, ``"bf16"`` or ``"fp32"``.
        device: the resolved device.
        gen: the generator (BigGAN or CPPN).
        capability: CUDA compute capability ``(major, minor)`` (None: asked from the device).

    Returns:
        ``(dtype, why)``.

    Raises:
        VJError: an unknown precision name.
    """
    from vj.errors import VJError
    from vj.models import is_biggan

    if precision not in ("auto",) + tuple(PRECISIONS):
        raise VJError(f"unknown precision {precision!r} (use auto, fp16, bf16 or fp32)")
    if not is_biggan(gen):
        return torch.float32, "the CPPN always runs fp32"
    if device.type != "cuda":
        if precision == "auto":
            from vj.models.fast import cpu_dtype, native_bf16_cpu

            dt = cpu_dtype(gen)
            return dt, ("CPU has native bf16 (AVX512-BF16/AMX)" if native_bf16_cpu() else "CPU has no native bf16")
        return PRECISIONS[precision], f"--precision {precision}"
    cc = capability if capability is not None else torch.cuda.get_device_capability(device)
    ccs = f"compute capability {cc[0]}.{cc[1]}"
    if precision == "auto":
        if tuple(cc) >= (7, 0):
            return torch.float16, f"{ccs} >= 7.0 (fp16 tensor cores)"
        return torch.float32, f"{ccs} < 7.0 (no fp16 tensor cores)"
    if precision == "bf16" and tuple(cc) < (8, 0):
        return torch.float32, f"--precision bf16 needs compute capability >= 8.0, this GPU has {ccs}"
    return PRECISIONS[precision], f"--precision {precision}"


def plan_rungs(dtype: torch.dtype, auto: bool, capability: tuple[int, int], capture: bool = True,
               cpu_dtype: torch.dtype = torch.float32) -> list[Rung]:
    """The fallback ladder on CUDA, best first.

    CUDA graph at ``dtype`` → (``auto`` and fp16 and capability >= 8.0: CUDA graph bf16) → CUDA graph fp32 →
    eager CUDA fp32 → CPU runner at ``cpu_dtype``. ``capture=False`` drops the graph rungs (eager at ``dtype``
    first).
    """
    rungs: list[Rung] = []
    kinds = ("cuda-graph",) if capture else ()
    for kind in kinds:
        rungs.append(Rung(kind, dtype))
        if auto and dtype == torch.float16 and tuple(capability) >= (8, 0):
            rungs.append(Rung(kind, torch.bfloat16))
        if dtype != torch.float32:
            rungs.append(Rung(kind, torch.float32))
    if not capture and dtype != torch.float32:
        rungs.append(Rung("cuda-eager", dtype))
    rungs.append(Rung("cuda-eager", torch.float32))
    rungs.append(Rung("cpu", cpu_dtype))
    return rungs


def _check_inputs(n: int, dim_z: int, num_classes: int, seed: int = 1234):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(n, dim_z, generator=g).clamp_(-2.0, 2.0) * 0.5)
    c = torch.softmax(3.0 * torch.randn(n, num_classes, generator=g), dim=1)
    return z, c, torch.full((n,), 0.5)


class FallbackRunner(Runner):
    """The fallback ladder as one runner: the show never stops (see the module docstring).

    Args:
        gen: float32 generator (BigGAN-deep or CPPN); each rung prepares its own copy.
        batch_size: images per call.
        device: the CUDA device of the CUDA rungs.
        rungs: the ladder, best first (see :func:`plan_rungs`); the last should be a CPU rung.
        threads: CPU threads of the CPU rung.
        self_check: run the start-up self-check on the CUDA rungs.
        cuda: the CUDA API (see :class:`GraphRunner`; tests pass a stand-in).

    Attributes:
        rung: the :class:`Rung` in use; steps (list of str): one line per step taken, as logged.

    Raises:
        RuntimeError: every rung failed (the CPU runner too).
    """

    def __init__(self, gen: torch.nn.Module, batch_size: int, device, rungs: list[Rung], threads: int | None = None,
                 self_check: bool = True, cuda=None):
        super().__init__(gen, batch_size, torch.device(device), rungs[0].dtype)
        self._gen = gen
        self._rungs = list(rungs)
        self._threads = threads
        self._self_check = self_check
        self._cuda = cuda
        self._level = -1
        self._era = 0  # bumped at every step: tickets of an earlier era are made again on the new rung
        self._reference: np.ndarray | None = None
        self._saved: list[tuple | None] = [None] * self.depth
        self._inner_of: dict[int, tuple[int, int]] = {}
        self.steps: list[str] = []
        self.inner: Runner | None = None
        self._climb_down("start")

    # -- rungs -------------------------------------------------------------------------------------------------
    def _build(self, rung: Rung) -> Runner:
        if rung.kind == "cpu":
            return CPURunner(self._gen, self.batch_size, rung.dtype, threads=self._threads)
        return GraphRunner(self._gen, self.batch_size, self.device, rung.dtype, capture=rung.kind == "cuda-graph",
                           cuda=self._cuda)

    def _check(self, runner: Runner) -> str | None:
        """Start-up self-check of a CUDA rung: None if it passed, else why not."""
        from vj.models.fast import psnr

        z, c, t = _check_inputs(self.batch_size, runner.dim_z, runner.num_classes)
        got = runner.run(z, c, t)
        if not runner.last_finite:
            return "self-check: NaN/inf in the output"
        if runner.kind != "cuda-graph":
            return None
        if self._reference is None:  # eager fp32 on the same device and inputs, computed once
            ref = copy.deepcopy(self._gen).to(runner.device).eval().requires_grad_(False)
            with torch.inference_mode():
                img = ref(z.to(runner.device), c.to(runner.device), t.to(runner.device))
                self._reference = to_rgba_uint8(img).cpu().numpy()
            del ref, img
        db = psnr(torch.from_numpy(got[..., :3]).float(), torch.from_numpy(self._reference[..., :3]).float(), 255.0)
        if not db >= SELF_CHECK_DB:
            return f"self-check: PSNR {db:.1f} dB against eager fp32 (< {SELF_CHECK_DB:.0f} dB)"
        return None

    def _climb_down(self, why: str) -> None:
        """Leave the current rung (if any) for the next one that builds and passes its check."""
        if self.inner is not None:
            with contextlib.suppress(Exception):
                self.inner.close()
            self.inner = None
        self._era += 1
        while self._level + 1 < len(self._rungs):
            self._level += 1
            rung = self._rungs[self._level]
            try:
                runner = self._build(rung)
            except Exception as exc:  # noqa: BLE001 - warm-up, capture or allocation failed: next rung
                why = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:160]}"
                self._step(rung, why)
                continue
            problem = None
            if self._self_check and rung.kind != "cpu":
                try:
                    problem = self._check(runner)
                except Exception as exc:  # noqa: BLE001
                    problem = f"self-check raised {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            if problem is not None:
                with contextlib.suppress(Exception):
                    runner.close()
                self._step(rung, problem)
                continue
            self.inner = runner
            self.rung = rung
            self.dtype, self.graphed, self.kind = runner.dtype, runner.graphed, runner.kind
            self.gen = runner.gen
            self.device = runner.device
            return
        raise RuntimeError(f"every generator runner failed (last: {why})")

    def _step(self, rung: Rung, why: str) -> None:
        nxt = self._rungs[self._level + 1] if self._level + 1 < len(self._rungs) else None
        line = f"generator: {rung} failed ({why}); {'trying ' + str(nxt) if nxt else 'no rung left'}"
        self.steps.append(line)
        log.warning("%s", line)

    # -- API ---------------------------------------------------------------------------------------------------
    def _submit_inner(self, z, c, t) -> int:
        while True:
            try:
                return self.inner.submit(z, c, t)
            except (ValueError, KeyError):
                raise
            except RuntimeError as exc:
                if "outstanding" in str(exc) or self._level + 1 >= len(self._rungs):
                    raise
                self._step(self._rungs[self._level], f"run-time {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
                self._climb_down("run-time error")

    def submit(self, noise, class_vector, truncation) -> int:
        z, c, t = self._inputs(noise, class_vector, truncation)
        ticket, slot = self._new_ticket()
        try:
            self._saved[slot] = (z.detach().cpu().clone(), c.detach().cpu().clone(), t.clone())
            self._inner_of[ticket] = (self._era, self._submit_inner(*self._saved[slot]))
        except BaseException:
            self._book.take(ticket)
            self._inner_of.pop(ticket, None)
            raise
        return ticket

    def ready(self, ticket: int) -> bool:
        self._book.slot(ticket)
        era, inner = self._inner_of[ticket]
        return era == self._era and self.inner.ready(inner)

    def result(self, ticket: int, out: np.ndarray | None = None) -> np.ndarray:
        slot = self._book.take(ticket)
        era, inner = self._inner_of.pop(ticket)
        saved, self._saved[slot] = self._saved[slot], None
        while True:
            if era != self._era:  # made by a rung that has since been left: make it again on this one
                era, inner = self._era, self._submit_inner(*saved)
            frames = self.inner.result(inner, out)
            self.last_finite = self.inner.last_finite
            if self.last_finite or self._level + 1 >= len(self._rungs):
                return frames
            self._step(self._rungs[self._level], "NaN/inf in a frame at run time")
            self._climb_down("NaN/inf at run time")

    def describe(self) -> str:
        return self.inner.describe() if self.inner is not None else "closed"

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
            self.inner = None
        self._gen = None
        self.gen = None
        self._reference = None
        self._saved = [None] * self.depth
        super().close()


def make_runner(gen: torch.nn.Module, batch_size: int = 1, device="auto", dtype: torch.dtype | None = None,
                threads: int | None = None, capture: bool = True, precision: str = "auto") -> Runner:
    """The runner for ``device``, with one INFO log line naming device, precision and runner, and why.

    Args:
        gen: float32 generator (BigGAN-deep or CPPN); the runner prepares its own copy.
        batch_size: images per call.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: overrides ``precision`` when given.
        threads: CPU threads (CPU runner only; None = physical cores).
        capture: CUDA only; False starts from the eager CUDA rung.
        precision: ``"auto"``, ``"fp16"``, ``"bf16"`` or ``"fp32"`` (see :func:`choose_precision`).

    Returns:
        :class:`CPURunner` on the CPU; on CUDA a :class:`FallbackRunner` over :func:`plan_rungs`.

    Raises:
        VJError: a CUDA device was asked for but CUDA is unavailable, an unknown device string or precision.
    """
    from vj.models import resolve_device
    from vj.models.fast import cpu_dtype

    dev = resolve_device(device)
    if device is None or str(device) == "auto":
        dev_why = "auto: CUDA is available" if dev.type == "cuda" else \
            f"auto: no CUDA device (torch {torch.__version__}, torch.cuda.is_available() is False)"
    else:
        dev_why = f"--device {device}"
    if dtype is not None:
        prec_why = f"dtype {DTYPE_NAMES.get(dtype, dtype)} asked for"
    else:
        dtype, prec_why = choose_precision(precision, dev, gen)
    if dev.type == "cuda":
        cc = torch.cuda.get_device_capability(dev)
        rungs = plan_rungs(dtype, precision == "auto", cc, capture, cpu_dtype(gen))
        runner: Runner = FallbackRunner(gen, batch_size, dev, rungs, threads=threads)
        name = torch.cuda.get_device_name(dev)
    else:
        runner = CPURunner(gen, batch_size, dtype, threads=threads)
        name = cpu_name()
    log.info("generator: %s (%s), %s, batch %d%s — %s; %s", runner.device, name, runner.describe(),
             runner.batch_size, f", {torch.get_num_threads()} thread(s)" if runner.device.type == "cpu" else "",
             dev_why, prec_why)
    return runner


def cpu_name() -> str:
    """``model name`` from /proc/cpuinfo (what ``lscpu`` prints), or the platform's processor string."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"
