"""``vj live --ndi [NAME]``: the output as an NDI® source on the network (for Resolume, OBS, TouchDesigner, ...).

Data flow (DESIGN.md's rules hold: nobody waits for anybody)::

    main thread, once per display frame, after the effects/master/blackout pass:
        finish last frame's asynchronous read-back into a free buffer ─► FrameSlot (latest wins) ─► Event
        draw shaders/ndi.frag from the final texture (NDI's pixel layout, NDI size, top row first)
        start this frame's asynchronous read-back into a pixel buffer
    sender thread ("vj-ndi"): waits for the Event, takes the newest frame, hands it to the NDI runtime
        (which compresses and sends it), sends the queued audio hops; frames the sender had no time for are
        overwritten in the slot and counted (:attr:`NdiOutput.dropped`).

Pixel layout: UYVY 4:2:2 (BT.709, studio range — what NDI compresses internally anyway, so the runtime does no
colour conversion and the read-back is half the size of RGBA), or with ``--ndi-alpha`` RGBA with a luma-style key
(see shaders/ndi.frag). The NDI runtime comes from the optional dependency ``cyndilib`` (``pip install vj[ndi]``),
which bundles NDI's library; it is imported only when NDI is asked for. NDI® is a registered trademark of Vizrt NDI
AB (https://ndi.video/); see LICENSES/NDI.txt.

Discovery: by mDNS, or without it through the NDI configuration file ``ndi-config.v1.json`` in the folder named by
``NDI_CONFIG_DIR``, whose ``ndi.networks.ips`` lists the peers to announce to and look at; ``--ndi-peers`` writes
such a file (:func:`use_peers`).
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from vj.engine.slots import FrameSlot
from vj.errors import VJError

log = logging.getLogger("vj")

#: how to get the runtime, for messages
INSTALL_HINT = "pip install 'vj[ndi]' (the cyndilib wheel, which bundles the NDI runtime)"

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_NAME_RE = re.compile(r"^[^\x00-\x1f()]{1,63}$")


class NdiError(VJError):
    """The NDI runtime cannot be loaded, or the NDI source cannot be created."""


# -- the library ---------------------------------------------------------------------------------------------------
def load_ndi():
    """Import the NDI runtime (``cyndilib`` and the NDI library it bundles).

    Returns:
        The ``cyndilib`` module.

    Raises:
        NdiError: not installed, or its shared library cannot load (one line, with how to install it).
    """
    try:
        import cyndilib
        from cyndilib import audio_frame, sender, video_frame  # noqa: F401 — the parts vj uses, loaded now
    except ImportError as exc:
        if getattr(exc, "name", None) == "cyndilib":
            raise NdiError(f"NDI: the NDI runtime is not installed ({INSTALL_HINT})") from None
        raise NdiError(f"NDI: the NDI runtime cannot load ({_one_line(exc)}); reinstall it: {INSTALL_HINT}") from None
    except OSError as exc:
        raise NdiError(f"NDI: the NDI runtime cannot load ({_one_line(exc)}); reinstall it: {INSTALL_HINT}") from None
    return cyndilib


def available() -> bool:
    """True if the NDI runtime imports (without raising)."""
    try:
        load_ndi()
        return True
    except NdiError:
        return False


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


# -- discovery without mDNS ----------------------------------------------------------------------------------------
def parse_peers(text: str) -> list[str]:
    """Parse ``--ndi-peers``: comma-separated IPv4/IPv6 addresses or host names.

    Args:
        text: e.g. ``"192.168.1.20,192.168.1.21"``.

    Returns:
        The peers, in order, without duplicates.

    Raises:
        argparse.ArgumentTypeError: empty, or an entry that is neither an address nor a host name.
    """
    out: list[str] = []
    for item in (x.strip() for x in str(text).split(",")):
        if not item:
            continue
        try:
            item = str(ipaddress.ip_address(item))
        except ValueError:
            if not _HOST_RE.match(item) or item.replace(".", "").isdigit():
                raise argparse.ArgumentTypeError(f"{item!r} is not an IP address or host name") from None
        if item not in out:
            out.append(item)
    if not out:
        raise argparse.ArgumentTypeError("give at least one IP address, e.g. 192.168.1.20")
    return out


def write_config(folder: str | Path, peers: list[str], base: dict | None = None) -> Path:
    """Write ``ndi-config.v1.json`` naming the peers NDI announces to and looks at (no mDNS needed).

    Args:
        folder: where to write it (it must exist).
        peers: addresses or host names (see :func:`parse_peers`).
        base: an existing NDI configuration to keep the other settings of (None: only the peers).

    Returns:
        The path of the written file.
    """
    cfg = json.loads(json.dumps(base)) if isinstance(base, dict) else {}
    if not isinstance(cfg.get("ndi"), dict):
        cfg["ndi"] = {}
    ndi = cfg["ndi"]
    nets = ndi.setdefault("networks", {})
    if not isinstance(nets, dict):
        nets = ndi["networks"] = {}
    nets["ips"] = ",".join(peers) + ","
    path = Path(folder) / "ndi-config.v1.json"
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    return path


def _existing_config() -> dict | None:
    folder = os.environ.get("NDI_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".ndi")
    try:
        data = json.loads(Path(folder, "ndi-config.v1.json").read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def use_peers(peers: list[str]) -> Path:
    """Point this process's NDI runtime at ``peers`` (before it is loaded).

    Writes ``ndi-config.v1.json`` into a new private folder — keeping the other settings of the configuration in
    use (``$NDI_CONFIG_DIR`` or ``~/.ndi``) — and sets ``NDI_CONFIG_DIR`` to it. The folder is removed at exit.

    Returns:
        The folder.
    """
    import atexit

    folder = Path(tempfile.mkdtemp(prefix="vj-ndi-"))
    write_config(folder, peers, _existing_config())
    os.environ["NDI_CONFIG_DIR"] = str(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


# -- command line --------------------------------------------------------------------------------------------------
def _source_name(text: str) -> str:
    text = str(text).strip()
    if not _NAME_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a usable NDI name (1..63 characters, no brackets)")
    return text


def add_arguments(parser) -> None:
    """Add ``vj live``'s NDI options (``--ndi [NAME]``, ``--ndi-size``, ``--ndi-alpha``, ``--ndi-audio``,
    ``--ndi-peers``)."""
    from vj.commands._args import resolution

    g = parser.add_argument_group("NDI output (needs vj[ndi])")
    g.add_argument("--ndi", nargs="?", const="vj", default=None, type=_source_name, metavar="NAME",
                   help="send the output as an NDI source named NAME (default 'vj'); receivers see 'HOST (NAME)'")
    g.add_argument("--ndi-size", type=resolution, default=None, metavar="WxH",
                   help="size of the NDI frames (default: the output size)")
    g.add_argument("--ndi-alpha", action="store_true",
                   help="send RGBA with a key (black = transparent) for keying in a mixer (default: opaque UYVY)")
    g.add_argument("--ndi-audio", action="store_true", help="also send the audio vj reacts to as the NDI audio")
    g.add_argument("--ndi-peers", type=parse_peers, default=None, metavar="IP,...",
                   help="announce to and discover these machines directly (no mDNS needed), e.g. 10.0.0.5,10.0.0.6")


def chain(*callbacks):
    """One ``fn(hop, sample_rate, capture_time_s)`` calling each of ``callbacks`` that is not None (None if none is)."""
    fns = [c for c in callbacks if c is not None]
    if not fns:
        return None
    if len(fns) == 1:
        return fns[0]

    def both(hop, rate, capture_time_s):
        for fn in fns:
            fn(hop, rate, capture_time_s)

    return both


def start_from_args(args, pipeline, fps: float, sample_rate: int | None) -> NdiOutput | None:
    """Open the NDI source ``vj live`` asked for; on failure log one clear line and return None (the show goes on).

    Args:
        args: parsed ``vj live`` arguments (``ndi``, ``ndi_size``, ``ndi_alpha``, ``ndi_audio``, ``ndi_peers``).
        pipeline: the :class:`vj.display.pipeline.Pipeline` (its GL context is current on this thread).
        fps: the display rate the frames are sent at [Hz] (NDI metadata).
        sample_rate: the input's sample rate [Hz] (for ``--ndi-audio``), or None.

    Returns:
        A started :class:`NdiOutput`, or None when NDI was not asked for or could not start.
    """
    if getattr(args, "ndi", None) is None:
        for flag in ("ndi_size", "ndi_alpha", "ndi_audio", "ndi_peers"):
            if getattr(args, flag, None):
                log.warning("--%s has no effect without --ndi", flag.replace("_", "-"))
        return None
    if args.ndi_peers:
        use_peers(args.ndi_peers)
    try:
        out = NdiOutput(args.ndi, args.ndi_size or pipeline.output_size, fps=fps, alpha=args.ndi_alpha,
                        audio=args.ndi_audio, sample_rate=sample_rate)
    except VJError as exc:
        log.error("%s — the show goes on without NDI", exc)
        return None
    try:
        out.open()
        try:
            out.attach(pipeline)
        except Exception as exc:  # noqa: BLE001 — a shader or GL failure must not stop the show either
            raise NdiError(f"NDI: the conversion pass cannot be set up ({_one_line(exc)})") from None
        out.start()
    except VJError as exc:
        out.close()
        log.error("%s — the show goes on without NDI", exc)
        return None
    log.info("NDI: sending %dx%d %s as %r%s", out.size[0], out.size[1], "RGBA (keyed)" if out.alpha else "UYVY",
             out.source_name, " with audio" if out.audio else "")
    return out


# -- the output ----------------------------------------------------------------------------------------------------
class NdiOutput:
    """The show's output as an NDI source: GPU conversion and read-back on the main thread, sending on its own.

    Args:
        name: NDI source name (receivers list it as ``"HOST (name)"``).
        size: frame size (width, height) [px]; the width must be even.
        fps: nominal frame rate [Hz] written into the frames (receivers use it for timing display only).
        alpha: send RGBA with a key alpha (shaders/ndi.frag) instead of opaque UYVY.
        audio: send the hops given to :meth:`push_audio` as the NDI audio stream (mono float32).
        sample_rate: the audio's sample rate [Hz] (hops at another rate are not sent).
        max_audio_samples: largest audio frame [samples].

    Attributes:
        pushed: frames handed to the sender thread (display frames read back).
        sent: frames given to the NDI runtime.
        dropped: frames read back but overwritten before the sender took them (the sender was behind).
        audio_sent: audio samples given to the NDI runtime.
        error: the last sending error (the thread keeps going), or None.
    """

    def __init__(self, name: str, size, fps: float = 60.0, alpha: bool = False, audio: bool = False,
                 sample_rate: int | None = None, max_audio_samples: int = 4800):
        w, h = int(size[0]), int(size[1])
        if w < 2 or h < 1 or w % 2:
            raise NdiError(f"NDI: frame size {w}x{h} must have an even width")
        self.name = str(name)
        self.size = (w, h)
        self.fps = float(fps) if fps and fps > 0 else 60.0
        self.alpha = bool(alpha)
        self.audio = bool(audio)
        self.sample_rate = int(sample_rate or 48000)
        self.max_audio_samples = int(max_audio_samples)
        self._sender = None
        self._lib = None
        self._full_name: str | None = None
        self._slot = FrameSlot(h, w if alpha else w // 2)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._audio: collections.deque = collections.deque()
        self._gl = None  # (program, vao, texture, fbo, pbo)
        self._pending = False
        self._connections = 0
        self.pushed = 0
        self.sent = 0
        self.audio_sent = 0
        self.audio_dropped = 0
        self.error: str | None = None

    # -- set-up ----------------------------------------------------------------------------------------------
    @property
    def source_name(self) -> str:
        """The full NDI name receivers see (``"HOST (name)"``), or the bare name if the source was never opened."""
        return self._full_name or self.name

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """Shape of one frame's bytes as read back: uint8 (H, W/2, 4) UYVY or (H, W, 4) RGBA."""
        w, h = self.size
        return (h, w, 4) if self.alpha else (h, w // 2, 4)

    def open(self) -> None:
        """Load the NDI runtime and create the source.

        Raises:
            NdiError: the runtime cannot load, or the source cannot be created (e.g. another sender on this
                machine already has the name — the message suggests another one).
        """
        from fractions import Fraction

        lib = load_ndi()
        from cyndilib.audio_frame import AudioSendFrame
        from cyndilib.sender import Sender
        from cyndilib.video_frame import VideoSendFrame
        from cyndilib.wrapper.ndi_structs import FourCC

        vf = VideoSendFrame()
        vf.set_resolution(*self.size)
        vf.set_frame_rate(Fraction(self.fps).limit_denominator(1001))
        vf.set_fourcc(FourCC.RGBA if self.alpha else FourCC.UYVY)
        # an audio frame is always attached: besides --ndi-audio, cyndilib's clean-up of a failed open needs one
        af = AudioSendFrame(self.max_audio_samples)
        af.sample_rate = self.sample_rate
        af.num_channels = 1
        sender = Sender(self.name, clock_video=False, clock_audio=False)
        sender.set_video_frame(vf)
        sender.set_audio_frame(af)
        try:
            sender.open()
        except Exception as exc:  # noqa: BLE001 — cyndilib raises a bare MemoryError when NDI says no
            raise NdiError(
                f"NDI: cannot create the source {self.name!r} ({_one_line(exc) or type(exc).__name__}): another "
                f"NDI sender on this machine probably has that name (a second vj?); give this one another, e.g. "
                f"--ndi {self.name}-2") from None
        self._lib, self._sender = lib, sender
        try:
            self._full_name = str(sender.source.name)
        except Exception:  # noqa: BLE001 — only for messages
            self._full_name = None

    def attach(self, pipeline) -> None:
        """Create the conversion pass on the pipeline's GL context (main thread)."""
        ctx = pipeline.ctx
        defines = {"NDI_KEY"} if self.alpha else {"NDI_UYVY"}
        prog = pipeline.loader.program("quad.vert", "ndi.frag", defines)
        h, tw = self.frame_shape[:2]
        tex = ctx.texture((tw, h), 4)
        fbo = ctx.framebuffer(color_attachments=[tex])
        pbo = ctx.buffer(reserve=tw * h * 4)
        vao = ctx.vertex_array(prog, [])
        self._gl = (prog, vao, tex, fbo, pbo, pipeline)

    def start(self) -> None:
        """Start the sender thread."""
        self._thread = threading.Thread(target=self._run, name="vj-ndi", daemon=True)
        self._thread.start()

    # -- main thread -----------------------------------------------------------------------------------------
    def frame(self) -> None:
        """Once per display frame, after the pipeline rendered (main thread; never waits for the sender).

        Collects the previous frame's read-back into the hand-off slot, then draws and starts reading back this
        frame's. Cost: one small draw, and copying one frame (W*H*2 bytes, or W*H*4 with alpha) out of the
        pixel buffer.
        """
        if self._gl is None:
            return
        prog, vao, tex, fbo, pbo, pipeline = self._gl
        h, tw, _ = self.frame_shape
        if self._pending:
            buf = self._slot.write_buffer(h, tw)
            pbo.read_into(buf)
            self.pushed += 1
            self._slot.publish(frame_id=self.pushed, t_done_s=time.perf_counter())
            self._wake.set()
            self._pending = False
        fbo.use()
        pipeline.final.use(0)
        if "u_src" in prog:
            prog["u_src"].value = 0
        if "u_size" in prog:
            prog["u_size"].value = (float(self.size[0]), float(self.size[1]))
        vao.render(vertices=3)
        fbo.read_into(pbo, components=4, alignment=1)
        self._pending = True

    # -- analysis thread -------------------------------------------------------------------------------------
    def push_audio(self, hop: np.ndarray, sample_rate: int, capture_time_s: float | None = None) -> None:
        """Queue one mono hop (float32 [n], -1..1) at ``sample_rate`` [Hz] for the NDI audio (never blocks;
        ``capture_time_s`` is not needed: NDI timestamps on sending)."""
        if not self.audio or self._sender is None:
            return
        if int(sample_rate) != self.sample_rate or len(self._audio) > 2000:
            self.audio_dropped += int(np.shape(hop)[0])
            return
        self._audio.append(np.array(hop, np.float32))

    # -- sender thread ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        last = 0
        next_poll = 0.0
        first_error = True
        while not self._stop.is_set():
            self._wake.wait(0.02)
            self._wake.clear()
            try:
                if self._audio:
                    self._send_audio()
                f = self._slot.take(last)
                if f is not None:
                    last = f.frame_id
                    self._sender.write_video_async(f.image.reshape(-1))
                    self.sent += 1
                now = time.perf_counter()
                if now >= next_poll:
                    self._connections = int(self._sender.get_num_connections(0))
                    next_poll = now + 1.0
            except Exception as exc:  # noqa: BLE001 — keep sending; say it once
                self.error = _one_line(exc)
                if first_error:
                    log.warning("NDI: sending failed (%s); retrying", self.error)
                    first_error = False
                time.sleep(0.05)

    def _send_audio(self) -> None:
        hops = []
        while self._audio:
            hops.append(self._audio.popleft())
        data = np.concatenate(hops)
        for i in range(0, data.shape[0], self.max_audio_samples):
            chunk = data[i:i + self.max_audio_samples]
            self._sender.write_audio(np.ascontiguousarray(chunk[None, :]))
            self.audio_sent += chunk.shape[0]

    # -- reporting and shutdown ------------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Frames read back but never sent (overwritten in the hand-off slot)."""
        return self._slot.overwritten

    @property
    def connections(self) -> int:
        """Receivers connected, as of the last poll (about once a second)."""
        return self._connections

    def stats(self) -> dict:
        """Figures for the ``--stats`` line: ``ndi_sent``, ``ndi_dropped``, ``ndi_connections`` (and
        ``ndi_error`` after a sending error)."""
        out = {"ndi_sent": self.sent, "ndi_dropped": self.dropped, "ndi_connections": self._connections}
        if self.audio:
            out["ndi_audio_samples"] = self.audio_sent
        if self.error:
            out["ndi_error"] = self.error
        return out

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread, close the source and release the GL objects (main thread, context current)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("NDI: the sender thread did not stop in time")
        if self._sender is not None:
            try:
                self._sender.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("NDI: closing the source: %s", _one_line(exc))
            self._sender = None
        if self._gl is not None:
            for o in self._gl[1:5]:
                try:
                    o.release()
                except Exception:  # noqa: BLE001
                    pass
            self._gl = None
