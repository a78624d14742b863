"""Faults during a running ``vj live`` (docs/reliability.md): SIGTERM / Ctrl-C while recording, the disk filling
while recording, a preset file corrupted on disk mid-show, the window minimised and restored.

Each starts the real command (CPPN model, the bundled demo piece) and watches its ``--stats`` rows and stderr.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_osc_live import free_udp_port
from vj.engine.stats import read_stats
from xvfb import XvfbError, XvfbServer

ROOT = Path(__file__).resolve().parent.parent




def wait_for(pred, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


class Live:
    """``vj live`` as a child process with its stats file and stderr in ``tmp``."""

    def __init__(self, tmp: Path, *args: str, display: str | None = None, preexec=None):
        self.stats = tmp / "stats.jsonl"
        self.err_path = tmp / "stderr.txt"
        env = os.environ.copy()
        env.pop("DISPLAY", None)
        if display:
            env["DISPLAY"] = display
        env["XDG_CONFIG_HOME"] = str(tmp / "config")
        cmd = [sys.executable, "-m", "vj", "live", "--model", "cppn", "--input", "demo", "--fps-cap", "30",
               "--stats", str(self.stats), *args]
        if not display:
            cmd.append("--headless")
        with open(self.err_path, "w") as fh:
            self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=fh,
                                         preexec_fn=preexec)

    def rows(self) -> list[dict]:
        return read_stats(self.stats)

    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_rows(self, n: int, timeout_s: float = 90.0) -> None:
        assert wait_for(lambda: len(self.rows()) >= n or self.proc.poll() is not None, timeout_s)
        assert len(self.rows()) >= n, f"only {len(self.rows())} stats rows: {self.err()[-2000:]}"

    def stop(self, sig=signal.SIGINT, timeout_s: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout_s)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def gaps(rs: list[dict]) -> list[float]:
    return [b["t_s"] - a["t_s"] for a, b in zip(rs, rs[1:])]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_stop_signal_during_a_recording_leaves_a_playable_mp4(tmp_path, sig):
    import av

    video = tmp_path / "show.mp4"
    live = Live(tmp_path, "--record", str(video), "--record-fps", "15", "--size", "640x360")
    try:
        live.wait_rows(5)
        n = len(live.rows())
        assert live.stop(sig) == 0, live.err()
    finally:
        live.kill()
    with av.open(str(video)) as c:
        assert sorted(s.type for s in c.streams) == ["audio", "video"]
        frames = sum(1 for _ in c.decode(video=0))
        duration_s = float(c.duration or 0) / 1e6
    assert frames >= 15 * (n - 3), (frames, n)  # every recorded second is in the file
    assert duration_s >= n - 3, duration_s
    assert "Traceback" not in live.err()


def test_disk_full_while_recording_stops_the_recording_not_the_show(tmp_path):
    """The disk fills: simulated with a 256 KiB file-size limit on the process (``RLIMIT_FSIZE``: the encoder's
    write(2) fails with EFBIG, the same failing-write path as ENOSPC; Python ignores SIGXFSZ)."""
    limit = 256 * 1024

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    video = tmp_path / "show.mp4"
    live = Live(tmp_path, "--record", str(video), "--record-fps", "30", "--size", "1280x720", preexec=small_disk)
    try:
        assert wait_for(lambda: "record" in live.err() and "fail" in live.err() or live.proc.poll() is not None,
                        120), live.err()[-2000:]
        n = len(live.rows())
        live.wait_rows(n + 4, 30)  # the show goes on
        assert live.stop() == 0, live.err()
    finally:
        live.kill()
    err = live.err()
    assert "Traceback" not in err
    after = live.rows()[n:]
    assert all(r["display_fps"] > 5 for r in after[:-1]), after
    assert max(gaps(live.rows()[2:])) < 1.5


def osc_send(port: int, address: str, *args: str) -> None:
    from pythonosc.osc_message_builder import OscMessageBuilder

    m = OscMessageBuilder(address)
    for a in args:
        m.add_arg(a)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(m.build().dgram, ("127.0.0.1", port))


def test_preset_file_corrupted_on_disk_during_the_show(tmp_path):
    port = free_udp_port()
    presets = tmp_path / "config" / "vj" / "presets"
    live = Live(tmp_path, "--osc-port", str(port), "--size", "640x360")
    try:
        live.wait_rows(3)
        osc_send(port, "/vj/preset/save", "mine")
        assert wait_for(lambda: (presets / "mine.toml").is_file(), 10), live.err()
        (presets / "mine.toml").write_bytes(b"\x00\xff[params\ngan.truncation = = \x89PNG")  # a bad write, a bad sync
        osc_send(port, "/vj/preset/select", "mine")
        assert wait_for(lambda: "mine.toml" in live.err(), 10), live.err()
        (presets / "mine.toml").unlink()  # the folder turns into a file: saving cannot work
        presets.rmdir()
        presets.write_text("not a folder")
        osc_send(port, "/vj/preset/save", "again")
        assert wait_for(lambda: "again" in live.err() or "cannot save" in live.err(), 10), live.err()
        osc_send(port, "/vj/preset/select", "ocean")  # a good preset still loads afterwards
        n = len(live.rows())
        live.wait_rows(n + 3, 30)
        assert live.stop() == 0, live.err()
    finally:
        live.kill()
    err = live.err()
    assert "Traceback" not in err
    assert max(gaps(live.rows()[2:])) < 1.5
    assert "preset: ocean" in err or "ocean" in err


# -- the window minimised and restored (X11 via ctypes: unmap/map is what a window manager does on iconify) -----
def _x11():
    lib = ctypes.util.find_library("X11")
    if lib is None:
        pytest.fail("libX11 not found (it comes with pyglet's dependencies)")
    x = ctypes.cdll.LoadLibrary(lib)
    x.XOpenDisplay.restype = ctypes.c_void_p
    x.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x.XDefaultRootWindow.restype = ctypes.c_ulong
    x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x.XQueryTree.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong),
                             ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
                             ctypes.POINTER(ctypes.c_uint)]
    x.XFetchName.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_char_p)]
    for name in ("XUnmapWindow", "XMapWindow"):
        getattr(x, name).argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    x.XFlush.argtypes = [ctypes.c_void_p]
    x.XCloseDisplay.argtypes = [ctypes.c_void_p]
    return x


def _find_window(x, dpy, title: str) -> int | None:
    root = x.XDefaultRootWindow(dpy)
    r, p, n = ctypes.c_ulong(), ctypes.c_ulong(), ctypes.c_uint()
    kids = ctypes.POINTER(ctypes.c_ulong)()
    if not x.XQueryTree(dpy, root, ctypes.byref(r), ctypes.byref(p), ctypes.byref(kids), ctypes.byref(n)):
        return None
    for i in range(n.value):
        name = ctypes.c_char_p()
        if x.XFetchName(dpy, kids[i], ctypes.byref(name)) and name.value == title.encode():
            return kids[i]
    return None


def test_window_minimised_and_restored(tmp_path):
    server = XvfbServer((1280, 720))
    try:
        display = server.start()
    except XvfbError as exc:
        pytest.fail(f"a real window cannot be tested: {exc}")
    x = _x11()
    dpy = x.XOpenDisplay(display.encode())
    assert dpy, f"cannot open {display}"
    live = Live(tmp_path, "--size", "640x360", display=display)
    try:
        live.wait_rows(3)
        win = _find_window(x, dpy, "vj")
        assert win, "the vj window was not found on the display"
        x.XUnmapWindow(dpy, win)
        x.XFlush(dpy)
        n_hidden = len(live.rows())
        live.wait_rows(n_hidden + 4, 30)  # minimised: the show (stats, analysis, generator) goes on
        x.XMapWindow(dpy, win)
        x.XFlush(dpy)
        n_back = len(live.rows())
        live.wait_rows(n_back + 4, 30)
        assert live.stop() == 0, live.err()
    finally:
        live.kill()
        x.XCloseDisplay(dpy)
        server.stop()
    rs = live.rows()
    assert "Traceback" not in live.err()
    assert max(gaps(rs[2:])) < 1.5, gaps(rs)
    assert all(r["display_fps"] > 5 for r in rs[n_back + 1 : -1]), rs[n_back:]
    assert all(r["gan_fps"] > 0 for r in rs[n_hidden + 1 : n_back]), rs[n_hidden:n_back]
