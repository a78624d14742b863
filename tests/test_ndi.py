"""NDI out (issue 14): ``vj live --ndi`` seen from a receiver in a second process, over loopback.

Discovery runs without mDNS: every process gets ``NDI_CONFIG_DIR`` pointing at an ``ndi-config.v1.json`` that names
127.0.0.1 as the only peer. The receiver is ``python -m vj.engine.ndi_receive receive`` (its own process, its own NDI
runtime), which writes the newest frame and its counts once a second.

Needs the optional runtime (``cyndilib``, in the test extra); the tests that need it skip with a reason without it.
The one that makes the runtime fail to load, and the pure-Python ones, always run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from test_live import read_png
from vj.engine import ndi

ROOT = Path(__file__).resolve().parent.parent

try:
    ndi.load_ndi()
    HAVE_NDI, WHY = True, ""
except ndi.NdiError as exc:
    HAVE_NDI, WHY = False, str(exc)
needs_ndi = pytest.mark.skipif(not HAVE_NDI, reason=f"NDI runtime not installed ({WHY})")

# a picture that holds still: the first generated frame frozen, no onset flash or zoom
STILL = ["--set", "freeze=1", "--set", "fx.flash.amount=0", "--set", "fx.zoom.amount=0"]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ndi_env(tmp_path):
    """Environment for child processes: loopback-only NDI discovery, the worktree's vj first on the path."""
    cfg = tmp_path / "ndi-config"
    cfg.mkdir()
    ndi.write_config(cfg, ["127.0.0.1"])
    return dict(os.environ, NDI_CONFIG_DIR=str(cfg), PYTHONPATH=os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))


def unique_name(tag: str) -> str:
    return f"vjtest-{tag}-{os.getpid()}"


def live_cmd(name: str, tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vj", "live", "--headless", "--model", "cppn", "--input", "demo",
            "--size", "640x360", "--fps-cap", "30", "--osc-port", str(free_udp_port()),
            "--stats", str(tmp_path / "stats.jsonl"), "--ndi", name, *extra]


def read_stats(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(pred, timeout_s: float, what: str, procs=()):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        for p in procs:
            if p.poll() is not None:
                out, err = p.communicate()
                pytest.fail(f"{what}: process exited {p.returncode} early:\n{err[-3000:]}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def status(out: Path) -> dict | None:
    try:
        return json.loads((out / "status.json").read_text())
    except (OSError, ValueError):
        return None


def newest_frame(out: Path) -> np.ndarray:
    return np.load(out / "last.npy")


# -- pure Python ---------------------------------------------------------------------------------------------------
def test_parse_peers_accepts_addresses_and_names_and_rejects_junk():
    assert ndi.parse_peers("192.168.1.20, 10.0.0.5,192.168.1.20") == ["192.168.1.20", "10.0.0.5"]
    assert ndi.parse_peers("::1,projector-2.local") == ["::1", "projector-2.local"]
    for bad in ("", ",", "300.1.2.3", "a b", "-x"):
        with pytest.raises(argparse.ArgumentTypeError):
            ndi.parse_peers(bad)


def test_write_config_names_the_peers_and_keeps_other_settings(tmp_path):
    base = {"ndi": {"groups": {"send": "Booth"}, "networks": {"discovery": ""}}, "other": 1}
    path = ndi.write_config(tmp_path, ["10.0.0.5", "10.0.0.6"], base)
    cfg = json.loads(path.read_text())
    assert path.name == "ndi-config.v1.json"
    assert cfg["ndi"]["networks"]["ips"] == "10.0.0.5,10.0.0.6,"
    assert cfg["ndi"]["groups"] == {"send": "Booth"} and cfg["other"] == 1
    assert base["ndi"]["networks"] == {"discovery": ""}  # the caller's dict is left alone


def test_chain_calls_every_callback():
    got = []
    assert ndi.chain(None, None) is None
    fn = ndi.chain(lambda h, r, t: got.append(("a", r, t)), None, lambda h, r, t: got.append(("b", r, t)))
    fn(np.zeros(4, np.float32), 48000, 1.5)
    assert got == [("a", 48000, 1.5), ("b", 48000, 1.5)]


def test_odd_width_is_refused():
    with pytest.raises(ndi.NdiError, match="even width"):
        ndi.NdiOutput("x", (641, 360))


# -- the conversion pass (GL, no network) ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def gl():
    import moderngl

    try:
        c = moderngl.create_standalone_context(backend="egl")
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"no EGL context (install libegl1 libgl1-mesa-dri): {exc}")
    yield c
    c.release()


class _FakePipeline:
    """What NdiOutput.attach needs of the pipeline: ctx, loader, output_size, final (texture)."""

    def __init__(self, ctx, rgb: np.ndarray):
        from vj.display.shaders import ShaderLoader

        h, w, _ = rgb.shape
        self.ctx = ctx
        self.loader = ShaderLoader(ctx)
        self.output_size = (w, h)
        rgba = np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], axis=2)
        self.final = ctx.texture((w, h), 4, np.ascontiguousarray(rgba[::-1]).tobytes())  # GL rows: bottom first


def _convert(gl, rgb, alpha):
    pipe = _FakePipeline(gl, rgb)
    out = ndi.NdiOutput("t", pipe.output_size, alpha=alpha)
    out.attach(pipe)
    out.frame()
    out.frame()  # collects the first frame's read-back into the slot
    f = out._slot.take(0)
    assert f is not None and out.pushed == 1
    img = f.image.copy()
    out.close()
    return img


def _bt709_uyvy(rgb: np.ndarray) -> np.ndarray:
    c = rgb.astype(np.float64) / 255.0
    k = np.array([0.2126, 0.7152, 0.0722])
    y = c @ k
    m = 0.5 * (c[:, 0::2] + c[:, 1::2])
    ym = m @ k
    cb = (m[..., 2] - ym) / 1.8556
    cr = (m[..., 0] - ym) / 1.5748
    out = np.stack([128 + 224 * cb, 16 + 219 * y[:, 0::2], 128 + 224 * cr, 16 + 219 * y[:, 1::2]], axis=-1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def test_uyvy_pass_matches_bt709_studio_range_top_row_first(gl):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (36, 64, 3), dtype=np.uint8)
    rgb[0] = 255  # a white top row: must come first in the read-back (NDI's order)
    got = _convert(gl, rgb, alpha=False)
    assert got.shape == (36, 32, 4)
    assert np.abs(got.astype(int) - _bt709_uyvy(rgb).astype(int)).max() <= 1
    assert (got[0, :, 1] == 235).all() and (got[0, :, 0] == 128).all()  # white = Y 235, neutral chroma


def test_alpha_pass_keys_black_out_and_unpremultiplies(gl):
    rgb = np.zeros((16, 32, 3), np.uint8)
    rgb[:, 8:16] = (200, 100, 50)
    rgb[:, 16:24] = (100, 50, 25)  # the same colour at half strength: half transparent, same hue
    rgb[:, 24:] = 255
    got = _convert(gl, rgb, alpha=True).astype(int)
    assert got.shape == (16, 32, 4)
    assert (got[:, :8, 3] == 0).all()                      # black → transparent
    assert np.abs(got[:, 8:16] - (255, 128, 64, 200)).max() <= 1
    assert np.abs(got[:, 16:24] - (255, 128, 64, 100)).max() <= 1
    assert (got[:, 24:] == 255).all()
    # "over" black gives the picture back
    back = got[..., :3] * got[..., 3:] / 255.0
    assert np.abs(back - rgb).max() <= 2


# -- the runtime cannot load ---------------------------------------------------------------------------------------
def test_runtime_that_cannot_load_is_one_clear_line_and_the_show_goes_on(tmp_path):
    fake = tmp_path / "fake" / "cyndilib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise ImportError('libndi.so.6: cannot open shared object file: No such file or directory')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "fake"), str(ROOT)]))
    cmd = live_cmd("vj", tmp_path, "--duration", "3")
    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if "NDI" in ln]
    assert any("the NDI runtime cannot load (libndi.so.6: cannot open shared object file" in ln
               and "pip install 'vj[ndi]'" in ln and "the show goes on without NDI" in ln for ln in lines), p.stderr
    stats = read_stats(tmp_path / "stats.jsonl")
    assert stats and stats[-1]["t_s"] >= 2.0 and "ndi_sent" not in stats[-1]
    assert "Traceback" not in p.stderr


# -- loopback: a receiver in another process -----------------------------------------------------------------------
@needs_ndi
def test_receiver_gets_the_picture_and_audio_blackout_turns_it_black_and_its_death_does_not_disturb_the_show(
        tmp_path, ndi_env):
    from pythonosc.udp_client import SimpleUDPClient

    name = unique_name("loop")
    cmd = live_cmd(name, tmp_path, *STILL, "--ndi-audio", "--screenshot", str(tmp_path / "shot.png"))
    port = int(cmd[cmd.index("--osc-port") + 1])
    show = subprocess.Popen(cmd, env=ndi_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = tmp_path / "recv"
    out.mkdir()
    recv = None
    try:
        wait_for(lambda: read_stats(tmp_path / "stats.jsonl"), 120, "the show's first stats line", [show])
        recv = subprocess.Popen([sys.executable, "-m", "vj.engine.ndi_receive", "receive", name, "--seconds", "300",
                                 "--out", str(out)], env=ndi_env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        st = wait_for(lambda: (s := status(out)) and s["frames"] >= 5 and s, 60, "5 received frames", [show, recv])
        picture = newest_frame(out)
        assert picture.shape == (360, 640, 4)
        assert (picture[..., 3] == 255).all()  # opaque without --ndi-alpha
        assert picture[..., :3].mean() > 10, "the picture itself is black: nothing to compare"
        st = wait_for(lambda: (s := status(out)) and s["audio_samples"] > 4000 and s, 30, "received audio",
                      [show, recv])
        assert 0.003 < st["audio_rms"] < 1.0, "the demo's audio should arrive, neither silent nor clipped"

        osc = SimpleUDPClient("127.0.0.1", port)
        osc.send_message("/vj/blackout", 1.0)
        t_black = time.monotonic()
        wait_for(lambda: (s := status(out)) and s["frames"] > st["frames"] and s["mean"] < 1.0, 30,
                 "black received frames after /vj/blackout 1", [show, recv])
        black = newest_frame(out)
        assert black[..., :3].max() <= 3, "blackout: the received frame is not black"
        assert time.monotonic() - t_black < 30
        osc.send_message("/vj/blackout", 0.0)
        st = wait_for(lambda: (s := status(out)) and s["mean"] > 10 and s, 30, "the picture back after blackout 0",
                      [show, recv])
        back = newest_frame(out)

        # the receiver dies abruptly; the show must not notice
        recv.kill()
        recv.wait(10)
        killed_at = read_stats(tmp_path / "stats.jsonl")[-1]
        time.sleep(4.5)
        assert show.poll() is None, "the show ended when the receiver died"
        show.send_signal(signal.SIGINT)
        _, err = show.communicate(timeout=60)
    finally:
        for p in (recv, show):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)
    assert show.returncode == 0, err
    stats = read_stats(tmp_path / "stats.jsonl")
    after = [s for s in stats if s["t_s"] > killed_at["t_s"]]
    assert len(after) >= 3, "stats stopped after the receiver died"
    assert after[-1]["ndi_sent"] > killed_at["ndi_sent"] + 30, "sending stopped after the receiver died"
    assert after[-1]["display_fps"] > 5
    assert "Traceback" not in err
    shot = read_png(tmp_path / "shot.png").astype(float)
    for got in (picture, back):
        diff = np.abs(got[..., :3].astype(float) - shot).mean()
        assert diff < 4.0, f"received picture differs from --screenshot by {diff:.2f}/255 on average"


@needs_ndi
def test_second_vj_with_the_same_name_gets_a_message_and_a_suggestion_and_devices_lists_the_first(
        tmp_path, ndi_env):
    name = unique_name("dup")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom vj.engine.ndi import NdiOutput\n"
                               f"o = NdiOutput({name!r}, (64, 36))\no.open()\nprint('open', flush=True)\n"
                               "sys.stdin.read()\no.close()\n"],
        env=ndi_env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open", holder.stderr.read()
        dev = subprocess.run([sys.executable, "-m", "vj", "devices", "--json", "--ndi-wait", "5"], env=ndi_env,
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert dev.returncode == 0, dev.stderr
        assert any(s.endswith(f"({name})") for s in json.loads(dev.stdout)["ndi_sources"]), dev.stdout
        p = subprocess.run(live_cmd(name, tmp_path, "--duration", "3"), env=ndi_env, cwd=ROOT, capture_output=True,
                           text=True, timeout=180)
    finally:
        holder.stdin.close()
        holder.wait(20)
    assert p.returncode == 0, p.stderr
    msg = [ln for ln in p.stderr.splitlines() if "cannot create the source" in ln]
    assert msg and "another NDI sender on this machine" in msg[0] and f"--ndi {name}-2" in msg[0], p.stderr
    assert "the show goes on without NDI" in msg[0]
    stats = read_stats(tmp_path / "stats.jsonl")
    assert stats and stats[-1]["t_s"] >= 2.0


@needs_ndi
def test_a_real_window_sends_what_it_shows(tmp_path, ndi_env):
    from xvfb import XvfbError, XvfbServer

    server = XvfbServer((640, 360))
    try:
        display = server.start()
    except XvfbError as exc:
        pytest.fail(f"Xvfb: {exc} (python3 -m vj.bootstrap installs it)")
    name = unique_name("win")
    cmd = live_cmd(name, tmp_path, *STILL, "--screenshot", str(tmp_path / "shot.png"))
    cmd.remove("--headless")
    env = dict(ndi_env, DISPLAY=display)
    show = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = tmp_path / "recv"
    out.mkdir()
    recv = None
    try:
        wait_for(lambda: read_stats(tmp_path / "stats.jsonl"), 120, "the show's first stats line", [show])
        recv = subprocess.Popen([sys.executable, "-m", "vj.engine.ndi_receive", "receive", name, "--seconds", "300",
                                 "--out", str(out)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        wait_for(lambda: (s := status(out)) and s["frames"] >= 5, 60, "5 received frames", [show, recv])
        got = newest_frame(out)
        show.send_signal(signal.SIGINT)
        _, err = show.communicate(timeout=60)
    finally:
        for p in (recv, show):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)
        server.stop()
    assert show.returncode == 0, err
    assert "running headless instead" not in err, "no window was opened"
    shot = read_png(tmp_path / "shot.png").astype(float)
    assert shot.shape == (360, 640, 3)
    diff = np.abs(got[..., :3].astype(float) - shot).mean()
    assert diff < 4.0, f"received picture differs from the window's screenshot by {diff:.2f}/255 on average"
