"""Seeing NDI® from here: the sources visible on the network and a receiving probe (the other end of
:mod:`vj.engine.ndi`).

``python -m vj.engine.ndi_receive sources`` lists sources; ``python -m vj.engine.ndi_receive receive NAME`` connects
to one and prints one JSON line per second (frames, audio, the newest frame's mean) — what the tests and
benchmarks/ndi_loopback.py use as the receiver in a second process, and a check of the path from a projection
machine. Needs the optional ``cyndilib`` (``pip install vj[ndi]``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from vj.engine.ndi import NdiError, load_ndi, parse_peers, use_peers


# -- sources and a receiving probe ------------------------------------------------------------
def find_sources(timeout_s: float = 1.5) -> list[str]:
    """Names of the NDI sources visible from here (``"HOST (name)"``), after looking for up to ``timeout_s`` [s].

    Raises:
        NdiError: the runtime cannot load.
    """
    load_ndi()
    from cyndilib.finder import Finder

    finder = Finder()
    finder.open()
    try:
        deadline = time.monotonic() + float(timeout_s)
        names: list[str] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            finder.wait_for_sources(min(left, 0.25))
            names = sorted(finder.get_source_names())
            if names and left < timeout_s / 2:  # found some, and gave late ones half the time to appear
                break
        return names
    finally:
        finder.close()


class NdiProbe:
    """A receiver for checking a source: connects by name, receives RGBA frames, keeps the newest and counts them.

    Used by the tests and benchmarks/ndi_loopback.py, and handy on a projection machine to check the path
    (``python -m vj.engine.ndi_receive receive vj``).

    Args:
        name: the source's name as given to ``--ndi`` (matched against ``"HOST (name)"``), or its full name.
        timeout_s: how long :meth:`connect` looks for it [s].

    Attributes:
        frames: video frames received.
        audio_samples: audio samples received (per channel); audio_rms: RMS of the newest audio frame.
        last: the newest frame, uint8 [shape=(H, W, 4)] RGBA, row 0 = top, or None.
        last_t_s: ``time.perf_counter()`` when it arrived [s].
    """

    def __init__(self, name: str, timeout_s: float = 10.0):
        self.name = str(name)
        self.timeout_s = float(timeout_s)
        self.frames = 0
        self.audio_samples = 0
        self.audio_rms = 0.0
        self.last: np.ndarray | None = None
        self.last_t_s = 0.0
        self._finder = self._recv = self._vf = None
        self._buf: np.ndarray | None = None

    def _matches(self, full: str) -> bool:
        return full == self.name or full.endswith(f"({self.name})")

    def connect(self) -> str:
        """Find the source and connect; returns its full name.

        Raises:
            NdiError: runtime missing, or no such source within ``timeout_s``.
        """
        load_ndi()
        from cyndilib.audio_frame import AudioRecvFrame
        from cyndilib.finder import Finder
        from cyndilib.receiver import Receiver
        from cyndilib.video_frame import VideoRecvFrame
        from cyndilib.wrapper.ndi_recv import RecvBandwidth, RecvColorFormat

        self._finder = Finder()
        self._finder.open()
        deadline = time.monotonic() + self.timeout_s
        src = None
        while src is None:
            if time.monotonic() > deadline:
                seen = ", ".join(self._finder.get_source_names()) or "none"
                raise NdiError(f"NDI: no source {self.name!r} within {self.timeout_s:.0f} s (visible: {seen})")
            self._finder.wait_for_sources(0.2)
            src = next((s for s in self._finder.iter_sources() if self._matches(s.name)), None)
        self._recv = Receiver(color_format=RecvColorFormat.RGBX_RGBA, bandwidth=RecvBandwidth.highest,
                              recv_name="vj-probe")
        self._vf = VideoRecvFrame()
        self._recv.set_video_frame(self._vf)
        self._af = AudioRecvFrame()
        self._recv.set_audio_frame(self._af)
        self._recv.set_source(src)
        return str(src.name)

    def receive(self, timeout_ms: int = 200) -> bool:
        """Wait up to ``timeout_ms`` for one frame; True if a video frame arrived (then in :attr:`last`)."""
        from cyndilib.receiver import ReceiveFrameType

        ft = self._recv.receive(ReceiveFrameType.recv_video | ReceiveFrameType.recv_audio, int(timeout_ms))
        if ft & ReceiveFrameType.recv_audio:
            if self._af.get_read_length():
                data, _ = self._af.get_all_read_data()
                if data.size:
                    self.audio_samples += int(data.shape[1])
                    self.audio_rms = float(np.sqrt(np.mean(np.square(data, dtype=np.float64))))
            return False
        if not ft & ReceiveFrameType.recv_video:
            return False
        n = self._vf.get_buffer_size()
        if self._buf is None or self._buf.size != n:
            self._buf = np.empty(n, np.uint8)
        if not self._vf.fill_p_data(self._buf):
            return False
        w, h = self._vf.get_resolution()
        self.last = self._buf[: w * h * 4].reshape(h, w, 4)
        self.last_t_s = time.perf_counter()
        self.frames += 1
        return True

    def performance(self) -> dict:
        """NDI's own receive counts: ``{"video": {"frames_total", "frames_dropped", ...}, ...}``."""
        return dict(self._recv.get_performance_data()) if self._recv is not None else {}

    def close(self) -> None:
        """Disconnect and close the finder."""
        if self._recv is not None:
            try:
                self._recv.disconnect()
            except Exception:  # noqa: BLE001
                pass
        if self._finder is not None:
            self._finder.close()
        self._recv = self._finder = None


def _main(argv=None) -> int:
    """``python -m vj.engine.ndi_receive sources`` | ``receive NAME [--seconds S] [--out DIR]`` (a checking tool)."""
    p = argparse.ArgumentParser(prog="python -m vj.engine.ndi_receive", description="look at NDI sources from here")
    p.add_argument("--peers", type=parse_peers, help="discover these machines directly (no mDNS)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("sources", help="list the visible sources")
    r = sub.add_parser("receive", help="receive a source; print one JSON line per second")
    r.add_argument("name")
    r.add_argument("--seconds", type=float, default=10.0)
    r.add_argument("--timeout", type=float, default=10.0, help="how long to look for the source [s]")
    r.add_argument("--out", help="folder: write last.npy (the newest frame) and status.json each second")
    a = p.parse_args(argv)
    if a.peers:
        use_peers(a.peers)
    try:
        if a.cmd == "sources":
            for name in find_sources():
                print(name)
            return 0
        probe = NdiProbe(a.name, timeout_s=a.timeout)
        full = probe.connect()
        print(json.dumps({"connected": full}), flush=True)
        t0 = time.perf_counter()
        next_report = t0 + 1.0
        out = Path(a.out) if a.out else None
        while time.perf_counter() - t0 < a.seconds:
            probe.receive(100)
            now = time.perf_counter()
            if now >= next_report:
                next_report += 1.0
                status = {"t_s": round(now - t0, 3), "frames": probe.frames, "audio_samples": probe.audio_samples,
                          "audio_rms": round(probe.audio_rms, 5),
                          "mean": None if probe.last is None else float(probe.last[..., :3].mean()),
                          "ndi": probe.performance().get("video", {})}
                if out is not None and probe.last is not None:
                    np.save(out / "last.tmp.npy", probe.last)
                    os.replace(out / "last.tmp.npy", out / "last.npy")
                    (out / "status.tmp").write_text(json.dumps(status))
                    os.replace(out / "status.tmp", out / "status.json")
                print(json.dumps(status), flush=True)
        probe.close()
        return 0
    except NdiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(_main())
