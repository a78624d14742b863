"""Runners (vj.engine.gpu): the CPU runner and the capture-failure fallback on any machine, the CUDA graph on GPUs."""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import pytest
import torch

from vj.commands.bench import realistic_state_dict
from vj.engine import gpu
from vj.engine.gpu import (CPURunner, FallbackRunner, GraphRunner, Rung, TicketBook, choose_precision, make_runner,
                           plan_rungs, to_rgba_uint8)
from vj.errors import VJError
from vj.models.biggan import BigGANDeep


pytestmark = pytest.mark.usefixtures("torch_state_restored")


@pytest.fixture(scope="module")
def tiny():
    return realistic_state_dict(128, channel_width=8, seed=5)


def build(tiny) -> BigGANDeep:
    config, sd = tiny
    return BigGANDeep.from_published(config, sd)


def inputs(n: int, t: float = 0.5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 128, generator=g).clamp(-2, 2) * t
    c = torch.softmax(3.0 * torch.randn(n, 1000, generator=g), dim=1)
    return z.numpy(), c.numpy()


def expected_uint8(x: np.ndarray) -> np.ndarray:
    """The documented conversion (fp32 arithmetic), written independently in numpy: [N,3,H,W] -> [N,H,W,4] uint8."""
    rgb = np.clip(np.round((x.astype(np.float32) + np.float32(1.0)) * np.float32(127.5)), 0, 255).astype(np.uint8)
    n, _, h, w = x.shape
    out = np.full((n, h, w, 4), 255, np.uint8)
    out[..., :3] = rgb.transpose(0, 2, 3, 1)
    return out


def test_to_rgba_uint8_matches_the_formula():
    x = torch.tensor([-1.5, -1.0, -0.999, 0.0, 0.5, 0.999, 1.0, 2.0]).reshape(1, 1, 2, 4).repeat(2, 3, 1, 1)
    x[1] *= -0.5
    got = to_rgba_uint8(x)
    assert got.dtype == torch.uint8 and got.shape == (2, 2, 4, 4)
    np.testing.assert_array_equal(got.numpy(), expected_uint8(x.numpy()))
    assert got[0, 0, 1, 0] == 0 and got[0, 1, 2, 0] == 255 and got[0, 0, 3, 0] == 128  # -1 -> 0, 1 -> 255
    half = to_rgba_uint8(x.half().to(memory_format=torch.channels_last))
    np.testing.assert_array_equal(half.numpy(), expected_uint8(x.half().float().numpy()))


def test_cpu_runner_output_is_the_float_output_converted(tiny):
    runner = make_runner(build(tiny), batch_size=2, device="cpu", dtype=torch.float32, threads=1)
    assert isinstance(runner, CPURunner) and not runner.graphed
    z, c = inputs(2)
    frames = runner.run(z, c, 0.5)
    assert frames.dtype == np.uint8 and frames.shape == (2, 128, 128, 4)
    assert (frames[..., 3] == 255).all()
    with torch.inference_mode():  # the runner's own (channels_last) generator, converted independently
        x = runner.gen(torch.from_numpy(z), torch.from_numpy(c), 0.5).float().numpy()
    np.testing.assert_array_equal(frames, expected_uint8(x))
    with torch.inference_mode():  # and a separate plain NCHW fp32 model: equal up to one rounding step
        y = build(tiny)(torch.from_numpy(z), torch.from_numpy(c), 0.5).numpy()
    diff = np.abs(frames.astype(int) - expected_uint8(y).astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99
    assert frames[..., :3].std() > 10  # a real image, not a flat one


def test_cpu_runner_tickets_alternate_and_keep_frames_apart(tiny):
    runner = make_runner(build(tiny), batch_size=1, device="cpu", threads=1)
    za, ca = inputs(1, seed=1)
    zb, cb = inputs(1, seed=2)
    solo_a, solo_b = runner.run(za, ca, 0.3), runner.run(zb, cb, 0.9)
    assert not np.array_equal(solo_a, solo_b)
    ta = runner.submit(za, ca, 0.3)
    tb = runner.submit(zb, cb, 0.9)  # two outstanding: the second must not overwrite the first
    with pytest.raises(RuntimeError, match="outstanding"):
        runner.submit(za, ca, 0.3)
    assert runner.ready(ta) and runner.ready(tb)
    out = np.zeros_like(solo_a)
    assert runner.result(ta, out=out) is out
    np.testing.assert_array_equal(out, solo_a)
    np.testing.assert_array_equal(runner.result(tb), solo_b)
    with pytest.raises(KeyError):
        runner.result(tb)
    with pytest.raises(ValueError, match="noise"):
        runner.submit(np.zeros((2, 128), np.float32), ca, 0.5)
    with pytest.raises(ValueError, match="truncation"):
        runner.submit(za, ca, [0.1, 0.2])
    with pytest.raises(ValueError, match="not finite"):
        runner.submit(za * np.nan, ca, 0.5)
    runner.close()
    with pytest.raises(RuntimeError, match="closed"):
        runner.submit(za, ca, 0.5)


def test_cpu_runner_per_image_truncation_and_bf16(tiny):
    runner = make_runner(build(tiny), batch_size=2, device="cpu", dtype=torch.bfloat16, threads=1)
    z, c = inputs(2)
    a = runner.run(z, c, np.array([0.2, 0.8], np.float32))
    b = runner.run(z, c, 0.2)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], b[1])


def test_cpu_runner_runs_the_cppn():
    from vj.models.cppn import CPPN

    runner = make_runner(CPPN(resolution=64, seed=1), batch_size=1, device="cpu", threads=1)
    z, c = inputs(1)
    frames = runner.run(z, c, 0.7)
    assert frames.shape == (1, 64, 64, 4) and frames[..., :3].std() > 1


def test_cuda_runner_without_cuda_is_a_user_error(tiny):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(VJError, match="CUDA"):
        make_runner(build(tiny), 1, device="cuda")
    with pytest.raises(VJError, match="CUDA"):
        GraphRunner(build(tiny), 1, device="cuda")
    with pytest.raises(VJError, match="device"):
        make_runner(build(tiny), 1, device="tpu")


# ---------------------------------------------------------------------------------------------------------------
# CUDA (skipped without a GPU)
# ---------------------------------------------------------------------------------------------------------------


def _eager_reference(tiny, z, c, t, dtype=torch.float16):
    runner = GraphRunner(build(tiny), z.shape[0], "cuda", dtype, capture=False)  # the eager CUDA rung
    try:
        return runner.run(z, c, t)
    finally:
        runner.close()


@pytest.mark.cuda
def test_graph_replay_matches_eager(tiny):
    z, c = inputs(2)
    runner = GraphRunner(build(tiny), 2, "cuda", torch.float16)
    assert runner.graphed
    got = runner.run(z, c, 0.5)
    want = _eager_reference(tiny, z, c, 0.5)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 2
    with torch.inference_mode():
        x = build(tiny)(torch.from_numpy(z), torch.from_numpy(c), 0.5).numpy()
    diff = np.abs(got.astype(int) - expected_uint8(x).astype(int))
    assert diff.mean() < 0.5 and diff.max() <= 4  # fp16 vs fp32


@pytest.mark.cuda
def test_truncation_changes_without_recapture(tiny):
    z, c = inputs(1)
    runner = GraphRunner(build(tiny), 1, "cuda", torch.float16)
    assert runner.graphed
    a = runner.run(z, c, 0.3)
    b = runner.run(z, c, 0.8)
    assert runner.graphed
    assert not np.array_equal(a, b)
    assert np.abs(b.astype(int) - _eager_reference(tiny, z, c, 0.8).astype(int)).max() <= 2
    assert np.array_equal(runner.run(z, c, 0.3), a)


@pytest.mark.cuda
def test_alternating_buffers_keep_pipelined_frames_apart(tiny):
    runner = GraphRunner(build(tiny), 1, "cuda", torch.float16)
    batches = [inputs(1, seed=s) for s in range(5)]
    solo = [runner.run(z, c, 0.5) for z, c in batches]
    tickets = [runner.submit(*batches[0], 0.5)]
    got = []
    for z, c in batches[1:]:
        tickets.append(runner.submit(z, c, 0.5))  # frame k+1 in flight while frame k is collected
        got.append(runner.result(tickets[-2]))
    got.append(runner.result(tickets[-1]))
    for g, s in zip(got, solo):
        np.testing.assert_array_equal(g, s)


def test_runner_leaves_the_callers_generator_unchanged(tiny):
    gen = build(tiny)
    before = {k: (v.dtype, v.stride()) for k, v in gen.state_dict().items()}
    runner = make_runner(gen, 1, "cpu", dtype=torch.bfloat16, threads=1)
    assert runner.gen.generator.to_rgb.weight.dtype == torch.bfloat16
    assert {k: (v.dtype, v.stride()) for k, v in gen.state_dict().items()} == before
    z, c = inputs(1)
    with torch.inference_mode():  # the original still runs eagerly (the live engine's fallback)
        assert gen(torch.from_numpy(z), torch.from_numpy(c), 0.5).dtype == torch.float32


def test_make_runner_cpu_default_dtype(tiny, monkeypatch):
    from vj.models import fast

    monkeypatch.setattr(fast, "native_bf16_cpu", lambda: True)
    assert make_runner(build(tiny), 1, "cpu", threads=1).dtype == torch.bfloat16
    from vj.models.cppn import CPPN

    assert make_runner(CPPN(resolution=32), 1, "cpu", threads=1).dtype == torch.float32
    monkeypatch.setattr(fast, "native_bf16_cpu", lambda: False)
    assert make_runner(build(tiny), 1, "cpu", threads=1).dtype == torch.float32


def test_to_rgba_uint8_nan_is_mid_grey():
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0]).reshape(1, 1, 1, 4).repeat(1, 3, 1, 1)
    got = to_rgba_uint8(x)[0, 0, :, 0].tolist()
    assert got == [128, 255, 0, 128]


# ---------------------------------------------------------------------------------------------------------------
# Tickets own their slots (issue 9): the same TicketBook serves every runner
# ---------------------------------------------------------------------------------------------------------------


def _ticket_sequence(runner):
    """submit t0, submit t1, take t1, submit t2, take t0: t0's own frame, then t2's; bad tickets are clear errors."""
    batches = [inputs(1, seed=s) for s in (11, 12, 13)]
    solo = [runner.run(z, c, 0.6) for z, c in batches]
    assert not np.array_equal(solo[0], solo[1]) and not np.array_equal(solo[0], solo[2])
    t0 = runner.submit(*batches[0], 0.6)
    t1 = runner.submit(*batches[1], 0.6)
    np.testing.assert_array_equal(runner.result(t1), solo[1])
    t2 = runner.submit(*batches[2], 0.6)  # gets the slot t1 freed, never t0's
    np.testing.assert_array_equal(runner.result(t0), solo[0])
    np.testing.assert_array_equal(runner.result(t2), solo[2])
    with pytest.raises(KeyError, match="already taken"):
        runner.result(t0)
    with pytest.raises(KeyError, match="never issued"):
        runner.result(t2 + 100)
    with pytest.raises(KeyError, match="never issued"):
        runner.result(-1)


def test_ticket_sequence_on_the_cpu_runner_with_the_cppn():
    from vj.models.cppn import CPPN

    runner = make_runner(CPPN(resolution=48, seed=2), 1, "cpu", threads=1)
    assert isinstance(runner, CPURunner) and runner.dtype == torch.float32
    _ticket_sequence(runner)


def test_ticket_book_slots():
    book = TicketBook(2)
    t0, s0 = book.issue()
    t1, s1 = book.issue()
    assert {s0, s1} == {0, 1}
    with pytest.raises(RuntimeError, match="outstanding"):
        book.issue()
    assert book.take(t1) == s1
    t2, s2 = book.issue()
    assert s2 == s1 and book.slot(t0) == s0 and book.outstanding == (t0, t2)
    with pytest.raises(KeyError, match="already taken"):
        book.slot(t1)


# ---------------------------------------------------------------------------------------------------------------
# The CUDA code paths on a CPU: GraphRunner and the fallback ladder with a stand-in for torch.cuda.
# The runner's own code runs for real (staging, replay, copies, flag, slots, discard, ladder); only the CUDA
# primitives are replaced, and faults are injected where they happen on a card: in the capture context's exit,
# in stream creation, in the generator's output.
# ---------------------------------------------------------------------------------------------------------------


class FakeCuda:
    """torch.cuda's names used by GraphRunner, executing synchronously on the CPU.

    ``graph`` captures like torch.cuda.graph: warm-up has run, the body runs once; ``CUDAGraph.replay`` re-runs
    the captured runner's ``_forward`` (a stand-in for re-launching the recorded kernels on the same static
    buffers). Faults: ``fail_capture_exit`` (count of captures whose exit raises), ``fail_streams``.
    """

    def __init__(self):
        self.fail_capture_exit = 0
        self.fail_streams = False
        self.pools_alive: set[int] = set()
        self.resets = 0
        self.streams_made = 0
        self.captures = 0
        self.replays = 0
        self._pool_id = 0

    class Event:
        def __init__(self, blocking=False, enable_timing=False):
            pass

        def record(self, stream=None):
            pass

        def synchronize(self):
            pass

        def query(self):
            return True

    def Stream(self, device=None):
        if self.fail_streams:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        self.streams_made += 1
        return _FakeStream()

    def current_stream(self, device=None):
        return _FakeStream()

    def stream(self, s):
        return contextlib.nullcontext()

    def device(self, d):
        return contextlib.nullcontext()

    def synchronize(self, device=None):
        pass

    def empty_cache(self):
        pass

    def graph_pool_handle(self):
        self._pool_id += 1
        self.pools_alive.add(self._pool_id)
        return _FakePool(self, self._pool_id)

    def CUDAGraph(self):
        return _FakeGraph(self)

    def graph(self, g, pool=None, stream=None):
        return _FakeCapture(self, g, pool)


class _FakeStream:
    def wait_stream(self, other):
        pass

    def wait_event(self, event):
        pass


class _FakePool:
    def __init__(self, cuda, pid):
        self.cuda, self.pid = cuda, pid

    def __del__(self):
        self.cuda.pools_alive.discard(self.pid)


class _FakeGraph:
    def __init__(self, cuda):
        self.cuda, self.fn = cuda, None

    def replay(self):
        self.cuda.replays += 1
        self.fn()

    def reset(self):
        self.cuda.resets += 1
        self.fn = None


class _FakeCapture:
    def __init__(self, cuda, g, pool):
        self.cuda, self.g, self.pool = cuda, g, pool

    def __enter__(self):
        import sys

        self.g.fn = sys._getframe(1).f_locals["self"]._forward  # the capturing runner
        return self

    def __exit__(self, *exc):
        self.cuda.captures += 1
        if self.cuda.fail_capture_exit > 0:
            self.cuda.fail_capture_exit -= 1
            raise RuntimeError("CUDA error: operation failed due to a previous error during capture\nmore")
        return False


@pytest.fixture
def fake():
    return FakeCuda()


LADDER = [Rung("cuda-graph", torch.bfloat16), Rung("cuda-graph", torch.float32), Rung("cuda-eager", torch.float32),
          Rung("cpu", torch.float32)]


def ladder(gen, fake, rungs=LADDER, batch=1):
    return FallbackRunner(gen, batch, "cpu", rungs, threads=1, cuda=fake)


def _vj_warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "vj" and r.levelno == logging.WARNING]


def test_graph_runner_on_the_stand_in_matches_the_cpu_runner(tiny, fake):
    runner = GraphRunner(build(tiny), 2, "cpu", torch.float32, cuda=fake)
    assert runner.graphed and runner.kind == "cuda-graph" and fake.captures == 1
    z, c = inputs(2)
    got = runner.run(z, c, 0.5)
    assert fake.replays == 1 and runner.last_finite
    with torch.inference_mode():
        x = build(tiny)(torch.from_numpy(z), torch.from_numpy(c), 0.5).numpy()
    diff = np.abs(got.astype(int) - expected_uint8(x).astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99
    _ticket_sequence(GraphRunner(build(tiny), 1, "cpu", torch.float32, cuda=fake))


def test_rung_graph_at_the_chosen_precision_when_all_is_well(tiny, fake, caplog):
    with caplog.at_level(logging.INFO, logger="vj"):
        runner = ladder(build(tiny), fake)
    assert runner.rung == LADDER[0] and runner.graphed and runner.dtype == torch.bfloat16
    assert not runner.steps and not _vj_warnings(caplog)
    _ticket_sequence(runner)


def test_rung_capture_raising_at_its_end_discards_graph_pool_and_streams(tiny, fake, caplog):
    fake.fail_capture_exit = 1
    with caplog.at_level(logging.INFO, logger="vj"):
        runner = ladder(build(tiny), fake)
    assert runner.rung == LADDER[1] and runner.graphed and runner.dtype == torch.float32
    assert fake.resets == 1  # the failed graph was reset ...
    import gc

    gc.collect()
    assert len(fake.pools_alive) == 1  # ... its pool released (only the new graph's pool lives)
    assert fake.streams_made == 4  # fresh streams for the new rung (2 each)
    warn = _vj_warnings(caplog)
    assert len(warn) == 1 and "\n" not in warn[0]
    assert "CUDA graph bf16 failed" in warn[0] and "capture" in warn[0] and "trying CUDA graph fp32" in warn[0]
    z, c = inputs(1)
    with torch.inference_mode():
        x = build(tiny)(torch.from_numpy(z), torch.from_numpy(c), 0.5).numpy()
    assert np.abs(runner.run(z, c, 0.5).astype(int) - expected_uint8(x).astype(int)).max() <= 1


def test_rung_eager_cuda_when_every_capture_fails(tiny, fake, caplog):
    fake.fail_capture_exit = 99
    with caplog.at_level(logging.INFO, logger="vj"):
        runner = ladder(build(tiny), fake)
    assert runner.rung == LADDER[2] and not runner.graphed and runner.kind == "cuda-eager"
    assert len(_vj_warnings(caplog)) == 2
    _ticket_sequence(runner)


def test_rung_cpu_when_no_cuda_rung_builds(tiny, fake, caplog):
    fake.fail_streams = True
    with caplog.at_level(logging.INFO, logger="vj"):
        runner = ladder(build(tiny), fake)
    assert runner.rung == LADDER[3] and isinstance(runner.inner, CPURunner) and runner.device.type == "cpu"
    warn = _vj_warnings(caplog)
    assert len(warn) == 3 and all("illegal memory access" in w for w in warn)
    assert "trying CPU runner fp32" in warn[-1]
    _ticket_sequence(runner)


def _poison_bf16(gen, what="nan", when=lambda: True):
    """A forward hook on the generator's convolution stack: its bf16 output becomes NaN (or noisy)."""

    def hook(module, args, out):
        if out.dtype != torch.bfloat16 or not when():
            return None
        if what == "nan":
            return out * float("nan")
        return out + 0.5 * torch.randn(out.shape, generator=torch.Generator().manual_seed(0)).to(out.dtype)

    gen.to_rgb.register_forward_hook(hook)  # deep-copied with the module into every rung
    return gen


def test_rung_self_check_nan_steps_down(tiny, fake, caplog):
    with caplog.at_level(logging.INFO, logger="vj"):
        runner = ladder(_poison_bf16(build(tiny)), fake)
    assert runner.rung == LADDER[1]
    warn = _vj_warnings(caplog)
    assert len(warn) == 1 and "self-check: NaN/inf" in warn[0]


def test_rung_self_check_psnr_steps_down(tiny, fake, caplog):
    with caplog.at_level(logging.INFO, logger="vj"):
        runner = ladder(_poison_bf16(build(tiny), what="noise"), fake)
    assert runner.rung == LADDER[1]
    warn = _vj_warnings(caplog)
    assert len(warn) == 1 and "PSNR" in warn[0] and "< 30 dB" in warn[0]


def test_rung_run_time_nan_flag_steps_down_and_remakes_the_frame(tiny, fake, caplog):
    poison = {"on": False}
    runner = ladder(_poison_bf16(build(tiny), when=lambda: poison["on"]), fake)
    assert runner.rung == LADDER[0]
    batches = [inputs(1, seed=s) for s in (21, 22)]
    with torch.inference_mode():
        want = [expected_uint8(build(tiny)(torch.from_numpy(z), torch.from_numpy(c), 0.5).numpy()) for z, c in batches]
    poison["on"] = True
    with caplog.at_level(logging.INFO, logger="vj"):
        t0 = runner.submit(*batches[0], 0.5)
        t1 = runner.submit(*batches[1], 0.5)  # in flight on the poisoned rung too
        f0 = runner.result(t0)
        f1 = runner.result(t1)
    assert runner.rung == LADDER[1] and runner.last_finite
    for got, w in zip((f0, f1), want):  # both remade on the fp32 graph: their own frames, not grey
        assert np.abs(got.astype(int) - w.astype(int)).max() <= 1
    warn = _vj_warnings(caplog)
    assert len(warn) == 1 and "NaN/inf in a frame at run time" in warn[0]


def test_plan_rungs_and_precision_rules(tiny):
    from vj.models.cppn import CPPN

    f16, bf16, f32 = torch.float16, torch.bfloat16, torch.float32
    assert [str(r) for r in plan_rungs(f16, True, (9, 0), cpu_dtype=bf16)] == [
        "CUDA graph fp16", "CUDA graph bf16", "CUDA graph fp32", "eager CUDA fp32", "CPU runner bf16"]
    assert [str(r) for r in plan_rungs(f16, True, (7, 5))] == [
        "CUDA graph fp16", "CUDA graph fp32", "eager CUDA fp32", "CPU runner fp32"]
    assert [str(r) for r in plan_rungs(f16, False, (9, 0))] == [
        "CUDA graph fp16", "CUDA graph fp32", "eager CUDA fp32", "CPU runner fp32"]
    assert [str(r) for r in plan_rungs(f32, True, (6, 1), capture=False)] == ["eager CUDA fp32", "CPU runner fp32"]
    cuda = torch.device("cuda", 0)
    gen = build(tiny)
    assert choose_precision("auto", cuda, gen, (8, 0))[0] == f16
    assert choose_precision("auto", cuda, gen, (6, 1)) == (f32, "compute capability 6.1 < 7.0 (no fp16 tensor cores)")
    assert choose_precision("bf16", cuda, gen, (7, 5))[0] == f32
    assert choose_precision("bf16", cuda, gen, (8, 6))[0] == bf16
    assert choose_precision("fp16", cuda, CPPN(resolution=32), (9, 0)) == (f32, "the CPPN always runs fp32")
    with pytest.raises(VJError, match="precision"):
        choose_precision("fp8", cuda, gen, (9, 0))


def test_cppn_stays_fp32_on_every_runner(fake):
    from vj.models.cppn import CPPN

    runner = GraphRunner(CPPN(resolution=32, seed=1), 1, "cpu", torch.float16, cuda=fake)
    assert runner.dtype == torch.float32
    assert all(v.dtype == torch.float32 for v in runner.gen.state_dict().values() if v.is_floating_point())
    assert runner.run(*inputs(1), 0.5).shape == (1, 32, 32, 4)
    assert CPURunner(CPPN(resolution=32), 1, torch.bfloat16, threads=1).dtype == torch.float32


def test_close_releases_the_generator_and_buffers(tiny, fake):
    import gc
    import weakref

    runner = GraphRunner(build(tiny), 1, "cpu", torch.float32, cuda=fake)
    runner.run(*inputs(1), 0.5)
    refs = [weakref.ref(runner.gen), weakref.ref(runner._static), weakref.ref(runner._host_out[0])]
    runner.close()
    gc.collect()
    assert all(r() is None for r in refs) and fake.resets == 1 and not fake.pools_alive
    cpu = CPURunner(build(tiny), 1, threads=1)
    ref = weakref.ref(cpu.gen)
    cpu.close()
    gc.collect()
    assert ref() is None


# ---------------------------------------------------------------------------------------------------------------
# The same faults on a real card (skipped without a GPU)
# ---------------------------------------------------------------------------------------------------------------


def _cuda_ladder(gen, dtype=torch.float16):
    cc = torch.cuda.get_device_capability()
    return FallbackRunner(gen, 1, "cuda", plan_rungs(dtype, True, cc), threads=1)


@pytest.mark.cuda
def test_cuda_capture_raising_at_its_end_falls_back_to_a_fresh_fp32_graph(tiny, monkeypatch, caplog):
    real = torch.cuda.graph
    state = {"left": 1}

    class failing_graph(real):  # the real capture, then an error as capture_end would raise it
        def __exit__(self, *exc):
            super().__exit__(*exc)
            if state["left"]:
                state["left"] -= 1
                raise RuntimeError("forced failure at capture end")
            return False

    monkeypatch.setattr(torch.cuda, "graph", failing_graph)
    with caplog.at_level(logging.INFO, logger="vj"):
        runner = _cuda_ladder(build(tiny))
    assert runner.graphed and runner.dtype in (torch.bfloat16, torch.float32)
    assert len(_vj_warnings(caplog)) == 1
    z, c = inputs(1)
    with torch.inference_mode():
        x = build(tiny)(torch.from_numpy(z), torch.from_numpy(c), 0.5).numpy()
    diff = np.abs(runner.run(z, c, 0.5).astype(int) - expected_uint8(x).astype(int))
    assert diff.mean() < 1.5 and diff.max() <= 16  # bf16 or fp32 against fp32
    runner.close()


@pytest.mark.cuda
def test_cuda_run_time_nan_flag_steps_down(tiny, caplog):
    runner = _cuda_ladder(build(tiny))
    assert runner.dtype == torch.float16 and runner.graphed
    z, c = inputs(1)
    assert runner.run(z, c, 0.5) is not None and runner.last_finite
    with torch.no_grad():  # a weight the captured graph reads at every replay turns NaN (as a bad kernel would)
        runner.gen.generator.to_rgb.bias.fill_(float("nan"))
    torch.cuda.synchronize()  # the fill (default stream) lands before the next replay (the runner's stream)
    with caplog.at_level(logging.INFO, logger="vj"):
        frames = runner.run(z, c, 0.5)
    assert runner.last_finite and runner.rung != Rung("cuda-graph", torch.float16)  # remade on the next rung
    with torch.inference_mode():
        x = build(tiny)(torch.from_numpy(z), torch.from_numpy(c), 0.5).numpy()
    diff = np.abs(frames.astype(int) - expected_uint8(x).astype(int))
    assert diff.mean() < 1.5 and diff.max() <= 16  # remade in bf16 (H100/H200) or fp32
    assert sum("NaN/inf in a frame at run time" in w for w in _vj_warnings(caplog)) == 1
    runner.close()


@pytest.mark.cuda
def test_cuda_close_returns_memory_allocated_to_its_start(tiny):
    import gc

    warm = GraphRunner(build(tiny), 1, "cuda", torch.float16)  # CUDA context, cuBLAS/cuDNN handles: made once
    warm.run(*inputs(1), 0.5)
    warm.close()
    gc.collect()
    torch.cuda.synchronize()
    start = torch.cuda.memory_allocated()
    runner = GraphRunner(build(tiny), 1, "cuda", torch.float16)
    runner.run(*inputs(1), 0.5)
    assert torch.cuda.memory_allocated() > start
    runner.close()
    del runner
    gc.collect()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == start


@pytest.mark.cuda
def test_cuda_fp16_keeps_the_residual_trunk_in_fp32(tiny):
    from vj.models.fast import to_precision

    gen = to_precision(build(tiny).cuda(), torch.float16)
    assert gen.norm_dtype == torch.float32
    z, c = inputs(1)
    seen = []
    gen.generator.layers[-1].register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    with torch.inference_mode():
        y = gen(torch.from_numpy(z).cuda(), torch.from_numpy(c).cuda(), 0.5)
    assert y.dtype == torch.float16 and seen == [torch.float32]


def test_make_runner_auto_logs_device_precision_runner_and_why(tiny, caplog):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: auto picks it")
    with caplog.at_level(logging.INFO, logger="vj"):
        runner = make_runner(build(tiny), 1, "auto", threads=1)
    lines = [r.getMessage() for r in caplog.records if r.name == "vj" and "generator:" in r.getMessage()]
    assert isinstance(runner, CPURunner) and len(lines) == 1
    line = lines[0]
    assert line.startswith("generator: cpu") and "CPU runner" in line and "no CUDA device" in line
    assert ("bf16" in line and "native bf16" in line) or ("fp32" in line and "no native bf16" in line)
