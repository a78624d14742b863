"""A private PulseAudio daemon with a null sink, for tests that capture real audio through PortAudio.

The daemon runs headless (also as root, which PulseAudio only warns about when it is not a system daemon) with
everything in a temporary folder: runtime dir, state, cookie and socket. The test process is pointed at it with
``PULSE_SERVER`` (and a client.conf that forbids autospawn), so ALSA's ``pulse`` plug-in from libasound2-plugins
— and through it PortAudio — sees the sink's monitor as the default ``pulse`` input. Whatever is played into the
sink (``paplay``) is captured there.

Needs Debian's pulseaudio, pulseaudio-utils and libasound2-plugins (``python3 -m vj.bootstrap --test``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

#: name of the null sink; its monitor source is ``SINK_NAME + ".monitor"``
SINK_NAME = "vj_null"


class PulseError(RuntimeError):
    """The PulseAudio daemon could not be started (the message says why, with the daemon's log tail)."""


class PulseServer:
    """One PulseAudio daemon process with a null sink, living in ``folder``.

    Args:
        folder: an empty temporary folder for the daemon's runtime files and log.
        sample_rate: the null sink's rate [Hz].
    """

    def __init__(self, folder: Path, sample_rate: int = 44100):
        self.folder = Path(folder)
        self.sample_rate = sample_rate
        self.socket = self.folder / "native"
        self.log_path = self.folder / "pulse.log"
        self.proc: subprocess.Popen | None = None
        self.keeper: subprocess.Popen | None = None
        self.client_conf = self.folder / "client.conf"
        self.client_conf.write_text("autospawn = no\n")

    @property
    def server(self) -> str:
        """Value for ``PULSE_SERVER``."""
        return f"unix:{self.socket}"

    def client_env(self, base: dict | None = None) -> dict:
        """Environment for a client process (pactl, paplay) talking to this daemon."""
        env = dict(os.environ if base is None else base)
        env.update(PULSE_SERVER=self.server, PULSE_CLIENTCONFIG=str(self.client_conf))
        return env

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the daemon and wait until it answers.

        Raises:
            PulseError: pulseaudio is not installed, exits, or does not answer within ``timeout_s``.
        """
        exe = shutil.which("pulseaudio")
        if exe is None or shutil.which("pactl") is None:
            raise PulseError(
                "pulseaudio/pactl not installed: run `python3 -m vj.bootstrap --test` "
                "(Debian: pulseaudio pulseaudio-utils libasound2-plugins)"
            )
        if self.socket.exists():
            self.socket.unlink()
        home = self.folder / "home"
        runtime = self.folder / "runtime"
        for d in (home, runtime):
            d.mkdir(exist_ok=True, mode=0o700)
        env = dict(os.environ)
        env.pop("PULSE_SERVER", None)
        env.update(
            HOME=str(home),
            XDG_RUNTIME_DIR=str(runtime),
            XDG_CONFIG_HOME=str(home / ".config"),
            PULSE_RUNTIME_PATH=str(runtime / "pulse"),
            PULSE_STATE_PATH=str(self.folder / "state"),
        )
        cmd = [
            exe,
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--disallow-exit",
            "-n",  # no default.pa: only the modules below
            "--log-target=stderr",
            "--log-level=notice",
            f"--load=module-native-protocol-unix auth-anonymous=1 socket={self.socket}",
            f"--load=module-null-sink sink_name={SINK_NAME} rate={self.sample_rate} channels=2 "
            "sink_properties=device.description=vj-null-sink",
        ]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PulseError(f"pulseaudio exited with status {self.proc.returncode}: {self.log_tail()}")
            if self.socket.exists() and self.pactl("info", check=False).returncode == 0:
                self.pactl("set-default-source", f"{SINK_NAME}.monitor", check=False)
                self._start_keeper()
                return
            time.sleep(0.05)
        self.stop()
        raise PulseError(f"pulseaudio did not answer within {timeout_s:g} s: {self.log_tail()}")

    def _start_keeper(self) -> None:
        # An idle null sink stops rendering, and then its monitor delivers nothing; a stream of silence keeps
        # it running so the capture side sees a steady flow, like a sound card's input.
        if shutil.which("pacat") is None:
            raise PulseError("pacat not installed (Debian: pulseaudio-utils)")
        self.keeper = subprocess.Popen(
            ["pacat", "--playback", f"--device={SINK_NAME}", "--format=s16le", "--channels=2",
             f"--rate={self.sample_rate}", "--latency-msec=50", "/dev/zero"],
            env=self.client_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )

    def _stop_keeper(self) -> None:
        if self.keeper is not None and self.keeper.poll() is None:
            self.keeper.kill()
            self.keeper.wait(3)
        self.keeper = None

    def pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``pactl`` against this daemon."""
        out = subprocess.run(["pactl", *args], env=self.client_env(), capture_output=True, text=True, timeout=10)
        if check and out.returncode != 0:
            raise PulseError(f"pactl {' '.join(args)} failed: {out.stderr.strip()}")
        return out

    def play(self, path: Path) -> subprocess.Popen:
        """Start ``paplay`` playing ``path`` into the null sink; returns the process."""
        return subprocess.Popen(
            ["paplay", f"--device={SINK_NAME}", str(path)],
            env=self.client_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def kill(self) -> None:
        """Kill the daemon abruptly (SIGKILL), as a device vanishing would look to clients."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self._stop_keeper()

    def stop(self) -> None:
        """Terminate the daemon (SIGTERM, then SIGKILL after 3 s)."""
        self._stop_keeper()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"
