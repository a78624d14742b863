"""Mixed precision (fp16/bf16 with fp32 batch-norm maths) and the CPU fast path, on tiny realistic models.

Weights: :func:`vj.commands.bench.realistic_state_dict` (converged spectral-norm vectors, batch-norm statistics
calibrated on the model's own activations), so images have a realistic range and PSNR means something.
"""

from __future__ import annotations

import math

import pytest
import torch

from vj.commands.bench import realistic_state_dict
from vj.models.biggan import BigGANDeep
from vj.models.fast import MixedPrecisionBigGAN, physical_cores, prepare_cpu, psnr, to_precision, use_cpu_attention

TRUNCATIONS = (0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def tiny():
    """(config, published state dict) for a 128 px model at channel width 8."""
    return realistic_state_dict(128, channel_width=8, seed=3)


def build(tiny) -> BigGANDeep:
    config, sd = tiny
    return BigGANDeep.from_published(config, sd)


def inputs(n: int, t: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 128, generator=g).clamp(-2, 2) * t
    c = torch.softmax(3.0 * torch.randn(n, 1000, generator=g), dim=1)  # soft mixes
    c[0] = 0.0
    c[0, 281] = 1.0  # and one one-hot
    return z, c


def test_realistic_weights_give_a_realistic_image(tiny):
    gen = build(tiny)
    z, c = inputs(4, 0.5)
    with torch.inference_mode():
        y = gen(z, c, 0.5)
    assert torch.isfinite(y).all()
    per_channel_std = y.std(dim=(2, 3))
    assert per_channel_std.min() > 0.05, "image is flat"
    assert (y.abs() > 0.99).float().mean() < 0.2, "image is saturated"
    _, sd = tiny
    assert sd["generator.layers.0.bn_0.running_vars"].min() > 0


def test_to_precision_keeps_batch_norm_in_fp32(tiny):
    gen = to_precision(build(tiny), torch.bfloat16)
    assert isinstance(gen, MixedPrecisionBigGAN)
    g = gen.generator
    assert g.bn_stats.dtype == torch.float32
    assert g.bn_proj.weight.dtype == torch.float32 and g.class_embed.weight.dtype == torch.float32
    assert g.to_rgb.weight.dtype == torch.bfloat16 and g.gen_z.weight.dtype == torch.bfloat16
    convs = [m for m in g.layers.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.dtype == torch.bfloat16 for m in convs)
    z, c = inputs(2, 0.4)
    with torch.inference_mode():
        cond, scale, shift = gen.coefficients(z, c, 0.4)
        out = gen(z, c, 0.4)
    assert cond.dtype == scale.dtype == shift.dtype == torch.float32
    assert out.dtype == torch.bfloat16 and out.shape == (2, 3, 128, 128)


# Floors sit ~8 dB under what this tiny model measures (bf16 ~51 dB, fp16 ~68 dB); the full-size figures are in
# docs/benchmarks.md (benchmarks/numerics.py).
@pytest.mark.parametrize("dtype,floor_db", [(torch.bfloat16, 42.0), (torch.float16, 60.0)])
def test_low_precision_output_close_to_fp32(tiny, dtype, floor_db):
    ref = build(tiny)
    low = to_precision(build(tiny), dtype)
    worst = math.inf
    with torch.inference_mode():
        for i, t in enumerate(TRUNCATIONS):
            z, c = inputs(3, t, seed=i)
            y32 = ref(z, c, t)
            y = low(z, c, t)
            assert torch.isfinite(y).all()
            worst = min(worst, psnr(y, y32))
        # per-image truncation tensor, mixed values
        z, c = inputs(3, 0.6, seed=99)
        tt = torch.tensor([0.13, 0.5, 0.97])
        worst = min(worst, psnr(low(z, c, tt), ref(z, c, tt)))
    assert worst >= floor_db, f"{dtype} worst PSNR {worst:.1f} dB < {floor_db} dB"


def test_fp32_truncation_resolves_steps_bf16_cannot(tiny):
    """0.5 and 0.5015 are the same bf16 number; the fp32 interpolation still tells them apart, like fp32 does."""
    assert torch.tensor(0.5015, dtype=torch.bfloat16) == torch.tensor(0.5, dtype=torch.bfloat16)
    ref = build(tiny)
    low = to_precision(build(tiny), torch.bfloat16)
    z, c = inputs(1, 0.5)
    with torch.inference_mode():
        _, s0, h0 = low.coefficients(z, c, 0.5)
        _, s1, h1 = low.coefficients(z, c, 0.5015)
        m0, v0 = ref.bn_statistics(torch.tensor([[0.5015]]))
    assert not torch.equal(h0, h1) and not torch.equal(s0, s1)
    # the fp32 coefficients are exactly the fp32 model's own statistics, interpolated
    gb = ref.bn_proj(torch.cat([z, torch.nn.functional.linear(c, ref.class_embed.weight)], dim=1))
    want_scale = gb[:, : sum(ref.bn_sizes)] * torch.rsqrt(v0 + ref.bn_eps)
    torch.testing.assert_close(s1, want_scale, rtol=1e-6, atol=1e-6)


def test_to_precision_float32_and_back(tiny):
    gen = to_precision(build(tiny), torch.float16)
    back = to_precision(gen, torch.float32)
    assert isinstance(back, BigGANDeep) and back.to_rgb.weight.dtype == torch.float32
    with pytest.raises(ValueError):
        to_precision(back, torch.float64)


def test_to_precision_rejects_other_models():
    from vj.models.cppn import CPPN

    with pytest.raises(TypeError, match="BigGANDeep"):
        to_precision(CPPN(resolution=32), torch.float16)


def test_channels_last_mixed_precision_matches_contiguous(tiny):
    a = to_precision(build(tiny), torch.bfloat16)
    b = to_precision(build(tiny).to(memory_format=torch.channels_last), torch.bfloat16)
    assert b.generator.to_rgb.weight.is_contiguous(memory_format=torch.channels_last)
    z, c = inputs(2, 0.7)
    with torch.inference_mode():
        assert psnr(b(z, c, 0.7), a(z, c, 0.7)) > 35.0


def test_prepare_cpu_sets_threads_layout_and_dtype(tiny):
    gen = prepare_cpu(build(tiny), threads=1)
    assert torch.get_num_threads() == 1
    assert gen.to_rgb.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.set_flush_denormal(True)  # supported here, and prepare_cpu turned it on
    bf = prepare_cpu(build(tiny), dtype=torch.bfloat16, threads=1)
    assert isinstance(bf, MixedPrecisionBigGAN)
    with pytest.raises(ValueError):
        prepare_cpu(build(tiny), threads=0)


@pytest.mark.parametrize("dtype,floor_db", [(torch.float32, 90.0), (torch.bfloat16, 60.0)])
def test_cpu_attention_matches_sdpa(tiny, dtype, floor_db):
    sdpa = to_precision(build(tiny), dtype)
    mine = to_precision(build(tiny), dtype)
    assert use_cpu_attention(mine) == 1 and use_cpu_attention(getattr(sdpa, "generator", sdpa).layers[0]) == 0
    z, c = inputs(2, 0.8)
    with torch.inference_mode():
        a, b = sdpa(z, c, 0.8), mine(z, c, 0.8)
    assert psnr(b, a) >= floor_db


def test_physical_cores_is_sane():
    import os

    n = physical_cores()
    assert 1 <= n <= (os.cpu_count() or 1)


def test_psnr():
    a = torch.zeros(1, 3, 4, 4)
    assert psnr(a, a) == math.inf
    b = a + 0.02  # MSE 4e-4, peak-to-peak 2 -> 10 log10(4 / 4e-4) = 40 dB
    assert psnr(b, a) == pytest.approx(40.0)
    assert math.isnan(psnr(a + float("nan"), a))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype,floor_db", [(torch.float16, 60.0), (torch.bfloat16, 42.0)])
def test_low_precision_on_cuda(tiny, dtype, floor_db):
    ref = build(tiny)
    low = to_precision(build(tiny).cuda().to(memory_format=torch.channels_last), dtype)
    with torch.inference_mode():
        for i, t in enumerate((0.1, 0.5, 1.0)):
            z, c = inputs(3, t, seed=i)
            tt = torch.full((3,), t, device="cuda")  # truncation as a device tensor, as the CUDA graph feeds it
            y = low(z.cuda(), c.cuda(), tt)
            assert torch.isfinite(y).all() and y.dtype == dtype
            assert psnr(y, ref(z, c, t)) >= floor_db


def test_fp16_keeps_the_residual_trunk_in_fp32_where_fp16_would_overflow(tiny):
    """A residual trunk past fp16's 65504: our fp16 mode (fp32 trunk) stays finite, an fp16 trunk does not.

    The last two blocks (after the attention) each add a constant 40000 to the trunk through their final bias
    (fits fp16 on its own); the batch norms that read the trunk get their means shifted to match, so the
    normalised activations, and the fp32 image, are unchanged in kind. The trunk then holds ~80000.
    """
    big = 40000.0
    gen = build(tiny)
    blocks = [layer for layer in gen.layers if hasattr(layer, "conv_3")]
    sizes = gen.bn_sizes
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    with torch.no_grad():
        for k, shift in ((len(blocks) - 2, 0.0), (len(blocks) - 1, big)):
            blocks[k].conv_3.bias.add_(big)
            i = starts[4 * k]  # this block's first batch norm reads the trunk
            gen.bn_stats[:, i: i + sizes[4 * k]] += shift
        gen.bn_stats[:, starts[-1]: starts[-1] + sizes[-1]] += 2 * big  # the final batch norm
    z, c = inputs(1, 0.5)
    with torch.inference_mode():
        ref = gen(z, c, 0.5)
        assert torch.isfinite(ref).all() and ref.std() > 0.05
        low = to_precision(gen, torch.float16)
        assert low.norm_dtype == torch.float32
        trunk = []
        hook = gen.layers[-1].register_forward_hook(lambda m, a, out: trunk.append(out))
        y = low(z, c, 0.5)
        hook.remove()
        assert trunk[0].dtype == torch.float32 and trunk[0].max() > 65504  # fp16 could not hold it
        assert torch.isfinite(y).all() and y.dtype == torch.float16 and y.float().std() > 0.05
        naive = gen.synthesize(low.coefficients(z, c, 0.5).to(torch.float16))  # same convolutions, fp16 trunk
        assert not torch.isfinite(naive).all()
