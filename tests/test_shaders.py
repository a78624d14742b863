"""Shader units on a headless EGL context (Mesa llvmpipe is enough): compile, master, blackout, interpolation,
upscale, orientation, feedback; and the pure-Python effect timing (strobe limiter, interpolation clock)."""

from __future__ import annotations

import numpy as np
import pytest

from vj.display.fx import MAX_FLASH_HZ, FlashLimiter, FxState, InterpolationClock, Strobe, auto_levels
from vj.display.pipeline import NEUTRAL_FX, Pipeline, present_geometry
from vj.display.shaders import ShaderError, ShaderLoader
from vj.resources import shader_dir


@pytest.fixture(scope="module")
def ctx():
    moderngl = pytest.importorskip("moderngl")
    try:
        c = moderngl.create_standalone_context(backend="egl")
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"no EGL context (install libegl1 libgl1-mesa-dri): {exc}")
    yield c
    c.release()


def _flat(value: int, size=(16, 16)) -> np.ndarray:
    img = np.full((size[1], size[0], 4), value, np.uint8)
    img[..., 3] = 255
    return img


def _render(pipe, prev, curr, t=1.0, sharpen=0.0, **fx):
    pipe.upload(prev)
    pipe.upload(curr)
    pipe.render(t, sharpen, fx)
    return pipe.read_final().astype(int)


@pytest.mark.parametrize("frag", sorted(p.name for p in shader_dir().glob("*.frag")))
def test_each_shader_compiles(ctx, frag):
    prog = ShaderLoader(ctx).program("quad.vert", frag)
    assert prog is not None


def test_every_post_variant_compiles(ctx):
    loader = ShaderLoader(ctx)
    names = ["FX_KALEIDO", "FX_RGBSHIFT", "FX_LEVELS", "FX_HUE", "FX_FEEDBACK", "FX_DIRECT"]
    built = 0
    for mask in range(1 << len(names)):
        defines = {n for i, n in enumerate(names) if mask >> i & 1}
        if defines == Pipeline.post_defines(_fx_for(defines)):  # the combinations the pipeline asks for
            assert loader.program("quad.vert", "post.frag", defines) is not None
            built += 1
    assert built == 32
    assert "#define FX_HUE\n" in loader.source_with_defines("post.frag", {"FX_HUE"}).split("\n", 1)[1][:40]


def _fx_for(defines) -> dict:
    on = {"FX_KALEIDO": ("u_kaleido", 0.5), "FX_RGBSHIFT": ("u_rgbshift", 0.01), "FX_LEVELS": ("u_levels", 0.5),
          "FX_HUE": ("u_hue", 1.0), "FX_FEEDBACK": ("u_feedback", 0.5)}
    return dict(NEUTRAL_FX, **dict(on[d] for d in defines if d in on))


def test_effect_variants_follow_the_values():
    assert Pipeline.post_defines(NEUTRAL_FX) == {"FX_DIRECT"}
    fx = dict(NEUTRAL_FX, u_kaleido=0.5, u_hue=1.0, u_feedback=0.3)
    assert Pipeline.post_defines(fx) == {"FX_KALEIDO", "FX_HUE", "FX_FEEDBACK"}
    assert Pipeline.post_defines(dict(NEUTRAL_FX, u_levels=0.2)) == {"FX_LEVELS", "FX_DIRECT"}


def test_direct_upscale_matches_the_upscale_pass(ctx):
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (32, 32, 4), dtype=np.uint8)
    pipe = Pipeline(ctx, (160, 90), (32, 32))
    direct = _render(pipe, img, img, sharpen=0.2)  # FX_DIRECT: bicubic inside post.frag
    two_pass = _render(pipe, img, img, sharpen=0.2, u_rgbshift=1e-7)  # upscale pass, then post.frag
    assert np.abs(direct - two_pass).max() <= 2
    pipe.release()


def test_loader_expands_includes(ctx, tmp_path):
    (tmp_path / "a.glsl").write_text('float two() { return 2.0; }\n')
    (tmp_path / "f.frag").write_text('#version 330 core\n#include "a.glsl"\nout vec4 c;\n'
                                     'void main() { c = vec4(two()); }\n')
    (tmp_path / "loop.glsl").write_text('#include "loop.glsl"\n')
    (tmp_path / "quad.vert").write_text((shader_dir() / "quad.vert").read_text())
    loader = ShaderLoader(ctx, tmp_path)
    text = loader.source_with_defines("f.frag", {"X"})
    assert text.startswith("#version 330 core\n#define X\n") and "return 2.0" in text
    assert loader.program("quad.vert", "f.frag") is not None
    with pytest.raises(ShaderError, match="too deep"):
        loader.expanded("loop.glsl")


def test_kaleidoscope_mirrors_and_rgbshift_splits(ctx):
    w = 32
    img = np.zeros((w, w, 4), np.uint8)
    img[:, : w // 2, :3] = 200  # left half bright
    img[..., 3] = 255
    pipe = Pipeline(ctx, (64, 64), (w, w))
    plain = _render(pipe, img, img)
    kal = _render(pipe, img, img, u_kaleido=1.0, u_segments=2.0)
    assert np.abs(kal - plain).mean() > 20  # mirrored: differs from the plain picture
    assert np.allclose(kal[::-1], kal, atol=3)  # 2 segments: mirror symmetric top/bottom
    shifted = _render(pipe, img, img, u_rgbshift=0.1)
    edge = shifted[32, 26:38]
    assert (edge[:, 0] != edge[:, 2]).any()  # red and blue edges moved apart
    pipe.release()


def test_loader_reports_missing_file(ctx):
    with pytest.raises(ShaderError, match="nope.frag"):
        ShaderLoader(ctx).program("quad.vert", "nope.frag")


def test_neutral_passthrough_master_and_blackout(ctx):
    pipe = Pipeline(ctx, (64, 36), (16, 16))
    out = _render(pipe, _flat(200), _flat(200))
    assert abs(out.mean() - 200) < 1.5
    half = _render(pipe, _flat(200), _flat(200), u_master=0.5)
    assert abs(half.mean() - 100) < 1.5
    black = _render(pipe, _flat(200), _flat(255), u_blackout=1.0, u_strobe=1.0, u_flash=1.0)
    assert black.max() == 0
    pipe.release()


@pytest.mark.parametrize("t,expected", [(0.0, 0), (0.5, 100), (1.0, 200)])
def test_interpolation_between_last_two_frames(ctx, t, expected):
    pipe = Pipeline(ctx, (32, 32), (16, 16))
    out = _render(pipe, _flat(0), _flat(200), t=t)
    assert abs(out.mean() - expected) < 1.5
    pipe.release()


def test_freeze_holds_same_output(ctx):
    pipe = Pipeline(ctx, (32, 32), (16, 16))
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    b = rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    clock = InterpolationClock(initial_interval_s=1.0)
    clock.frame_arrived(0.0)
    pipe.upload(a)
    pipe.upload(b)
    pipe.render(clock.t(0.3, freeze=False), 0.3)
    first = pipe.read_final()
    pipe.render(clock.t(0.9, freeze=True), 0.3)  # time goes on, frozen: t held
    assert np.array_equal(pipe.read_final(), first)
    pipe.render(clock.t(0.9, freeze=False), 0.3)
    assert not np.array_equal(pipe.read_final(), first)
    pipe.release()


def test_upscale_is_bicubic_and_upright(ctx):
    # a horizontal ramp is reproduced exactly by Catmull-Rom in the interior (it interpolates linear functions)
    w = 32
    ramp = np.zeros((w, w, 4), np.uint8)
    ramp[..., 0] = (np.arange(w) * 8)[None, :]  # 0..248 left to right
    ramp[: w // 2, :, 1] = 255  # top half green: checks row 0 = top survives the trip
    ramp[..., 3] = 255
    pipe = Pipeline(ctx, (128, 128), (w, w))
    out = _render(pipe, ramp, ramp)
    xs = np.arange(128)
    src_x = (xs + 0.5) / 4 - 0.5
    expected = np.clip(src_x, 0, w - 1) * 8
    interior = slice(8, 120)
    assert np.abs(out[64, interior, 0] - expected[interior]).max() <= 1.5
    assert out[10, :, 1].min() > 250 and out[118, :, 1].max() < 5  # top green, bottom not
    # edges of a hard step overshoot slightly (Catmull-Rom ringing), unlike bilinear
    step = np.zeros((w, w, 4), np.uint8)
    step[:, w // 2 :, :3] = 200
    step[..., 3] = 255
    out = _render(pipe, step, step)
    assert out[64, :, 0].max() > 200
    pipe.release()


def test_sharpen_raises_local_contrast(ctx):
    rng = np.random.default_rng(0)
    img = rng.integers(60, 200, (16, 16, 4), dtype=np.uint8)
    pipe = Pipeline(ctx, (64, 64), (16, 16))
    soft = _render(pipe, img, img, sharpen=0.0)
    sharp = _render(pipe, img, img, sharpen=1.0)
    assert sharp.std() > soft.std() * 1.1
    pipe.release()


def test_feedback_trails_fade(ctx):
    pipe = Pipeline(ctx, (32, 32), (16, 16))
    _render(pipe, _flat(200), _flat(200), u_feedback=0.01)  # trails on: fills the feedback buffer
    trail = _render(pipe, _flat(0), _flat(0), u_feedback=0.5)
    assert 80 < trail[8:24, 8:24].mean() < 110  # ~0.5 * 200
    fainter = _render(pipe, _flat(0), _flat(0), u_feedback=0.5)
    assert 35 < fainter[8:24, 8:24].mean() < 60  # fades by the amount each frame
    none = _render(pipe, _flat(0), _flat(0), u_feedback=0.0)
    assert none.max() == 0
    _render(pipe, _flat(200), _flat(200))  # off, then on again: no stale trail from before
    again = _render(pipe, _flat(0), _flat(0), u_feedback=0.5)
    assert again.max() == 0
    pipe.release()


def test_hue_rotation_and_flash(ctx):
    red = np.zeros((16, 16, 4), np.uint8)
    red[..., 0] = 200
    red[..., 3] = 255
    pipe = Pipeline(ctx, (32, 32), (16, 16))
    rotated = _render(pipe, red, red, u_hue=2 * np.pi / 3)  # a third of a turn: red -> green
    r, g = rotated[..., 0].mean(), rotated[..., 1].mean()
    assert g > 150 and r < 50
    flash = _render(pipe, red, red, u_flash=1.0)
    assert flash.min() == 255
    pipe.release()


def test_present_geometry():
    assert present_geometry((1920, 1080), (1280, 720), "letterbox") == ((0, 0, 1920, 1080), (1.0, 1.0))
    vp, crop = present_geometry((1000, 1000), (1280, 720), "letterbox")
    assert vp == (0, 219, 1000, 562) and crop == (1.0, 1.0)
    vp, crop = present_geometry((1000, 1000), (1280, 720), "fill")
    assert vp == (0, 0, 1000, 1000) and crop[1] == 1.0 and abs(crop[0] - 0.5625) < 1e-6


def test_flash_limiter_caps_at_three_per_second():
    lim = FlashLimiter(max_hz=50)  # asking for more is lowered to the ceiling
    strobe = Strobe(lim)
    starts = []
    lit_prev = False
    for i in range(600):  # 10 s at 60 fps, strobe asked for 10 Hz
        now = i / 60
        lit = strobe.update(now, True, 10.0)
        if lit and not lit_prev:
            starts.append(now)
        lit_prev = lit
    starts = np.array(starts)
    assert len(starts) >= 25  # it does strobe (~3 Hz)
    for t in starts:  # any one-second window holds at most 3 starts
        assert ((starts >= t) & (starts < t + 1.0)).sum() <= MAX_FLASH_HZ
    # onset flashes share the limiter with the strobe: onsets on every frame plus a 3 Hz strobe for 5 s
    fx = FxState(FlashLimiter())
    params = {"fx.flash.amount": 1.0, "strobe": 1.0, "strobe.rate_hz": 3.0}
    for i in range(300):
        fx.update(i / 60, 1 / 60, onsets=1, beats=0, level=0.5, p=params)
    assert 5 * 3 - 1 <= fx.limiter.allowed <= 5 * 3 + 1
    assert fx.limiter.denied > 250


def test_fx_envelopes():
    fx = FxState()
    p = {"fx.flash.amount": 1.0, "fx.zoom.amount": 1.0, "fx.hue.amount": 1.0}
    u = fx.update(0.0, 1 / 60, onsets=1, beats=1, level=0.2, p=p)
    assert u["u_flash"] > 0.7 and u["u_zoom"] > 1.1
    fx.update(0.5, 0.5, onsets=0, beats=0, level=0.2, p=p)
    later = fx.update(1.0, 0.5, onsets=0, beats=0, level=0.2, p=p)
    assert later["u_flash"] < 0.01 and later["u_zoom"] < 1.01 and later["u_hue"] > 0
    assert fx.update(1.1, 0.1, 0, 0, 0.0, {"blackout": 1.0})["u_blackout"] == 1.0


def test_onset_flash_on_hits_near_the_beat_not_on_hats_or_off_beats():
    """With a hit strength the flash starts as the hit rises past FLASH_HIT, once per hit (re-armed below
    FLASH_REARM); a hi-hat's weaker hit never flashes; with a beat clock, only hits near one of its beats do."""
    p = {"fx.flash.amount": 1.0}

    def flashes(hits, beat_distance=None):
        fx = FxState()
        for i, h in enumerate(hits):
            fx.update(i / 60, 1 / 60, onsets=1, beats=0, level=0.5, p=p, hit=h, beat_distance_s=beat_distance)
        return fx.flashes

    kick = ([0.0, 0.9, 0.8, 0.6, 0.3, 0.1] + [0.0] * 24) * 2  # two kicks 0.5 s apart
    assert flashes(kick) == 2  # each kick once (onsets=1 on every frame does not matter with a hit given)
    assert flashes([0.0, 0.9, 0.3, 0.9, 0.0]) == 1  # not re-armed between: one flash
    assert flashes([0.0, 0.36, 0.36, 0.0] * 10) == 0  # a hat alone: hit_strength at most 0.4
    assert flashes(kick, beat_distance=0.02) == 2 and flashes(kick, beat_distance=0.2) == 0
    assert flashes([float("nan"), 0.9]) == 1
    fx = FxState()
    assert fx.update(0.0, 1 / 60, onsets=1, beats=0, level=0.5, p=p)["u_flash"] > 0.7  # no hit given: onsets


def test_interpolation_clock_measures_interval():
    c = InterpolationClock(initial_interval_s=1.0, smoothing=1.0)
    assert c.t(0.0) == 1.0  # no frame yet: show the newest
    c.frame_arrived(0.0)
    c.frame_arrived(0.25)  # generator at 4 fps
    assert abs(c.interval_s - 0.25) < 1e-9
    assert c.t(0.25) == 0.0 and abs(c.t(0.375) - 0.5) < 1e-9 and c.t(1.0) == 1.0
    # drawn for a 60 Hz display: the weight at the end of the picture's time on screen, so a new frame is part of
    # the first picture after it arrives and the fade ends one display frame before the next is due
    d = 1 / 60
    assert abs(c.t(0.25, ahead_s=d) - d / 0.25) < 1e-9 and c.t(0.5 - d + 1e-9, ahead_s=d) == 1.0
    fast = InterpolationClock(initial_interval_s=1.0, smoothing=1.0)
    fast.frame_arrived(0.0)
    fast.frame_arrived(1 / 60)  # a generator at the display's rate is shown unblended, at once
    assert fast.t(1 / 60, ahead_s=d) == pytest.approx(1.0) and fast.t(1 / 60) == 0.0


def test_auto_levels_points():
    img = np.zeros((32, 32, 4), np.uint8)
    img[..., :3] = np.linspace(50, 150, 32, dtype=np.uint8)[None, :, None]
    lo, hi = auto_levels(img)
    assert 0.18 < lo[0] < 0.22 and 0.56 < hi[0] < 0.6
