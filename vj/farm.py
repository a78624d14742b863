"""Generating a latent timeline's frames in chunks: in this process, or farmed out to a Ray cluster.

The latent timeline (noise, class vectors, truncation per video frame) is computed once, sequentially, by the
caller (:mod:`vj.replay`); a farm turns it into frames chunk by chunk and yields the chunks *in order* to the single
effects pass and encoder. Both farms call the same :func:`generate_chunk` on the same chunk boundaries and the same
generator batches, so their frames are identical.

* :class:`LocalFarm` — in this process (what ``vj render`` does without ``--ray``).
* :class:`RayFarm` — ``--ray [ADDRESS|auto]``: one Ray actor per GPU (``num_gpus=1``), or CPU actors
  (``num_cpus=1`` each, one torch thread) when the cluster has no GPU. Each actor loads the weights once. Up to
  two chunks are in flight per actor; a chunk whose actor dies is submitted again (Ray restarts the actor, and
  re-runs its in-flight tasks, up to :attr:`RayFarm.MAX_RESTARTS` times; a chunk that still fails goes to another
  actor). Progress counts frames as any actor finishes them.

Ray (``pip install vj[farm]``) is imported only by :class:`RayFarm`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from vj.errors import VJError

log = logging.getLogger("vj")


@dataclass(frozen=True)
class GeneratorSpec:
    """How to build the generator on a worker (picklable).

    Attributes:
        model: name for :func:`vj.models.load_generator` ("cppn", "biggan-deep-512", ...).
        weights: weights path (must exist on every worker), or None (each worker's Hugging Face cache).
        seed: seed (the CPPN's network is made from it).
        device: "cpu", "cuda", ... on the worker ("auto" on a Ray GPU actor picks its GPU).
        precision: "fp32", "bf16" or "fp16" (BigGAN only; see :func:`vj.render.prepare_generator`).
        batch_size: frames per generator call.
        threads: torch intra-op threads on a CPU worker (None = its physical cores).
    """

    model: str = "cppn"
    weights: str | None = None
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"
    batch_size: int = 4
    threads: int | None = None


@dataclass
class Chunk:
    """Latents of consecutive video frames ``first .. first + len - 1``.

    Attributes:
        index: chunk number (order of the video).
        first: index of its first frame.
        noise: float32 [shape=(n, 128)]; class_vectors: float32 [shape=(n, 1000)]; truncation: float32 [n].
        keep: (a, b) — the frames ``a .. b-1`` of the chunk that the video needs (the others complete a batch).
    """

    index: int
    first: int
    noise: np.ndarray
    class_vectors: np.ndarray
    truncation: np.ndarray
    keep: tuple[int, int] | None = None

    def __len__(self) -> int:
        return int(self.noise.shape[0])

    @property
    def n_keep(self) -> int:
        """Frames of this chunk the video keeps."""
        return len(self) if self.keep is None else self.keep[1] - self.keep[0]


def load_worker_generator(spec: GeneratorSpec):
    """Load and prepare the generator for rendering (once per worker).

    Returns:
        ``(gen, device)``: a module ``gen(noise, class_vector, truncation) -> [N, 3, H, W]`` in [-1, 1] and its
        torch device.

    Raises:
        VJError: missing weights, an unknown model or device.
    """
    from vj.models import load_generator, resolve_device
    from vj.render import prepare_generator

    device = resolve_device(spec.device)
    gen = load_generator(spec.model, weights=spec.weights, device=device, seed=spec.seed, download=False)
    if device.type == "cpu" and spec.threads is not None:
        from vj.models import fast

        import torch

        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[spec.precision]
        is_biggan = getattr(gen, "model_name", "").startswith("biggan")
        return fast.prepare_cpu(gen, dtype=dtype if is_biggan else torch.float32, threads=spec.threads), device
    return prepare_generator(gen, device, spec.precision), device


def generate_chunk(gen, device, chunk: Chunk, batch_size: int) -> np.ndarray:
    """Generate one chunk's frames in batches of ``batch_size``.

    Returns:
        uint8 [shape=(k, H, W, 4)] RGBA (alpha 255), row 0 = top: the ``chunk.keep`` frames.

    Raises:
        VJError: the generator produced NaN/inf pixels.
    """
    import torch

    from vj.display.offline import rgba_from_generator

    out = []
    with torch.inference_mode():
        for a in range(0, len(chunk), batch_size):
            b = min(a + batch_size, len(chunk))
            noise = torch.from_numpy(np.array(chunk.noise[a:b], np.float32)).to(device)
            cv = torch.from_numpy(np.array(chunk.class_vectors[a:b], np.float32)).to(device)
            trunc = torch.from_numpy(np.array(chunk.truncation[a:b], np.float32)).to(device)
            images = gen(noise, cv, trunc)
            if not torch.isfinite(images).all():
                raise VJError("the generator produced NaN/inf pixels (corrupt weights?)")
            out.append(rgba_from_generator(images))
    imgs = np.concatenate(out)
    return imgs if chunk.keep is None else imgs[chunk.keep[0]:chunk.keep[1]]


class LocalFarm:
    """Generates chunks in this process, in order.

    Args:
        spec: the generator.
    """

    kind = "in-process"

    def __init__(self, spec: GeneratorSpec):
        self.spec = spec
        self.gen, self.device = load_worker_generator(spec)
        self.resolution = int(getattr(self.gen, "resolution", 128))
        self.model_name = getattr(self.gen, "model_name", spec.model)

    def frames(self, chunks: Iterator[Chunk], progress: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
        """Yield each chunk's frames (uint8 [n, H, W, 4]) in chunk order; ``progress(n)`` after each chunk."""
        for c in chunks:
            imgs = generate_chunk(self.gen, self.device, c, self.spec.batch_size)
            if progress:
                progress(len(imgs))
            yield imgs

    def close(self) -> None:
        self.gen = None


def _ray():
    try:
        import ray
    except ImportError:
        raise VJError("--ray needs Ray: pip install 'vj[farm]' (or pip install 'ray>=2.9')") from None
    return ray


class _Worker:
    """A Ray actor body: loads the generator once, then generates chunks."""

    def __init__(self, spec: GeneratorSpec):
        self.spec = spec
        self.gen, self.device = load_worker_generator(spec)
        self.pid = os.getpid()

    def info(self) -> dict:
        return {"pid": self.pid, "resolution": int(getattr(self.gen, "resolution", 128)),
                "model_name": getattr(self.gen, "model_name", self.spec.model), "device": str(self.device)}

    def generate(self, chunk: Chunk) -> tuple[int, np.ndarray]:
        return chunk.index, generate_chunk(self.gen, self.device, chunk, self.spec.batch_size)


class RayFarm:
    """Generates chunks on Ray actors and yields them in order.

    Args:
        spec: the generator (``device`` is replaced by "cuda" on GPU actors and "cpu" on CPU actors;
            CPU actors use ``threads`` = 1 unless ``spec.threads`` says otherwise).
        address: a Ray cluster address, "auto" (the running cluster), or None (start a local one, or use the
            one this process already initialised).
        workers: number of actors (default: one per GPU in the cluster; without GPUs one per CPU).
        in_flight: chunks queued per actor.

    Raises:
        VJError: Ray missing, the cluster unreachable, or a worker failing to load the generator.
    """

    kind = "ray"
    MAX_RESTARTS = 3  #: Ray restarts of a dead actor (its in-flight chunks are re-run)
    MAX_RESUBMITS = 8  #: further resubmissions of one chunk after Ray gave up on its actor

    def __init__(self, spec: GeneratorSpec, address: str | None = None, workers: int | None = None,
                 in_flight: int = 2):
        ray = _ray()
        self.ray = ray
        if not ray.is_initialized():
            try:
                ray.init(address=address if address not in (None, "", "local") else None,
                         include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            except Exception as exc:  # noqa: BLE001
                where = f" {address}" if address else ""
                raise VJError(f"--ray{where}: cannot connect to a Ray cluster: {_first_line(exc)}") from None
        res = ray.cluster_resources()
        gpus = int(res.get("GPU", 0))
        if gpus:
            n = workers or gpus
            opts = {"num_gpus": 1, "num_cpus": 1}
            wspec = GeneratorSpec(**{**spec.__dict__, "device": "cuda"})
        else:
            n = workers or max(int(res.get("CPU", 1)), 1)
            opts = {"num_cpus": 1}
            wspec = GeneratorSpec(**{**spec.__dict__, "device": "cpu", "threads": spec.threads or 1})
        self.spec = wspec
        self._actor_cls = ray.remote(max_restarts=self.MAX_RESTARTS, max_task_retries=self.MAX_RESTARTS)(_Worker)
        self._opts = opts
        self.actors = [self._actor_cls.options(**opts).remote(wspec) for _ in range(n)]
        self.in_flight = max(int(in_flight), 1)
        self.resubmitted = 0  #: chunks submitted again after their actor died
        try:
            infos = ray.get([a.info.remote() for a in self.actors])
        except Exception as exc:  # noqa: BLE001 — a worker could not load the model
            self.close()
            raise VJError(f"a Ray worker could not load the generator: {_first_line(exc)}") from None
        self.resolution = infos[0]["resolution"]
        self.model_name = infos[0]["model_name"]
        self.workers = infos
        log.info("ray: %d %s worker(s) (%s)", n, "GPU" if gpus else "CPU", ", ".join(
            f"pid {i['pid']} {i['device']}" for i in infos))

    def frames(self, chunks: Iterator[Chunk], progress: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
        """Yield each chunk's frames (uint8 [n, H, W, 4]) in chunk order; ``progress(n)`` whenever any worker
        finishes a chunk (so the bar counts frames across the cluster)."""
        ray = self.ray
        it = iter(chunks)
        pending: dict = {}  # ref -> (chunk, actor index)
        load = [0] * len(self.actors)
        done: dict[int, np.ndarray] = {}
        tries: dict[int, int] = {}
        next_out = 0
        exhausted = False

        def submit(chunk, avoid=None):
            order = sorted(range(len(self.actors)), key=lambda i: (i == avoid, load[i]))
            i = order[0]
            ref = self.actors[i].generate.remote(chunk)
            pending[ref] = (chunk, i)
            load[i] += 1

        while True:
            while not exhausted and len(pending) < self.in_flight * len(self.actors):
                c = next(it, None)
                if c is None:
                    exhausted = True
                    break
                submit(c)
            if next_out in done:
                yield done.pop(next_out)
                next_out += 1
                continue
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            chunk, i = pending.pop(ref)
            load[i] -= 1
            try:
                idx, imgs = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as exc:
                tries[chunk.index] = tries.get(chunk.index, 0) + 1
                if tries[chunk.index] > self.MAX_RESUBMITS:
                    raise VJError(f"chunk {chunk.index} failed on {tries[chunk.index]} workers: "
                                  f"{_first_line(exc)}") from None
                self.resubmitted += 1
                log.warning("ray: a worker died (%s); chunk %d (frames %d..%d) runs again", _first_line(exc),
                            chunk.index, chunk.first, chunk.first + len(chunk) - 1)
                if not self._alive(i):
                    self.actors[i] = self._actor_cls.options(**self._opts).remote(self.spec)
                submit(chunk, avoid=i)
                continue
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None) or exc
                raise VJError(f"a Ray worker failed: {_first_line(cause)}") from None
            if progress:
                progress(len(imgs))
            done[idx] = imgs

    def _alive(self, i: int) -> bool:
        try:
            self.ray.get(self.actors[i].info.remote(), timeout=30)
            return True
        except Exception:  # noqa: BLE001
            return False

    def close(self) -> None:
        """Kill the actors (the cluster itself stays up if it was there before)."""
        for a in self.actors:
            try:
                self.ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        self.actors = []


def _first_line(exc) -> str:
    s = str(exc).strip()
    return s.splitlines()[0] if s else type(exc).__name__
