"""A private X server (Xvfb) for tests that open a real window (pyglet + moderngl on Mesa).

:class:`XvfbServer` starts ``Xvfb :N -displayfd`` on a random free high display number (it reports when it is ready), waits
until it answers, and stops it again. Tests FAIL, not skip, when Xvfb is missing: CI installs it (Debian ``xvfb``,
``xauth``, ``libgl1-mesa-dri``; ``python3 -m vj.bootstrap --test``).
"""

from __future__ import annotations

import os
import random
import select
import shutil
import subprocess
import time


class XvfbError(RuntimeError):
    """Xvfb is not installed or did not start."""


class XvfbServer:
    """One Xvfb process.

    Args:
        size: screen size (width, height) [px].
        depth: colour depth [bits].
    """

    def __init__(self, size=(1280, 720), depth: int = 24):
        self.size = size
        self.depth = depth
        self.proc: subprocess.Popen | None = None
        self.display: str | None = None
        self._fd: int | None = None

    def start(self, timeout_s: float = 10.0) -> str:
        """Start the server; returns its DISPLAY string (``":N"``). Raises XvfbError."""
        exe = shutil.which("Xvfb")
        if exe is None:
            raise XvfbError("Xvfb is not installed (Debian package xvfb)")
        # a random high display number: other test suites on the same machine tend to use :0 or :99
        rng = random.Random(os.getpid() ^ time.monotonic_ns())
        number = next((n for n in (rng.randrange(200, 5000) for _ in range(50))
                       if not os.path.exists(f"/tmp/.X{n}-lock")), 0)
        r, w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [exe, f":{number}", "-displayfd", str(w), "-screen", "0",
                 f"{self.size[0]}x{self.size[1]}x{self.depth}", "-nolisten", "tcp", "-noreset"],
                pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
        finally:
            os.close(w)
        # the read end stays open while the server runs: Xvfb writes to it again later and dies on EPIPE
        self._fd = r
        ready, _, _ = select.select([r], [], [], timeout_s)
        number = os.read(r, 64).decode().strip() if ready else ""
        if not number.isdigit():
            err = b""
            if self.proc.poll() is not None and self.proc.stderr is not None:
                err = self.proc.stderr.read()[-400:]
            self.stop()
            raise XvfbError(f"Xvfb did not report a display within {timeout_s:g} s: {err.decode(errors='replace')}")
        self.display = f":{number}"
        return self.display

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 3 s)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(3)


def wait_for(predicate, timeout_s: float, step_s: float = 0.1) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout_s`` [s] passed; returns its last value."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step_s)
    return bool(predicate())


def serve_display(size=(1280, 720)):
    """Body of a pytest fixture: start an :class:`XvfbServer` of ``size`` [px], yield its display name, stop it.
    Fails the test (never skips) when Xvfb cannot start: CI installs it."""
    import pytest

    server = XvfbServer(size)
    try:
        display = server.start()
    except XvfbError as exc:
        pytest.fail(f"a real window cannot be tested: {exc}")
    yield display
    server.stop()
