"""End to end: oscsend drives a running ``vj live`` (CPPN model, real window under Xvfb).

``/vj/blackout 1`` turns the window black and ``0`` brings the picture back (checked on vj's own ``--screenshot``
read-backs); ``/vj/preset/select flowers`` changes the class palette (checked on the ``--osc-feedback`` stream, which
reports what the registry applied). Fails when Xvfb or liblo-tools are missing (CI's bootstrap installs them).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pythonosc.osc_packet import OscPacket, ParseError

from test_live import read_png
from vj.control.presets import load_preset
from xvfb import XvfbError, XvfbServer

ROOT = Path(__file__).resolve().parent.parent


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Feedback:
    """Collects the OSC feedback vj sends (address → list of argument tuples)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.seen: list[tuple[float, str, tuple]] = []

    def pump(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, BlockingIOError):
                return
            try:
                for m in OscPacket(data).messages:
                    self.seen.append((time.monotonic(), m.message.address, tuple(m.message.params)))
            except ParseError:
                pass

    def wait(self, address: str, args: tuple | None, after: float, timeout_s: float) -> float | None:
        """Time the first message to ``address`` (with ``args``, if given) arrived after ``after``, or None."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.pump()
            for t, a, p in self.seen:
                if t >= after and a == address and (args is None or p == args):
                    return t
        return None


def oscsend(port: int, *args: str) -> None:
    exe = shutil.which("oscsend")
    if exe is None:
        pytest.fail("oscsend not found: install Debian's liblo-tools (CI's bootstrap does)")
    subprocess.run([exe, "127.0.0.1", str(port), *args], check=True, timeout=10)


def shot_after(folder: Path, t: float, timeout_s: float = 20.0) -> Path | None:
    """The first screenshot written at least 0.3 s after ``t`` (a frame that reflects a change applied at t)."""
    deadline = time.monotonic() + timeout_s
    wall_t = time.time() - (time.monotonic() - t)
    while time.monotonic() < deadline:
        for p in sorted(folder.glob("s_*.png"), key=lambda p: p.stat().st_mtime):
            if p.stat().st_mtime >= wall_t + 0.3 and p.stat().st_size > 0:
                time.sleep(0.1)  # let the write finish
                return p
        time.sleep(0.1)
    return None


def test_oscsend_blacks_out_a_running_show_and_selects_a_preset(tmp_path):
    server = XvfbServer((640, 360))
    try:
        display = server.start()
    except XvfbError as exc:
        pytest.fail(f"a real window cannot be tested: {exc}")
    fb = Feedback()
    port = free_udp_port()
    env = os.environ.copy()
    env["DISPLAY"] = display
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # no user presets or maps from this machine
    cmd = [sys.executable, "-m", "vj", "live", "--model", "cppn", "--input", "demo", "--loop", "--size", "640x360",
           "--fps-cap", "20", "--duration", "120", "--screenshot", str(tmp_path / "s_{n}.png"),
           "--screenshot-every", "0.5", "--set", "fx.flash.amount=0", "--set", "transition.time_s=0",
           "--osc-port", str(port), "--osc-feedback", f"127.0.0.1:{fb.port}"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # up: /vj/refresh makes the OSC server send the whole state back
        t_up = None
        deadline = time.monotonic() + 90
        while t_up is None and time.monotonic() < deadline and proc.poll() is None:
            oscsend(port, "/vj/refresh")
            t_up = fb.wait("/vj/master", None, 0.0, 1.0)
        assert t_up is not None, f"vj live never answered on OSC: {proc.stderr.read() if proc.poll() else ''}"

        before = shot_after(tmp_path, time.monotonic())
        assert before is not None and read_png(before).mean() > 10, "no picture before the blackout"

        t0 = time.monotonic()
        oscsend(port, "/vj/blackout", "i", "1")
        applied = fb.wait("/vj/blackout", (1,), t0, 10)
        assert applied is not None, "blackout was not applied"
        black = shot_after(tmp_path, applied)
        assert black is not None and read_png(black).max() == 0, "/vj/blackout 1 did not black out the window"

        t1 = time.monotonic()
        oscsend(port, "/vj/blackout", "i", "0")
        applied = fb.wait("/vj/blackout", (0,), t1, 10)
        assert applied is not None, "blackout off was not applied"
        back = shot_after(tmp_path, applied)
        assert back is not None and read_png(back).mean() > 10, "/vj/blackout 0 did not bring the picture back"

        t2 = time.monotonic()
        oscsend(port, "/vj/preset/select", "s", "flowers")
        flowers = load_preset("flowers").classes
        assert fb.wait("/vj/gan/classes", flowers, t2, 10) is not None, "preset did not change the classes"
        assert fb.wait("/vj/preset/current", ("flowers",), t2, 5) is not None

        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        fb.sock.close()
        server.stop()
