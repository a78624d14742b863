"""``vj live``: music in, generated imagery out, in a window (or fullscreen on a projector) at the display rate.

Threads (see DESIGN.md): the audio source's thread copies hops; the analysis thread turns them into
:class:`Features` (latest-wins slot + event counters); the inference thread maps the newest features and the live
parameters to latents and generates frames into a latest-wins frame slot; the main thread runs the window:
interpolation between the last two frames, upscale, effects, overlay, swap. Nobody waits for anybody.
Control surfaces (OSC, MIDI, presets, tempo, keys) attach through :mod:`vj.control.surfaces`.

Ends on window close, Escape (twice within 1 s, or held, when fullscreen), Ctrl-C or SIGTERM, or ``--duration``; every thread
is joined and every stream closed before returning.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import time

from vj.commands._args import ranged, resolution

HELP = "play live: audio input → BigGAN imagery in a window or fullscreen"

log = logging.getLogger("vj")


def _set_spec(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE (e.g. blackout=1)")
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r}: value must be finite")
    return name.strip(), v


def _at_spec(text: str) -> tuple[float, str, float]:
    when, sep, rest = text.partition(":")
    try:
        t = float(when)
    except ValueError:
        t = math.nan
    if not sep or not math.isfinite(t) or t < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not SECONDS:NAME=VALUE (e.g. 3:blackout=1)")
    name, v = _set_spec(rest)
    return t, name, v


def configure(parser) -> None:
    """Add the ``live`` arguments (see ``vj live --help`` and docs/live.md)."""
    g = parser.add_argument_group("input and model")
    g.add_argument("--input", default="demo", metavar="SRC",
                   help="audio input: an input device index or name, 'default', file:PATH (played in real time), "
                        "or demo (default)")
    g.add_argument("--monitor", action="store_true", help="with file:PATH or demo, also play it to the speakers")
    g.add_argument("--loop", action="store_true", help="with file:PATH, start again at the end (demo always loops)")
    g.add_argument("--model", default="auto", metavar="NAME",
                   help="auto (BigGAN-deep-128 if its weights are local, else the CPPN), cppn, biggan-deep-128, ...")
    g.add_argument("--weights", metavar="PATH", help="BigGAN weights: folder with pytorch_model.bin + config.json")
    g.add_argument("--device", default="cpu", help="torch device for the generator (cpu, cuda, cuda:1)")
    g.add_argument("--classes", metavar="LIST",
                   help="comma-separated ImageNet classes (names or indices, up to 12), e.g. 'jellyfish,daisy,1'")
    g.add_argument("--seed", type=ranged(int, 0), default=0, help="random seed of the mapping (default 0)")
    g.add_argument("--gen-fps-cap", type=ranged(float, 0.0), default=60.0, metavar="HZ",
                   help="most generated frames per second (0 = no cap; default 60)")
    w = parser.add_argument_group("output")
    w.add_argument("--size", type=resolution, default=(1280, 720), metavar="WxH",
                   help="output resolution and initial window size (default 1280x720)")
    w.add_argument("--fullscreen", action="store_true", help="start fullscreen (F toggles)")
    w.add_argument("--screen", type=ranged(int, 0), default=None, metavar="N", help="screen (monitor) index")
    w.add_argument("--fit", choices=("letterbox", "fill"), default="letterbox",
                   help="window of another aspect ratio: show all with bars (letterbox) or crop to fill")
    w.add_argument("--no-vsync", action="store_true", help="do not wait for the vertical blank")
    w.add_argument("--fps-cap", type=ranged(float, 0.0), default=0.0, metavar="HZ",
                   help="most display frames per second (0 = vsync only; headless default 60)")
    w.add_argument("--headless", action="store_true",
                   help="no window: render offscreen with EGL (GPU servers, benchmarks); stats and --record work")
    w.add_argument("--overlay", action="store_true", help="start with the operator overlay shown (H/Tab toggles)")
    r = parser.add_argument_group("recording, stats, testing")
    r.add_argument("--duration", type=ranged(float, 0.0, lo_open=True), metavar="S", help="stop after S seconds")
    r.add_argument("--stats", metavar="FILE", help="append one JSON line of health figures per second to FILE")
    r.add_argument("--record", metavar="OUT.mp4", help="record the output and the input audio (H.264 + AAC)")
    r.add_argument("--record-fps", type=ranged(float, 1.0, 120.0), default=30.0, metavar="HZ",
                   help="frame rate of --record (default 30)")
    r.add_argument("--screenshot", metavar="PNG",
                   help="save what the window shows as PNG at exit; with --screenshot-every, a pattern with {n}")
    r.add_argument("--screenshot-every", type=ranged(float, 0.0, lo_open=True), metavar="S",
                   help="save a screenshot every S seconds")
    r.add_argument("--set", dest="sets", type=_set_spec, action="append", default=[], metavar="NAME=VALUE",
                   help="set a live parameter at start (repeatable), e.g. --set fx.feedback.amount=0.6")
    r.add_argument("--at", dest="timed", type=_at_spec, action="append", default=[], metavar="S:NAME=VALUE",
                   help="set a live parameter S seconds into the show (repeatable), e.g. --at 3:blackout=1")
    from vj.control import surfaces

    surfaces.add_arguments(parser)


def _resolve_classes(text: str | None) -> list[int] | None:
    if not text:
        return None
    from vj.errors import VJError
    from vj.models import imagenet

    items = [x.strip() for x in text.split(",") if x.strip()]
    if not 1 <= len(items) <= 12:
        raise VJError(f"--classes: give 1 to 12 classes (got {len(items)})")
    return imagenet.resolve_classes(items)


def _class_names():
    from vj.models.imagenet import class_names

    try:
        return class_names()
    except Exception:  # noqa: BLE001 — the overlay shows indices instead
        return None


def run(args) -> int:
    """Play until the window closes, Ctrl-C or ``--duration``.

    Returns:
        0 after a clean shutdown.

    Raises:
        VJError: bad options, an unreadable input file, missing weights, no display (use ``--headless``),
            a stats/record path that cannot be written.
    """
    import torch

    from vj.audio.sources import open_source
    from vj.control.params import ParamRegistry
    from vj.control.ratelog import WarningsToLog
    from vj.control.surfaces import start_surfaces
    from vj.display.pipeline import Pipeline
    from vj.display.show import Show, ShowOptions
    from vj.display.window import HeadlessSurface, LiveWindow, param_keys
    from vj.engine.audio import AudioFront
    from vj.engine.inference import InferenceThread, make_frame_fn
    from vj.engine.record import Recorder
    from vj.engine.slots import FrameSlot, LatestSlot
    from vj.engine.stats import StatsCollector
    from vj.errors import VJError
    from vj.mapping import Mapper, MappingSettings
    from vj.models import load_generator, resolve_device

    if args.screenshot_every and not (args.screenshot and "{n}" in args.screenshot):
        raise VJError("--screenshot-every needs --screenshot with {n} in the name, e.g. shot_{n}.png")
    registry = ParamRegistry()
    for name, value in args.sets:
        if name not in registry:
            raise VJError(f"--set: unknown parameter {name!r}")
        registry.set_now(name, value)
    for _, name, _ in args.timed:
        if name not in registry:
            raise VJError(f"--at: unknown parameter {name!r}")
    classes = _resolve_classes(args.classes)
    if classes:
        registry.set_classes(classes)
        registry.apply_pending()
    if args.stats:
        try:
            open(args.stats, "a").close()
        except OSError as exc:
            raise VJError(f"--stats {args.stats}: {exc.strerror}") from None

    is_file = args.input == "demo" or str(args.input).startswith("file:")
    # the demo piece loops (it is what a bare `vj live` plays); a file plays once unless --loop
    # a device that is not there at start-up is a typo or the wrong index: say so now (strict); one that vanishes
    # later is waited for while the show goes on
    source = open_source(args.input, **({"monitor": args.monitor, "loop": args.loop or args.input == "demo"}
                                        if is_file else {"strict": True}))
    dev = resolve_device(args.device)
    # float32 here: the runner (vj.engine.gpu) picks fp16 for CUDA itself when it prepares the generator
    gen = load_generator(args.model, weights=args.weights, device=dev, dtype=torch.float32, download=False,
                         seed=args.seed)
    model_label = getattr(gen, "model_name", args.model)
    frame_fn = make_frame_fn(gen, dev)
    mapper = Mapper(MappingSettings(classes=classes), seed=args.seed)
    mapper.apply_params(registry.snapshot())

    fell_back = False
    if args.headless:
        surface = HeadlessSurface()
    else:
        try:
            surface = LiveWindow(size=args.size, fullscreen=args.fullscreen, screen=args.screen,
                                 vsync=not args.no_vsync, title="vj")
        except VJError as exc:
            if args.fullscreen or args.screen is not None:
                raise  # a show asked for a projector: say it is not there
            # no display at all (a server, CI, ssh): the show still runs, headless, and says how it is doing
            log.info("no display to open a window on (%s): running headless instead (status every 5 s; "
                     "--record FILE.mp4 keeps the output; Ctrl-C stops)", str(exc).split("(", 1)[-1].split(")")[0])
            surface, fell_back = HeadlessSurface(), True
    recorder = front = inference = surfaces = pipeline = stats = None
    old_sigint, old_sigterm = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    library_warnings = WarningsToLog(log).install()  # a library's warnings go to the log, not the console
    try:
        if surface.overlay is not None:
            surface.overlay.visible = bool(args.overlay)
            surface.on_key = param_keys(registry)
        res = int(getattr(gen, "resolution", 128))
        pipeline = Pipeline(surface.ctx, args.size, (res, res))
        t0 = time.perf_counter()
        stats = StatsCollector(args.stats, t0)
        if args.record:
            recorder = Recorder(args.record, args.size, fps=args.record_fps, t0_s=t0)
        features = LatestSlot()
        frames = FrameSlot(res, res)
        front = AudioFront(source, features, on_audio=recorder.push_audio if recorder else None)
        inference = InferenceThread(frame_fn, mapper, features, frames, registry, max_fps=args.gen_fps_cap)
        if fell_back or args.headless:
            stats.console_every_s = 5.0
        fps_cap = args.fps_cap or (60.0 if args.headless or fell_back else 0.0)
        show = Show(surface, pipeline, registry, features, frames, stats,
                    ShowOptions(fit=args.fit, fps_cap=fps_cap, duration_s=args.duration,
                                screenshot=args.screenshot, screenshot_every_s=args.screenshot_every,
                                timed_sets=list(args.timed), record_fps=args.record_fps, model=model_label,
                                input=_input_label(args.input)),
                    source=source, inference=inference, recorder=recorder, class_names=_class_names())

        def on_sigint(signum, frame):
            show.stop_requested = True

        signal.signal(signal.SIGINT, on_sigint)
        signal.signal(signal.SIGTERM, on_sigint)  # `kill`, systemd, a supervisor: stop cleanly, finish the mp4
        surfaces = start_surfaces(args, registry, window=getattr(surface, "window", None), features=features)
        show.beat_source = surfaces.clock.beat_count  # beat-synced effects follow tap / MIDI clock / the analysis
        for name, value in args.sets:  # --set wins over a --preset applied by the surfaces
            registry.set_now(name, value)
        if recorder is not None:
            recorder.start()
        inference.start()
        front.start()
        show.run()
        last = show.emit_stats(time.perf_counter())
    finally:
        signal.signal(signal.SIGINT, old_sigint)
        signal.signal(signal.SIGTERM, old_sigterm)
        library_warnings.restore()
        clean = True
        if surfaces is not None:
            try:
                surfaces.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("closing control surfaces: %s", exc)
        if front is not None:
            clean &= front.stop()
        else:
            source.stop()
        if inference is not None:
            clean &= inference.stop()
        if recorder is not None:
            recorder.close()
        if stats is not None:
            stats.close()
        if pipeline is not None:
            pipeline.release()
        surface.close()
        if not clean:
            log.warning("a worker thread did not stop in time")
        _leave_hung_audio_to_the_os()
    elapsed = time.perf_counter() - t0
    log.info("live: %.1f s, %d swaps (%.1f fps), %d generated frames shown (%.1f fps), latency p50 %s ms p95 %s "
             "ms, %d generated frames dropped, %d audio overflows",
             elapsed, show.swaps, show.swaps / max(elapsed, 1e-9), show.frames_shown,
             show.frames_shown / max(elapsed, 1e-9), _fmt(stats.latency_ms(50)), _fmt(stats.latency_ms(95)),
             frames.overwritten, last.get("audio_overflows", 0))
    if recorder is not None:
        if recorder.error:
            log.warning("record: %s", recorder.error)
        else:
            log.info("recorded %s: %d frames, %d dropped", args.record, recorder.frames_written,
                     recorder.dropped_video)
    return 0


def _input_label(spec: str) -> str:
    """Short name of the input for the overlay (``file:`` inputs by file name)."""
    import os

    spec = str(spec)
    return "file:" + os.path.basename(spec[5:]) if spec.startswith("file:") else spec[:40]


def _leave_hung_audio_to_the_os() -> None:
    """If closing the input stream hung inside a dead host API (a vanished device or sound server), skip
    PortAudio's exit-time terminate, which would wait on that stream forever; the OS reclaims it at exit."""
    import sys
    import threading

    stuck = [t for t in threading.enumerate() if t.name == "vj-stream-close" and t.is_alive()]
    sd = sys.modules.get("sounddevice")
    handler = getattr(sd, "_exit_handler", None)
    if stuck and handler is not None:
        import atexit

        atexit.unregister(handler)
        log.warning("the audio input did not close (its device or server is gone); leaving it to the OS")


def _fmt(x: float) -> str:
    return "-" if x != x else f"{x:.0f}"
