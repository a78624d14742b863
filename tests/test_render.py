"""`vj render` end to end: real recordings in, playable H.264/AAC mp4 out, via the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("vj.models.cppn")


def vj(*args, cwd=None, timeout=300):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "vj", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def decode_video(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        return {
            "video_codec": v.codec_context.name,
            "audio_codec": a.codec_context.name,
            "frames": sum(1 for _ in c.decode(video=0)),
            "duration_s": c.duration / 1e6,
            "size": (v.codec_context.width, v.codec_context.height),
            "video_start": float(v.start_time * v.time_base),
            "audio_start": float(a.start_time * a.time_base),
        }


@pytest.fixture(scope="module")
def silence_then_music(tmp_path_factory, demo_audio):
    """3 s of digital silence followed by 3 s of music with drums (the demo piece's groove, from bar 4)."""
    from vj.audio.demo import BAR_S

    y, sr = demo_audio
    start = int(round(4 * BAR_S * sr))
    y = y[start : start + 3 * sr]
    path = tmp_path_factory.mktemp("audio") / "silence_then_music.wav"
    sf.write(path, np.concatenate([np.zeros(3 * sr, np.float32), y]), sr)
    return path


def test_render_real_recording_makes_a_valid_synced_mp4_whose_frames_follow_the_music(tmp_path, silence_then_music):
    out = tmp_path / "video.mp4"
    r = vj("render", silence_then_music, "-o", out, "--model", "cppn", "--resolution", "128", "--fps", "20",
           "--classes", "jellyfish", "daisy", "volcano", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "generator" in r.stderr.lower() or "cppn" in r.stderr.lower()  # says which generator, one line
    info = probe(out)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    assert info["size"] == (128, 128)
    assert abs(info["frames"] - 120) <= 1  # 6 s at 20 fps
    assert abs(info["duration_s"] - 6.0) <= 1 / 20 + 0.03  # AAC frames round the tail
    assert info["video_start"] == 0 and abs(info["audio_start"]) < 0.03
    frames = decode_video(out).astype(np.float32)
    motion = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    silent_motion = motion[5:55].mean()  # frames 5..55: silence (first hop edges excluded)
    music_motion = motion[65:].mean()
    assert music_motion > 5 * max(silent_motion, 0.05), (silent_motion, music_motion)
    assert frames.std() > 10  # an image, not a flat field


def test_same_seed_identical_frames_other_seed_differs(tmp_path, mono_wav):
    src = mono_wav
    common = ("--model", "cppn", "--resolution", "64", "--duration", "1.5", "--no-progress")
    paths = [tmp_path / f"{n}.mp4" for n in ("a", "b", "c")]
    for p, seed in zip(paths, (7, 7, 8)):
        r = vj("render", src, "-o", p, "--seed", seed, *common)
        assert r.returncode == 0, r.stderr
    a, b, c = (decode_video(p) for p in paths)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_save_and_load_latents_reproduce_the_video(tmp_path, mono_wav):
    src = mono_wav
    lat = tmp_path / "lat.npz"
    common = ("--model", "cppn", "--resolution", "64", "--no-progress")
    assert vj("render", src, "-o", tmp_path / "a.mp4", "--save-latents", lat, "--lookahead", *common).returncode == 0
    r = vj("render", src, "-o", tmp_path / "b.mp4", "--load-latents", lat, *common)
    assert r.returncode == 0, r.stderr
    assert np.array_equal(decode_video(tmp_path / "a.mp4"), decode_video(tmp_path / "b.mp4"))


def test_start_duration_stereo_and_mp3_input(tmp_path, stereo_wav):
    y, sr = sf.read(stereo_wav, dtype="float32")
    mp3 = tmp_path / "stereo.mp3"
    sf.write(mp3, y, sr, format="MP3")
    out = tmp_path / "x.mp4"
    r = vj("render", mp3, "-o", out, "--start", "1", "--duration", "2", "--model", "cppn", "--resolution", "96x64",
           "--no-progress")
    assert r.returncode == 0, r.stderr
    info = probe(out)
    assert info["size"] == (96, 64) and abs(info["frames"] - 60) <= 1


@pytest.mark.parametrize("kind", ["silence", "clipping"])
def test_silence_and_clipping_render_fine(tmp_path, kind):
    sr = 22050
    t = np.arange(2 * sr) / sr
    y = np.zeros_like(t) if kind == "silence" else np.sign(np.sin(2 * np.pi * 110 * t)) * 1.0
    src = tmp_path / f"{kind}.wav"
    sf.write(src, y.astype(np.float32), sr, subtype="FLOAT")
    out = tmp_path / "out.mp4"
    r = vj("render", src, "-o", out, "--model", "cppn", "--resolution", "64", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert abs(probe(out)["frames"] - 60) <= 1


def _one_line_error(r, *needles):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    err = [ln for ln in lines if "error:" in ln]
    assert len(err) == 1, r.stderr
    for n in needles:
        assert n in err[0], err[0]


def test_bad_inputs_give_one_line_and_nonzero_exit(tmp_path, mono_wav):
    ok_audio = mono_wav
    out = tmp_path / "o.mp4"
    _one_line_error(vj("render", tmp_path / "missing.wav", "-o", out), "not found")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 100)
    _one_line_error(vj("render", text, "-o", out), "notes.wav")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 44100)
    _one_line_error(vj("render", empty, "-o", out), "zero length")
    _one_line_error(vj("render", ok_audio, "-o", tmp_path / "nodir" / "o.mp4"), "does not exist")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() != 0:  # root can write anywhere; the check below covers the same code path for root
        _one_line_error(vj("render", ok_audio, "-o", ro / "o.mp4"), "not writable")
    _one_line_error(vj("render", ok_audio, "-o", tmp_path / "o.txt"), ".mp4")
    _one_line_error(vj("render", ok_audio, "-o", out, "--pitch-sensitivity", "500"), "pitch-sensitivity")
    _one_line_error(vj("render", ok_audio, "-o", out, "--truncation", "nan"), "truncation")
    _one_line_error(vj("render", ok_audio, "-o", out, "--fps", "0"), "fps")
    _one_line_error(vj("render", ok_audio, "-o", out, "--classes", "jellyfsh"), "jellyfish")
    _one_line_error(vj("render", ok_audio, "-o", out, "--start", "99"), "past the end")
    _one_line_error(vj("render", ok_audio, "-o", out, "--load-latents", tmp_path / "nope.npz"), "not found")
    if not __import__("torch").cuda.is_available():
        _one_line_error(vj("render", ok_audio, "-o", out, "--device", "cuda"), "CUDA")
    assert not out.exists()


def test_failed_render_leaves_no_output_or_temp_file(tmp_path, mono_wav, monkeypatch):
    import vj.models
    from vj.render import RenderOptions, render

    import torch

    real = vj.models.load_generator

    class Exploding(torch.nn.Module):
        """The CPPN, except that its second call is interrupted as if the user pressed Ctrl-C mid-render."""

        def __init__(self, gen):
            super().__init__()
            self.gen, self.resolution, self.model_name, self.calls = gen, gen.resolution, "cppn", 0

        def forward(self, *args):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            return self.gen(*args)

    def exploding(*a, **k):
        return Exploding(real("cppn", seed=k.get("seed", 0)))

    monkeypatch.setattr(vj.models, "load_generator", exploding)
    out = tmp_path / "song.mp4"
    out.write_bytes(b"an older render the user keeps")
    with pytest.raises(KeyboardInterrupt):
        render(RenderOptions(audio=str(mono_wav), output=out, batch_size=8,
                             resolution=(64, 64), progress=False))
    assert out.read_bytes() == b"an older render the user keeps"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mp4"]


def test_demo_renders(tmp_path):
    out = tmp_path / "demo.mp4"
    r = vj("render", "demo", "-o", out, "--duration", "2", "--model", "cppn", "--resolution", "64", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert abs(probe(out)["frames"] - 60) <= 1
