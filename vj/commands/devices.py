"""``vj devices``: list what vj can use here — audio inputs, screens, MIDI input ports, NDI sources.

Audio inputs are listed as PortAudio sees them (``INDEX  NAME  channels, default rate``, ``*`` marks the default);
the index or any part of the name can be given to ``vj live --input``. Screens are listed only when an X display
is available (``DISPLAY`` set); MIDI ports need an ALSA sequencer (``/dev/snd/seq``). Whatever is missing is one
notice line, never an error: the exit status is 0 even on a machine with no sound card, display or MIDI.
NDI sources on the network (another vj's ``--ndi``, Resolume, OBS, ...) are listed when the optional NDI runtime
is installed (``vj[ndi]``), else one line says how to install it; ``--ndi-peers IP,...`` looks at those machines
directly when mDNS does not cross the network. ``--json`` prints one JSON object instead (keys ``audio_inputs``,
``screens``, ``midi_inputs``, ``ndi_sources``, ``notices``).
"""

from __future__ import annotations

import contextlib
import os

HELP = "list audio inputs, screens, MIDI input ports and NDI sources"


def configure(parser) -> None:
    """Add the ``devices`` arguments: ``--json``, ``--ndi-peers``, ``--ndi-wait``."""
    from vj.commands._args import ranged
    from vj.engine.ndi import parse_peers

    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--ndi-peers", type=parse_peers, default=None, metavar="IP,...",
                        help="look for NDI sources on these machines directly (no mDNS needed)")
    parser.add_argument("--ndi-wait", type=ranged(float, 0.1, 30.0), default=1.5, metavar="S",
                        help="how long to look for NDI sources (default 1.5 s)")


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C libraries (ALSA, RtMidi) that print straight to file descriptor 2."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


def audio_inputs() -> tuple[list[dict], str | None]:
    """Audio inputs (see :func:`vj.audio.sources.list_input_devices`) and a notice line, or None."""
    from vj.errors import VJError

    try:
        from vj.audio.sources import list_input_devices

        with _quiet_stderr():
            inputs = list_input_devices()
    except VJError as exc:
        return [], f"audio: {exc}"
    return inputs, (None if inputs else "audio: no audio inputs found")


def screens() -> tuple[list[dict], str | None]:
    """Screens of the display: index, name, x, y, width, height [pixels], refresh_hz (0: unknown), primary
    (the default screen), and a notice line, or None."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return [], "screens: no display"
    try:
        import pyglet

        display = pyglet.display.get_display()
        default = None
        with contextlib.suppress(Exception):
            default = display.get_default_screen()
        out = []
        for i, screen in enumerate(display.get_screens()):
            try:
                rate = float(getattr(screen.get_mode(), "rate", 0) or 0)
            except Exception:
                rate = 0.0
            name = ""
            with contextlib.suppress(Exception):
                name = screen.get_monitor_name() or ""
            primary = bool(getattr(screen, "is_primary", False)) or (
                default is not None
                and (default.x, default.y, default.width, default.height)
                == (screen.x, screen.y, screen.width, screen.height)
            )
            out.append(
                {
                    "index": i,
                    "name": name,
                    "x": int(screen.x),
                    "y": int(screen.y),
                    "width": int(screen.width),
                    "height": int(screen.height),
                    "refresh_hz": rate,
                    "primary": primary,
                }
            )
    except Exception as exc:
        return [], f"screens: display {os.environ.get('DISPLAY', '')!r} not usable ({_one_line(exc)})"
    return out, (None if out else "screens: none found")


def midi_inputs() -> tuple[list[str], str | None]:
    """Names of MIDI input ports (mido with python-rtmidi), and a notice line, or None."""
    try:
        import mido

        with _quiet_stderr():
            names = list(mido.get_input_names())
    except ImportError as exc:
        return [], f"midi: not available ({_one_line(exc)}; install vj[midi])"
    except Exception as exc:
        if not os.path.exists("/dev/snd/seq"):
            return [], "midi: unavailable (no ALSA sequencer: /dev/snd/seq missing)"
        return [], f"midi: unavailable ({_one_line(exc)})"
    return names, (None if names else "midi: no MIDI input ports found")


def ndi_sources(wait_s: float = 1.5, peers: list[str] | None = None) -> tuple[list[str], str | None]:
    """Names of the NDI sources visible (``"HOST (name)"``) and a notice line, or None.

    Without the optional runtime (``vj[ndi]``) the notice says how to install it.
    """
    from vj.engine import ndi
    from vj.engine.ndi_receive import find_sources

    if peers:
        ndi.use_peers(peers)
    try:
        names = find_sources(wait_s)
    except ndi.NdiError as exc:
        return [], str(exc)
    return names, (None if names else f"NDI: no sources found within {wait_s:g} s")


def run(args) -> int:
    """Print the devices.

    Returns:
        0 (missing hardware is reported as notice lines, not as an error).
    """
    inputs, n_audio = audio_inputs()
    scr, n_screens = screens()
    midi, n_midi = midi_inputs()
    ndi, n_ndi = ndi_sources(getattr(args, "ndi_wait", 1.5), getattr(args, "ndi_peers", None))
    notices = [n for n in (n_audio, n_screens, n_midi, n_ndi) if n]
    if args.json:
        import json

        print(json.dumps({"audio_inputs": inputs, "screens": scr, "midi_inputs": midi, "ndi_sources": ndi,
                          "notices": notices}, indent=2))
        return 0
    print("audio inputs:")
    if inputs:
        for d in inputs:
            mark = "*" if d["is_default"] else " "
            print(
                f"  {mark}{d['index']:>3}  {d['name']}  ({d['channels']} ch, {d['default_samplerate']:.0f} Hz, "
                f"{d['hostapi']})"
            )
    else:
        print(f"  {n_audio.split(': ', 1)[1]}")
    print("screens:" if scr else n_screens)
    for s in scr:
        extra = f", {s['refresh_hz']:.0f} Hz" if s["refresh_hz"] else ""
        name = f"  {s['name']}" if s["name"] else ""
        print(f"   {s['index']:>3}  {s['width']}x{s['height']} at +{s['x']}+{s['y']}{extra}{name}"
              f"{'  (primary)' if s['primary'] else ''}")
    print("midi inputs:" if midi else n_midi)
    for i, name in enumerate(midi):
        print(f"   {i:>3}  {name}")
    print("NDI sources:" if ndi else n_ndi)
    for name in ndi:
        print(f"        {name}")
    return 0
