"""The aftermovie: show log (crash safety, full disk, corruption), deterministic replay checked in pixels, the
effects pass, and the Ray farm (identical frames, a killed actor survived).

Logs here are written two ways: by a real ``vj live`` under Xvfb (the round trip), and by
:func:`vj.showlog.write_offline` from the analysis of a generated clip with scripted parameter events (the same
records a show writes, without waiting for real time). Renders are tiny (64 px, 10 fps, CPPN) to stay quick.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vj.errors import VJError

ROOT = Path(__file__).resolve().parent.parent
FPS = 10.0
SIZE = (64, 64)


def decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def audio_samples(path: Path) -> tuple[int, int]:
    import av

    with av.open(str(path)) as c:
        n = sum(f.samples for f in c.decode(audio=0))
        return n, c.streams.audio[0].rate


def make_log(path: Path, audio_path: Path, events: list, seconds: float = 3.0, with_audio: bool = False,
             end: bool = True, hops_per_chunk: int = 20) -> list:
    """A show log of ``audio_path``'s first ``seconds``, show clock = audio clock + 0.25 s."""
    from vj.audio.analysis import analyze_signal
    from vj.audio.decode import load_audio
    from vj.control.params import ParamRegistry
    from vj.mapping import MappingSettings
    from vj.showlog import write_offline

    y, sr = load_audio(str(audio_path), mono=True, duration_s=seconds)
    hops = [replace(f, capture_time_s=f.time_s + 0.25) for f in analyze_signal(y, sr, 512)]
    header = {"vj_version": "test", "model": "cppn", "seed": 3, "classes": [], "input": f"file:{audio_path}",
              "mapping": MappingSettings().to_json(), "params": ParamRegistry().snapshot(),
              "palette": [[], [], 1.0], "audio": with_audio, "beat_source": "analysis", "sample_rate": sr,
              "hop_size": 512}
    write_offline(path, header, hops, events, audio=np.resize(y, len(hops) * 512) if with_audio else None,
                  sample_rate=sr, hops_per_chunk=hops_per_chunk, end=end)
    return hops


def replay(log: Path, out: Path, **kw) -> dict:
    from vj.replay import ReplayOptions, render_replay

    kw.setdefault("crf", 0)  # lossless: an excerpt's frames compare exactly with the full render's
    opts = ReplayOptions(log=log, output=out, resolution=SIZE, fps=FPS, progress=False, chunk_frames=8, **kw)
    return render_replay(opts)


# -- the log itself ----------------------------------------------------------------------------------------------
def test_writer_records_hops_params_palette_beats_and_audio(tmp_path, mono_wav):
    from vj.audio.analysis import analyze_signal
    from vj.audio.decode import load_audio
    from vj.control.params import Palette, ParamRegistry
    from vj.showlog import LoggedFeatureSlot, ShowLogWriter
    from vj.showlog_reader import read_show_log

    y, sr = load_audio(str(mono_wav), mono=True, duration_s=2.0)
    hops = analyze_signal(y, sr, 512)
    t0 = time.perf_counter()
    w = ShowLogWriter(tmp_path / "a.vjlog", {"model": "cppn", "seed": 1}, t0, flush_every_s=0.05)
    w.start()
    slot = LoggedFeatureSlot(w)
    reg = ParamRegistry()
    reg.on_applied = w.params
    for i, f in enumerate(hops):
        slot.put(replace(f, capture_time_s=t0 + f.time_s))
        w.audio(y[i * 512:(i + 1) * 512] if (i + 1) * 512 <= len(y) else np.zeros(512, np.float32), sr)
    reg.set("fx.hue.shift", 0.25)
    reg.apply_pending()
    reg.blend_classes([1, 2], [3], 0.5)
    reg.apply_pending()
    w.beat(7)
    w.close()
    log = read_show_log(tmp_path / "a.vjlog")
    assert not log.truncated and log.end["dropped"] == 0
    assert log.n_hops == len(hops)
    np.testing.assert_array_equal(log.hops["hop_index"], [f.hop_index for f in hops])
    np.testing.assert_allclose(log.hops["chroma"], np.stack([f.chroma for f in hops]))
    assert log.features(10).onset_count == hops[10].onset_count
    kinds = [(k, p) for k, _, p in log.events]
    assert ("p", [{"fx.hue.shift": 0.25}]) in kinds
    assert ("c", [[1, 2], [3], 0.5]) in kinds
    assert ("b", [7]) in kinds
    assert log.audio_pcm.shape == (len(hops), 512) and log.audio_rate == sr
    n = (len(y) // 512) * 512
    np.testing.assert_allclose(log.audio_pcm.reshape(-1)[:n] / 32767.0, y[:n], atol=1 / 32767)
    assert isinstance(reg.palette, Palette)


def test_truncated_log_keeps_every_complete_chunk(tmp_path, mono_wav, caplog):
    from vj.showlog_reader import read_show_log

    full = tmp_path / "full.vjlog"
    make_log(full, mono_wav, [["p", 1.0, {"blackout": 1.0}]])
    whole = read_show_log(full)
    data = full.read_bytes()
    for cut in (len(data) - 7, len(data) // 2, len(data) // 3 + 5):  # killed mid-write at various points
        part = tmp_path / f"cut{cut}.vjlog"
        part.write_bytes(data[:cut])
        log = read_show_log(part)
        assert log.truncated and log.end is None
        assert 0 < log.n_hops < whole.n_hops or cut == len(data) - 7
        np.testing.assert_array_equal(log.hops["time_s"], whole.hops["time_s"][: log.n_hops])
    assert "truncated" in caplog.text


def test_corrupt_log_is_one_clear_error(tmp_path, mono_wav):
    from vj.showlog import ShowLogError
    from vj.showlog_reader import read_show_log

    full = tmp_path / "full.vjlog"
    make_log(full, mono_wav, [])
    data = bytearray(full.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte in the middle: a valid chunk follows it
    bad = tmp_path / "bad.vjlog"
    bad.write_bytes(bytes(data))
    with pytest.raises(ShowLogError, match="corrupt"):
        read_show_log(bad)
    (tmp_path / "junk.vjlog").write_bytes(b"not a log at all" * 10)
    with pytest.raises(ShowLogError, match="not a vj show log"):
        read_show_log(tmp_path / "junk.vjlog")
    r = subprocess.run([sys.executable, "-m", "vj", "render", "--replay", str(bad), "-o", str(tmp_path / "o.mp4"),
                        "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "corrupt" in lines[0], r.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_full_disk_stops_the_log_not_the_show(tmp_path, caplog):
    import errno

    from vj.audio.features import Features
    from vj.showlog import ShowLogWriter
    from vj.showlog_reader import read_show_log

    w = ShowLogWriter(tmp_path / "d.vjlog", {"model": "cppn"}, time.perf_counter(), flush_every_s=0.02)
    real = w._fh

    class Full:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(real, name)

    w.start()
    w.hop(Features(hop_index=0, time_s=0.01, capture_time_s=time.perf_counter()))
    time.sleep(0.3)  # one good batch
    w._fh = Full()
    for i in range(1, 50):
        w.hop(Features(hop_index=i))  # producers keep returning at once
    time.sleep(0.3)
    assert w.stopped and "No space left" in w.error
    t = time.perf_counter()
    for i in range(10000):
        w.hop(Features(hop_index=i))
    assert time.perf_counter() - t < 0.5
    w.close()
    assert sum("stopped" in r.message for r in caplog.records) == 1
    log = read_show_log(tmp_path / "d.vjlog")  # readable up to where the disk filled
    assert log.n_hops == 1 and log.truncated


def test_unwritable_show_log_is_one_line_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "vj", "live", "--model", "cppn", "--headless", "--duration", "1",
                        "--osc-port", "0", "--show-log", str(tmp_path / "missing" / "x.vjlog")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode != 0 and "--show-log" in r.stderr.strip().splitlines()[-1]


# -- replay ------------------------------------------------------------------------------------------------------
def test_replay_is_deterministic_and_shows_logged_changes_at_their_times(tmp_path, music_flac):
    # show clock = audio clock + 0.25 s: blackout from show 1.25 s (audio 1.0 s) to show 2.05 s (audio 1.8 s)
    events = [["p", 1.25, {"blackout": 1.0}], ["p", 2.05, {"blackout": 0.0, "master": 0.4}]]
    log = tmp_path / "s.vjlog"
    make_log(log, music_flac, events, with_audio=True)
    a = replay(log, tmp_path / "a.mp4")
    b = replay(log, tmp_path / "b.mp4")
    fa, fb = decode(tmp_path / "a.mp4"), decode(tmp_path / "b.mp4")
    assert a["frames"] == len(fa) == len(fb) == int(round(3.0 * FPS))
    np.testing.assert_array_equal(fa, fb)  # same log + same options = identical frames
    mean = fa.reshape(len(fa), -1).mean(axis=1)
    assert (mean[:10] > 20).all(), mean  # before audio 1.0 s: a picture
    assert (mean[10:18] < 3).all(), mean  # 1.0 .. 1.8 s: black
    assert (mean[18:] > 5).all() and mean[18:].mean() < 0.6 * mean[:10].mean(), mean  # master 0.4
    n, sr = audio_samples(tmp_path / "a.mp4")
    assert abs(n / sr - len(fa) / FPS) <= 1.5 / FPS  # audio in sync within a frame (+ AAC padding)
    # an excerpt has exactly the frames of the full render (the mapping always starts at frame 0)
    replay(log, tmp_path / "c.mp4", start_s=1.5, end_s=2.5)
    np.testing.assert_array_equal(decode(tmp_path / "c.mp4"), fa[15:25])


def test_replay_effects_follow_the_log_and_no_fx_is_the_bare_generator(tmp_path, music_flac):
    log = tmp_path / "s.vjlog"
    make_log(log, music_flac, [["p", 0.25, {"fx.hue.shift": 0.5, "fx.flash.amount": 0.0, "fx.zoom.amount": 0.0,
                                            "fx.sharpen.amount": 0.0}]], seconds=1.0)
    replay(log, tmp_path / "fx.mp4")
    replay(log, tmp_path / "bare.mp4", fx=False)
    fx, bare = decode(tmp_path / "fx.mp4").astype(float), decode(tmp_path / "bare.mp4").astype(float)
    assert fx.shape == bare.shape
    # a half-turn hue rotation moves the colours far; brightness stays comparable
    assert np.abs(fx - bare).mean() > 15
    assert abs(fx.mean() - bare.mean()) < 0.35 * bare.mean()


def test_truncated_log_replays_up_to_its_last_record(tmp_path, mono_wav):
    full = tmp_path / "f.vjlog"
    make_log(full, mono_wav, [], seconds=3.0)
    data = full.read_bytes()
    cut = tmp_path / "cut.vjlog"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    from vj.replay import log_end_s
    from vj.showlog_reader import read_show_log

    end = log_end_s(read_show_log(cut))
    assert 0.5 < end < 2.5
    r = subprocess.run([sys.executable, "-m", "vj", "render", "--replay", str(cut), str(mono_wav), "-o",
                        str(tmp_path / "t.mp4"), "--resolution", "64", "--fps", "10", "--no-progress"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "truncated" in r.stderr
    assert len(decode(tmp_path / "t.mp4")) == int(round(end * 10))


def test_render_with_fx_is_deterministic_and_differs_from_no_fx(tmp_path, mono_wav):
    from vj.render import RenderOptions, render

    def go(name, **kw):
        render(RenderOptions(audio=str(mono_wav), output=tmp_path / name, resolution=SIZE, fps=FPS,
                             duration_s=1.5, model="cppn", progress=False, **kw))
        return decode(tmp_path / name)

    a, b = go("a.mp4"), go("b.mp4")
    np.testing.assert_array_equal(a, b)
    c = go("c.mp4", sets=[("fx.hue.shift", 0.5)])
    d = go("d.mp4", fx=False)
    assert np.abs(a.astype(float) - c).mean() > 10  # --set reaches the effects pass
    assert np.abs(a.astype(float) - d).mean() > 1  # sharpen / flash / zoom of the defaults
    with pytest.raises(VJError, match="unknown parameter"):
        go("e.mp4", sets=[("fx.nope", 1.0)])


# -- the round trip through a real show ---------------------------------------------------------------------------
def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def xdisplay():
    from xvfb import serve_display

    yield from serve_display((640, 360))


def test_live_show_log_replays_at_the_logged_times(tmp_path, xdisplay, music_flac):
    """A real ``vj live`` (window under Xvfb) with ``--at`` changes, an OSC preset switch and OSC fader moves;
    its log's replay shows each change at its logged time, checked in pixels and in the timeline."""
    from pythonosc.udp_client import SimpleUDPClient

    from vj.control.presets import load_preset
    from vj.replay import build_timeline, event_audio_times, log_end_s
    from vj.showlog_reader import read_show_log

    port = _free_udp_port()
    log = tmp_path / "show.vjlog"
    env = dict(os.environ, DISPLAY=xdisplay)
    cmd = [sys.executable, "-m", "vj", "live", "--model", "cppn", "--input", f"file:{music_flac}", "--size",
           "320x180", "--osc-port", str(port), "--duration", "10", "--show-log", str(log), "--show-log-audio",
           "--at", "1.5:blackout=1", "--at", "3:blackout=0", "--set", "fx.flash.amount=0", "--set",
           "fx.zoom.amount=0"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        client = SimpleUDPClient("127.0.0.1", port)
        deadline = time.monotonic() + 60
        while not (log.exists() and log.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.02)  # the header is written as the show clock starts
        t0 = time.monotonic()
        time.sleep(max(4.5 - (time.monotonic() - t0), 0))
        client.send_message("/vj/preset/select", "flowers")
        time.sleep(max(7.5 - (time.monotonic() - t0), 0))
        client.send_message("/vj/master", 0.3)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
    assert proc.returncode == 0, err
    show = read_show_log(log)
    assert not show.truncated and show.end["dropped"] == 0 and show.n_hops > 100
    times = event_audio_times(show)
    p_ev = [(t, p[0]) for (k, _, p), t in zip(show.events, times) if k == "p"]
    on = [t for t, d in p_ev if d.get("blackout") == 1.0]
    off = [t for t, d in p_ev if on and t > on[0] and d.get("blackout") == 0.0]
    dim = [t for t, d in p_ev if d.get("master") == pytest.approx(0.3)]
    flowers = load_preset("flowers").classes
    pal = [t for (k, _, p), t in zip(show.events, times) if k == "c" and tuple(p[1]) == tuple(flowers)]
    assert on and off and dim and pal, [e for e in show.events if e[0] != "b"][:8]
    assert on[0] < off[0] < pal[0] < dim[0] < log_end_s(show)

    res = replay(log, tmp_path / "r.mp4")
    frames = decode(tmp_path / "r.mp4")
    mean = frames.reshape(len(frames), -1).mean(axis=1)
    k_on, k_off, k_dim = (int(np.ceil(t * FPS - 1e-9)) for t in (on[0], off[0], dim[0]))
    assert mean[k_on - 3:k_on - 1].min() > 5 and mean[k_on:k_off].max() < 3, (k_on, k_off, mean)
    assert mean[k_off:k_off + 3].min() > 5
    lit = mean[k_dim - 6:k_dim - 1].mean()
    assert mean[k_dim + 1:k_dim + 6].max() < 0.6 * lit, (k_dim, mean)  # master 0.3
    tl = build_timeline(show, FPS, res["frames"])
    k_pal = int(np.ceil(pal[0] * FPS - 1e-9))
    before = set(tl.cv_cols[np.flatnonzero(tl.cv_vals[k_pal - 1])])
    assert not before & set(flowers)
    after = set(tl.cv_cols[np.flatnonzero(tl.cv_vals[-1])])
    assert after <= set(flowers) and after  # the crossfade ended on the preset's palette


# -- Ray ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is the optional 'farm' extra (pip install 'vj[farm]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.parametrize("model", ["cppn", "biggan"])
def test_ray_frames_identical_to_in_process_and_a_killed_actor_is_survived(tmp_path, music_flac, ray_cluster,
                                                                           model):
    from vj.farm import GeneratorSpec, LocalFarm, RayFarm

    log = tmp_path / "s.vjlog"
    make_log(log, music_flac, [["p", 1.0, {"fx.hue.shift": 0.3}]], seconds=2.0, with_audio=True)
    if model == "cppn":
        name, weights = "cppn", None
    else:  # a small random BigGAN-deep-128 in the published format (cached by vj bench)
        from vj.commands.bench import cached_random_weights

        name, weights = "biggan-deep-128", str(cached_random_weights(128, channel_width=8, seed=1))
    spec = GeneratorSpec(model=name, weights=weights, seed=3, threads=1)
    local = LocalFarm(spec)
    replay(log, tmp_path / "local.mp4", farm=local, model=name, weights=weights)
    farm = RayFarm(spec, workers=2)
    try:
        replay(log, tmp_path / "ray.mp4", farm=farm, model=name, weights=weights)
        ref = decode(tmp_path / "local.mp4")
        np.testing.assert_array_equal(decode(tmp_path / "ray.mp4"), ref)
        # kill one actor after the first chunk came back: the video is still complete and identical
        killed = []

        def kill_once(n):
            if not killed:
                killed.append(farm.workers[0]["pid"])
                os.kill(farm.workers[0]["pid"], signal.SIGKILL)

        from vj.replay import ReplayOptions, render_replay

        opts = ReplayOptions(log=log, output=tmp_path / "killed.mp4", resolution=SIZE, fps=FPS, progress=False,
                             chunk_frames=4, farm=farm, model=name, weights=weights, crf=0)
        stream = farm.frames

        def frames(chunks, progress=None):
            return stream(chunks, progress=lambda n: (kill_once(n), progress and progress(n)))

        farm.frames = frames
        render_replay(opts)
        assert killed
        np.testing.assert_array_equal(decode(tmp_path / "killed.mp4"), ref)
    finally:
        farm.close()
