"""Runners (vj.engine.gpu): the CPU runner and the capture-failure fallback on any machine, the CUDA graph on GPUs."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from vj.commands.bench import realistic_state_dict
from vj.engine import gpu
from vj.engine.gpu import CPURunner, GraphRunner, make_runner, to_rgba_uint8
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


def test_capture_failure_logs_one_line_and_falls_back(monkeypatch, caplog):
    def boom(fn, stream, warmup):
        raise RuntimeError("operation not permitted when stream is capturing\nsecond line of detail")

    monkeypatch.setattr(gpu, "_capture_graph", boom)
    calls = []
    with caplog.at_level(logging.DEBUG, logger="vj"):
        graph, out = gpu._try_capture(lambda: calls.append(1), None, 3)
    assert graph is None and out is None
    records = [r for r in caplog.records if r.name == "vj"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    msg = records[0].getMessage()
    assert "\n" not in msg and "capture failed" in msg and "RuntimeError" in msg and "eagerly" in msg


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
    runner = GraphRunner(build(tiny), z.shape[0], "cuda", dtype, capture=False)
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
    graph = runner._graph
    a = runner.run(z, c, 0.3)
    b = runner.run(z, c, 0.8)
    assert runner._graph is graph
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


@pytest.mark.cuda
def test_cuda_capture_failure_falls_back_with_one_line(tiny, monkeypatch, caplog):
    def boom(fn, stream, warmup):
        raise RuntimeError("forced")

    monkeypatch.setattr(gpu, "_capture_graph", boom)
    z, c = inputs(1)
    with caplog.at_level(logging.INFO, logger="vj"):
        runner = GraphRunner(build(tiny), 1, "cuda", torch.float16)
    assert not runner.graphed
    assert len([r for r in caplog.records if "capture failed" in r.getMessage()]) == 1
    np.testing.assert_array_equal(runner.run(z, c, 0.5), _eager_reference(tiny, z, c, 0.5))


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
