"""BigGAN-deep: parity with the reference package (pytorch-pretrained-biggan), truncation interpolation, layout.

Random weights in the published format come from :func:`vj.models.biggan.random_state_dict` (spectral-norm
vectors converged, batch-norm statistics randomised) and are loaded *strictly* into the reference model, which
proves the format; checkpoints are written by the reference model's own ``state_dict()``.
"""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("pytorch_pretrained_biggan")
from pytorch_pretrained_biggan import BigGAN as RefBigGAN  # noqa: E402
from pytorch_pretrained_biggan import BigGANConfig as RefConfig  # noqa: E402

from vj.models.biggan import (  # noqa: E402
    CONFIGS,
    BigGANConfig,
    BigGANDeep,
    published_shapes,
    random_state_dict,
)

TOL = 1e-4


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def make_pair(config: BigGANConfig, seed: int = 0):
    """(reference model in eval mode, our model, state dict) sharing the same random published weights."""
    sd = random_state_dict(config, seed=seed)
    ref = RefBigGAN(RefConfig.from_dict(config.to_dict()))
    ref.load_state_dict(sd, strict=True)
    ref.eval()
    return ref, BigGANDeep.from_published(config, sd), sd


def inputs(n: int, seed: int = 1, classes: int = 1000):
    g = torch.Generator().manual_seed(seed)
    z = 0.7 * torch.randn(n, 128, generator=g)
    mix = torch.softmax(3.0 * torch.randn(n, classes, generator=g), dim=1)  # soft class mixes
    mix[0] = 0.0
    mix[0, 207] = 1.0  # and one one-hot
    return z, mix


def small(**kw) -> BigGANConfig:
    return BigGANConfig(**{"channel_width": 16, **kw})


#: 16 px, two upsamplings, attention at 8x8: for tests that need many images
TINY = BigGANConfig(output_dim=16, channel_width=4, layers=((True, 16, 8), (False, 8, 4), (True, 4, 2), (False, 2, 1)),
                    attention_layer_position=2)


@pytest.fixture(scope="module")
def tiny_pair():
    return make_pair(TINY, seed=13)


@pytest.fixture(scope="module")
def small_pair():
    return make_pair(small(), seed=3)


# ---------------------------------------------------------------------------------------------------------------
# format and structure


@pytest.mark.parametrize("name", ["biggan-deep-128", "biggan-deep-256", "biggan-deep-512"])
def test_published_keys_and_shapes_match_reference(name):
    width = 128 if name == "biggan-deep-128" else 4  # full 128 layout; 256/512 at a tiny width
    config = BigGANConfig.from_dict({**CONFIGS[name].to_dict(), "channel_width": width})
    ref_sd = RefBigGAN(RefConfig.from_dict(config.to_dict())).state_dict()
    ours = published_shapes(config)
    assert sorted(ours) == sorted(ref_sd)
    assert {k: tuple(v.shape) for k, v in ref_sd.items()} == ours
    if name == "biggan-deep-128":
        assert len(ours) == 506
        assert sum(v.numel() for k, v in ref_sd.items() if not k.endswith(("_u", "_v", "running_means",
                                                                            "running_vars"))) == 50_388_609


def test_attributes_eval_and_no_grad(small_pair):
    _, ours, _ = small_pair
    assert ours.resolution == 128 and ours.model_name == "biggan-deep-128"
    assert ours.dim_z == 128 and ours.num_classes == 1000
    assert not ours.training
    assert not any(p.requires_grad for p in ours.parameters())
    assert ours.to_rgb.weight.shape[0] == 3  # only the RGB filters are kept


def test_256_tiny_structure_and_parity():
    config = BigGANConfig.from_dict({**CONFIGS["biggan-deep-256"].to_dict(), "channel_width": 4})
    ref, ours, _ = make_pair(config, seed=5)
    z, c = inputs(1)
    with torch.no_grad():
        a, b = ref(z, c, 0.5), ours(z, c, 0.5)
    assert b.shape == (1, 3, 256, 256) and ours.resolution == 256
    assert (a - b).abs().max() < TOL


def test_config_validation_rejects_bad_layout():
    from vj.errors import WeightsError

    with pytest.raises(WeightsError, match="must keep or halve"):
        BigGANConfig.from_dict({"layers": [[False, 16, 4]], "attention_layer_position": 0, "output_dim": 4})
    with pytest.raises(WeightsError, match="output_dim"):
        BigGANConfig.from_dict({"output_dim": 256})  # 128 layers with a 256 label
    with pytest.raises(WeightsError, match="16x"):
        BigGANConfig.from_dict({"layers": [[True, 8, 4], [False, 4, 2]], "attention_layer_position": 1,
                                "output_dim": 8})


# ---------------------------------------------------------------------------------------------------------------
# parity


@pytest.mark.parametrize("truncation", [0.4, 0.7, 1.0, 0.41, 0.02])
def test_parity_small(small_pair, truncation):
    ref, ours, _ = small_pair
    z, c = inputs(2)
    with torch.no_grad():
        a, b = ref(z, c, truncation), ours(z, c, truncation)
    assert a.std() > 0.05, "degenerate reference output: the comparison would be meaningless"
    assert b.shape == (2, 3, 128, 128) and b.dtype == torch.float32
    assert (a - b).abs().max() < TOL


def test_truncation_forms_agree_and_per_sample(tiny_pair):
    ref, ours, _ = tiny_pair
    z, c = inputs(3)
    with torch.no_grad():
        a = ours(z, c, 0.5)
        assert torch.equal(a, ours(z, c, torch.tensor(0.5)))
        assert torch.equal(a, ours(z, c, torch.full((3,), 0.5)))
        ts = [0.3, 0.6, 0.9]  # grid points: the reference is exact there
        per = ours(z, c, torch.tensor(ts))
        for i, t in enumerate(ts):
            assert (per[i] - ref(z[i: i + 1], c[i: i + 1], t)[0]).abs().max() < TOL
    with pytest.raises(ValueError):
        ours(z, c, torch.ones(2))


def test_parity_full_128_from_reference_checkpoint(tmp_path):
    """Full-size BigGAN-deep-128 (50.4 M parameters, 506 keys) written by the reference, read by our loader."""
    from vj.models import load_generator

    config = CONFIGS["biggan-deep-128"]
    ref = RefBigGAN(RefConfig())
    ref.load_state_dict(random_state_dict(config, seed=11), strict=True)
    ref.eval()
    torch.save(ref.state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(RefConfig().to_json_string())
    ours = load_generator("biggan-deep-128", weights=tmp_path, download=False)
    assert isinstance(ours, BigGANDeep)
    z, c = inputs(1, seed=4)
    with torch.no_grad():
        for t in (0.4, 0.7, 1.0):
            a, b = ref(z, c, t), ours(z, c, t)
            assert a.std() > 0.05
            assert (a - b).abs().max() < TOL, t


def test_baked_spectral_norm_is_bit_identical_to_reference_eval(small_pair):
    """The reference's eval forward computes W_orig / (u . W_orig v) from the stored u, v; so do we, once."""
    ref, ours, _ = small_pair
    z, c = inputs(1)
    with torch.no_grad():
        ref(z, c, 0.5)  # the spectral-norm hooks set .weight on every wrapped module
    g = ref.generator
    assert torch.equal(ours.gen_z.weight, g.gen_z.weight)
    assert torch.equal(ours.layers[0].conv_1.weight, g.layers[0].conv_1.weight)
    assert torch.equal(ours.to_rgb.weight, g.conv_to_rgb.weight[:3])
    att = g.layers[ours.config.attention_layer_position]
    assert torch.equal(ours.layers[ours.config.attention_layer_position].qkv.weight,
                       torch.cat([att.snconv1x1_theta.weight, att.snconv1x1_phi.weight, att.snconv1x1_g.weight]))


def test_channels_last_matches(small_pair):
    _, ours, sd = small_pair
    cl = BigGANDeep.from_published(ours.config, sd).to(memory_format=torch.channels_last)
    z, c = inputs(1)
    with torch.no_grad():
        a, b = ours(z, c, 0.6), cl(z, c, 0.6)
    assert b.is_contiguous(memory_format=torch.channels_last)
    assert (a - b).abs().max() < 1e-5


# ---------------------------------------------------------------------------------------------------------------
# truncation interpolation


def test_bn_statistics_interpolate_in_the_right_direction(small_pair):
    _, ours, _ = small_pair
    table = ours.bn_stats
    total = sum(ours.bn_sizes)
    for t, lo, w in [(0.404, 20, 0.2), (0.41, 20, 0.5), (0.7, 35, 0.0), (1.0, 49, 1.0), (0.0, 0, 0.0)]:
        mean, var = ours.bn_statistics(torch.tensor([[t]]))
        want = (1 - w) * table[lo] + w * table[lo + 1]
        assert torch.allclose(mean[0], want[:total], atol=1e-5), t
        assert torch.allclose(var[0], want[total:], atol=1e-5), t
    # clamped outside [0, 1]
    assert torch.equal(ours.bn_statistics(torch.tensor([[1.7]]))[0], ours.bn_statistics(torch.tensor([[1.0]]))[0])


def _step_sizes(images: torch.Tensor) -> torch.Tensor:
    return (images[1:] - images[:-1]).flatten(1).abs().amax(dim=1)


def test_truncation_sweep_is_continuous_and_reference_is_not():
    """0.30 -> 0.50 in 0.001 steps: our outputs move smoothly; the reference jumps at every 0.02 grid point."""
    ref, ours, _ = make_pair(TINY, seed=7)
    ts = torch.linspace(0.30, 0.50, 201, dtype=torch.float64)
    z, c = inputs(1, seed=9)
    with torch.no_grad():
        ours_imgs = ours(z.expand(len(ts), -1), c.expand(len(ts), -1), ts.float())
        ref_imgs = torch.cat([ref(z, c, float(t)) for t in ts])
    ours_steps, ref_steps = _step_sizes(ours_imgs), _step_sizes(ref_imgs)
    typical = ours_steps.median()
    assert typical > 0
    assert ours_steps.max() < 4 * typical, (ours_steps.max(), typical)
    # the reference's swapped weights: a jump of ~a whole grid interval at each grid point
    assert ref_steps.max() > 10 * ref_steps.median()
    assert (ref_steps > 4 * ref_steps.median()).sum() >= 9  # about one per grid point in (0.30, 0.50)
    # both agree at grid points
    for k in (0, 20, 100, 200):
        assert (ours_imgs[k] - ref_imgs[k]).abs().max() < TOL


# ---------------------------------------------------------------------------------------------------------------
# graph friendliness


def test_export_has_no_value_dependent_control_flow():
    """torch.export fails on Python branching over tensor values; ours exports with a tensor truncation."""
    _, ours, _ = make_pair(TINY, seed=2)
    z, c = inputs(2)
    t = torch.tensor([0.33, 0.77])
    exported = torch.export.export(ours, (z, c, t), strict=False)
    t2 = torch.tensor([0.51, 0.05])
    with torch.no_grad():
        assert torch.allclose(exported.module()(z, c, t2), ours(z, c, t2), atol=1e-6)


@pytest.mark.cuda
def test_cuda_graph_capture_replays_new_truncation():
    config = BigGANConfig(channel_width=16)
    _, ours, _ = make_pair(config, seed=2)
    ours = ours.cuda()
    z, c = (x.cuda() for x in inputs(2))
    t = torch.full((2,), 0.4, device="cuda")
    with torch.no_grad():
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            ours(z, c, t)
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = ours(z, c, t)
        t.copy_(torch.tensor([0.55, 0.93]))
        graph.replay()
        torch.cuda.synchronize()
        assert torch.allclose(out, ours(z, c, t), atol=1e-4)


def test_config_roundtrip_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIGS["biggan-deep-512"].to_dict()))
    assert BigGANConfig.from_json_file(path) == CONFIGS["biggan-deep-512"]


# ---------------------------------------------------------------------------------------------------------------
# the public surface the fast paths use (coefficients, synthesize, precision, set_attention, is_biggan)


def test_forward_is_synthesize_of_coefficients(small_pair):
    ref, ours, _ = small_pair
    z, c = inputs(2)
    with torch.inference_mode():
        coeffs = ours.coefficients(z, c, 0.37)
        total = sum(ours.bn_sizes)
        assert coeffs.cond.shape == (2, 256) and coeffs.scale.shape == coeffs.shift.shape == (2, total)
        assert all(t.dtype == torch.float32 for t in coeffs)
        torch.testing.assert_close(ours.synthesize(coeffs), ours(z, c, 0.37), rtol=0, atol=0)
        # and that is still the reference model's image (at a grid point, where the two blends agree)
        torch.testing.assert_close(ours(z, c, 0.4), ref(z, c, 0.4), rtol=TOL, atol=TOL)
    with pytest.raises(ValueError, match="class_vector"):
        ours.coefficients(z, c[:1], 0.5)


def test_attention_kernels_agree_and_names_are_checked(small_pair):
    _, ours, _ = small_pair
    z, c = inputs(2)
    with torch.inference_mode():
        a = ours(z, c, 0.6)
        assert ours.set_attention("bmm") == 1
        b = ours(z, c, 0.6)
        ours.set_attention("sdpa")
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="kernel"):
        ours.set_attention("flash")


def test_precision_keeps_conditioning_fp32_and_memory_format():
    config = small()
    gen = BigGANDeep.from_published(config, random_state_dict(config, seed=4)).to(memory_format=torch.channels_last)
    assert gen.memory_format == torch.channels_last and gen.conv_dtype == torch.float32
    gen.precision(torch.bfloat16)
    assert gen.conv_dtype == torch.bfloat16 and gen.memory_format == torch.channels_last
    assert gen.bn_proj.weight.dtype == gen.class_embed.weight.dtype == gen.bn_stats.dtype == torch.float32
    z, c = inputs(1)
    with torch.inference_mode():
        assert all(t.dtype == torch.float32 for t in gen.coefficients(z, c, 0.5))
        assert gen(z, c, 0.5).dtype == torch.bfloat16
    with pytest.raises(ValueError):
        gen.precision(torch.float64)


def test_is_biggan_is_the_one_test():
    from vj.models import is_biggan
    from vj.models.cppn import CPPN
    from vj.models.fast import to_precision

    gen = BigGANDeep.from_published(TINY, random_state_dict(TINY, seed=1))
    assert is_biggan(gen) and is_biggan(to_precision(gen, torch.bfloat16))
    assert not is_biggan(CPPN(resolution=32)) and not is_biggan(torch.nn.Linear(2, 2))


def test_no_module_reaches_into_biggan_privates_or_patches_methods():
    """The fast paths use the public surface only: no private BigGAN names, no method replaced at run time."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "vj"
    private = re.compile(r"\.(_bn_total|_bn_sizes|_c0|_memory_format)\b|MethodType|\.forward\s*=")
    offenders = [f"{p.relative_to(root)}:{i + 1}" for p in root.rglob("*.py") if p.name != "biggan.py"
                 for i, line in enumerate(p.read_text().splitlines()) if private.search(line)]
    assert not offenders, offenders
