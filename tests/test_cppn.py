import pytest
import torch
import torch.nn.functional as F

from vj.models.cppn import CPPN


@pytest.fixture(scope="module")
def gen() -> CPPN:
    return CPPN(resolution=64, seed=0)


def _inputs(n: int, truncation: float = 0.6, seed: int = 0, classes=None):
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 128, generator=g).clamp(-2, 2) * truncation
    cv = torch.zeros(n, 1000)
    idx = torch.randint(0, 1000, (n,), generator=g) if classes is None else torch.as_tensor(classes)
    cv[torch.arange(n), idx] = 1.0
    return noise, cv


def _mad(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().mean().item()


def test_shape_dtype_range_and_attributes(gen):
    noise, cv = _inputs(3)
    out = gen(noise, cv, 0.6)
    assert out.shape == (3, 3, 64, 64) and out.dtype == torch.float32
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert not out.requires_grad and not gen.training and list(gen.parameters()) == []
    assert (gen.resolution, gen.model_name, gen.dim_z, gen.num_classes) == (64, "cppn", 128, 1000)


@pytest.mark.parametrize("res", [64, 128, 256])
def test_resolutions_draw_the_same_picture(res):
    noise, cv = _inputs(2)
    out = CPPN(resolution=res)(noise, cv, 0.6)
    assert out.shape == (2, 3, res, res)
    small = CPPN(resolution=32)(noise, cv, 0.6)  # coordinates are resolution-independent
    assert _mad(F.avg_pool2d(out, res // 32), small) < 0.06


def test_determinism_by_seed():
    noise, cv = _inputs(2)
    a, b, c = CPPN(64, seed=7), CPPN(64, seed=7), CPPN(64, seed=8)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert torch.equal(a(noise, cv, 0.5), b(noise, cv, 0.5))
    assert _mad(a(noise, cv, 0.5), c(noise, cv, 0.5)) > 0.2


def test_classes_give_different_images(gen):
    noise, _ = _inputs(1)
    outs = [gen(noise, _inputs(1, classes=[k])[1], 0.6) for k in (1, 107, 985, 207)]
    for i in range(len(outs)):
        for j in range(i):
            assert _mad(outs[i], outs[j]) > 0.2, (i, j)
    # a soft mix blends smoothly: a 1 % change of mix weight changes the image by little
    mix = torch.zeros(2, 1000)
    mix[0, 107], mix[0, 985] = 0.50, 0.50
    mix[1, 107], mix[1, 985] = 0.49, 0.51
    a, b = gen(noise.expand(2, -1), mix, 0.6)
    assert _mad(a, b) < 0.03


def test_noise_continuity(gen):
    noise, cv = _inputs(4, truncation=0.6)
    base = gen(noise, cv, 0.6)
    step = torch.randn(4, 128, generator=torch.Generator().manual_seed(1))
    small = _mad(gen(noise + 0.01 * step, cv, 0.6), base)
    medium = _mad(gen(noise + 0.1 * step, cv, 0.6), base)
    other, _ = _inputs(4, truncation=0.6, seed=99)
    large = _mad(gen(other, cv, 0.6), base)
    assert small < 0.03
    assert small < medium < large
    assert large > 0.25


def test_images_are_not_flat_and_colourful(gen):
    noise, cv = _inputs(8, truncation=0.8, seed=3)
    out = gen(noise, cv, 0.8)
    per_image_std = out.std(dim=(2, 3)).mean(dim=1)  # spatial contrast of each image
    assert per_image_std.min() > 0.2
    colour = out.std(dim=1).mean(dim=(1, 2))  # spread across R, G, B at a pixel: 0 for grey
    assert colour.min() > 0.1


def test_truncation_float_or_tensor_and_calmer_when_low(gen):
    noise, cv = _inputs(3, truncation=0.5)
    as_float = gen(noise, cv, 0.5)
    assert torch.equal(as_float, gen(noise, cv, torch.full((3,), 0.5)))
    mixed = gen(noise, cv, torch.tensor([0.1, 0.5, 1.0]))
    assert torch.equal(mixed[1], as_float[1])
    assert torch.allclose(mixed[0], gen(noise[:1], cv[:1], 0.1)[0], atol=1e-5)

    def roughness(x):
        return ((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., 1:] - x[..., :-1]).abs().mean()).item()

    unit, cv8 = _inputs(8, truncation=1.0, seed=5)
    calm = roughness(gen(unit * 0.1, cv8, 0.1))
    wild = roughness(gen(unit * 1.0, cv8, 1.0))
    assert wild > 1.5 * calm


def test_zero_and_heavy_class_vectors_are_finite(gen):
    noise, _ = _inputs(2)
    zero = gen(noise, torch.zeros(2, 1000), 0.6)
    assert torch.isfinite(zero).all() and zero.std() > 0.2
    heavy = torch.zeros(2, 1000)
    heavy[:, :12] = 1.0  # twelve classes at full weight, as the mapping may send
    assert torch.isfinite(gen(noise, heavy, 0.6)).all()
    assert torch.isfinite(gen(torch.zeros(2, 128), torch.zeros(2, 1000), 0.0)).all()


def test_bad_shapes_raise(gen):
    noise, cv = _inputs(2)
    with pytest.raises(ValueError):
        gen(noise[:, :100], cv, 0.5)
    with pytest.raises(ValueError):
        gen(noise, cv[:1], 0.5)
    with pytest.raises(ValueError):
        gen(noise, cv, torch.ones(3))
    with pytest.raises(ValueError):
        CPPN(resolution=8)


def test_follows_the_module_dtype():
    noise, cv = _inputs(2)
    ref = CPPN(32)(noise, cv, 0.6)
    half = CPPN(32).to(dtype=torch.bfloat16)(noise, cv, 0.6)  # as load_generator(dtype=...) casts it
    assert half.dtype == torch.bfloat16
    assert _mad(half.float(), ref) < 0.05
