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
from contextlib import ExitStack

from vj.clock import now_s
from vj.commands._args import ranged, resolution, tempo_range

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
    g.add_argument("--tempo-range", type=tempo_range, default=None, metavar="LO-HI",
                   help="beat tracker tempo range for the night [bpm], e.g. 110-150 (default 60-200)")
    g.add_argument("--input", default="demo", metavar="SRC",
                   help="audio input: an input device index or name, 'default', file:PATH (played in real time), "
                        "or demo (default)")
    g.add_argument("--monitor", action="store_true", help="with file:PATH or demo, also play it to the speakers")
    g.add_argument("--loop", action="store_true", help="with file:PATH, start again at the end (demo always loops)")
    g.add_argument("--model", default="auto", metavar="NAME",
                   help="auto (BigGAN-deep-128 if its weights are local, else the CPPN), cppn, biggan-deep-128, ...")
    g.add_argument("--weights", metavar="PATH", help="BigGAN weights: folder with pytorch_model.bin + config.json")
    g.add_argument("--device", default="auto",
                   help="torch device for the generator: auto (CUDA when available, else the CPU), cpu, cuda, "
                        "cuda:1 (default auto)")
    g.add_argument("--precision", choices=("auto", "fp16", "bf16", "fp32"), default="auto",
                   help="generator arithmetic (default auto: fp16 on GPUs with compute capability >= 7.0, else fp32; "
                        "bf16 on CPUs with native bf16); falls back by itself if a precision fails its check")
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
    r.add_argument("--show-log", metavar="FILE",
                   help="log the show (features of every hop, every parameter change, seeds, model) for an "
                        "aftermovie: vj render --replay FILE (docs/aftermovie.md)")
    r.add_argument("--show-log-audio", action="store_true",
                   help="with --show-log, also log the input audio (16-bit mono PCM: ~330 MB per hour at 44.1 kHz; "
                        "the features alone take ~27 MB per hour)")
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
    from vj.engine import ndi

    ndi.add_arguments(parser)
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
    with LiveSession(args) as session:
        session.play()
    session.report()
    return 0


class LiveSession:
    """One ``vj live`` show: builds every part in order on a :class:`contextlib.ExitStack` and tears them down in
    the reverse order, whatever failed half-way.

    Use as ``with LiveSession(args) as s: s.play()``; then :meth:`report`. Entering builds (and may raise
    :class:`VJError`); leaving stops the audio and inference threads, closes the control surfaces, the recorder,
    the stats file, the GL pipeline and the window, and leaves a hung audio stream to the OS.

    Attributes (after entering): registry, source, generator, surface, pipeline, stats, recorder (or None),
    features, frames, front, inference, show, surfaces; ``clean`` — every worker thread stopped in time.
    """

    def __init__(self, args) -> None:
        self.args = args
        self.clean = True
        self.recorder = None
        self.ndi = None
        self.showlog = None
        self.last_stats: dict = {}
        self.t0 = 0.0
        self._stack = ExitStack()

    def __enter__(self) -> "LiveSession":
        try:
            self._build()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    # -- set-up, in order; each part registers its own tear-down --------------------------------------------
    def _build(self) -> None:
        import torch

        from vj.audio.bars import BarSync
        from vj.audio.sources import leave_hung_streams_to_os, open_source
        from vj.control.ratelog import WarningsToLog
        from vj.control.surfaces import SurfaceOptions, start_surfaces
        from vj.display.pipeline import Pipeline
        from vj.display.show import Show, ShowOptions
        from vj.engine.audio import AudioFront
        from vj.engine.inference import InferenceThread, make_frame_fn
        from vj.engine.record import Recorder
        from vj.engine.slots import FrameSlot, LatestSlot
        from vj.engine.stats import StatsCollector
        from vj.mapping import Mapper, MappingSettings
        from vj.models import load_generator, resolve_device

        args, stack = self.args, self._stack
        library_warnings = WarningsToLog(log).install()  # a library's warnings go to the log, not the console
        stack.callback(library_warnings.restore)
        self.registry, classes = _registry(args)
        stack.callback(self._after_teardown, leave_hung_streams_to_os)
        is_file = args.input == "demo" or str(args.input).startswith("file:")
        # the demo piece loops (it is what a bare `vj live` plays); a file plays once unless --loop
        # a device that is not there at start-up is a typo or the wrong index: say so now (strict); one that
        # vanishes later is waited for while the show goes on
        self.source = open_source(args.input, **({"monitor": args.monitor, "loop": args.loop or args.input == "demo"}
                                                 if is_file else {"strict": True}))
        stack.callback(self.source.stop)
        dev = resolve_device(args.device)
        # float32 here: the runner (vj.engine.gpu) picks fp16 for CUDA itself when it prepares the generator
        gen = load_generator(args.model, weights=args.weights, device=dev, dtype=torch.float32, download=False,
                             seed=args.seed)
        self.generator = gen
        frame_fn = make_frame_fn(gen, args.device, precision=args.precision)
        mapper = Mapper(MappingSettings(classes=classes), seed=args.seed)
        mapper.apply_params(self.registry.snapshot())

        self.surface, fell_back = _open_surface(args)
        stack.callback(self.surface.close)
        if self.surface.overlay is not None:
            self.surface.overlay.visible = bool(args.overlay)
        res = int(getattr(gen, "resolution", 128))
        self.pipeline = Pipeline(self.surface.ctx, args.size, (res, res))
        stack.callback(self.pipeline.release)
        self.t0 = now_s()
        self.stats = StatsCollector(args.stats, self.t0)
        stack.callback(self.stats.close)
        if fell_back or args.headless:
            self.stats.console_every_s = 5.0
        if args.record:
            self.recorder = Recorder(args.record, args.size, fps=args.record_fps, t0_s=self.t0)
            stack.callback(self.recorder.close)
        fps_cap = args.fps_cap or (60.0 if args.headless or fell_back else 0.0)
        from vj.engine.ndi import chain, start_from_args  # imports cyndilib only when --ndi asks for it

        self.ndi = start_from_args(args, self.pipeline, fps_cap or 60.0, getattr(self.source, "sample_rate", None))
        if self.ndi is not None:
            stack.callback(self.ndi.close)
        if args.show_log:  # every hop's features and every applied change, on its own writer thread
            from vj.showlog import LoggedFeatureSlot

            self.showlog = _open_show_log(args, self.t0, gen, getattr(gen, "model_name", args.model), classes,
                                          self.registry, self.source)
            stack.callback(self._close_show_log)
            self.features = LoggedFeatureSlot(self.showlog)
        else:
            self.features = LatestSlot()
        self.frames = FrameSlot(res, res)
        bar_sync = BarSync()  # taps on the "one" (R, /vj/tempo/resync, MIDI) reach the analysis's bar tracker
        self.front = AudioFront(self.source, self.features,
                                on_audio=chain(self.recorder.push_audio if self.recorder else None,
                                               self.ndi.push_audio if self.ndi and self.ndi.audio else None,
                                               self.showlog.audio if self.showlog and args.show_log_audio else None),
                                analyzer_factory=lambda rate, hop: _analyzer(rate, hop, bar_sync, args.tempo_range))
        self.inference = InferenceThread(frame_fn, mapper, self.features, self.frames, self.registry,
                                         max_fps=args.gen_fps_cap, latency_fn=self.stats.latency_s,
                                         display_interval_fn=self.stats.display_interval_s)
        self.surfaces = start_surfaces(SurfaceOptions.from_args(args), self.registry,
                                       window=getattr(self.surface, "window", None), features=self.features)
        stack.callback(self._quietly, "closing control surfaces", self.surfaces.close)
        self.surfaces.clock.on_resync.append(bar_sync.request)
        for name, value in args.sets:  # --set wins over a --preset applied by the surfaces
            self.registry.set_now(name, value)
        self.show = Show(self.surface, self.pipeline, self.registry, self.features, self.frames, self.stats,
                         ShowOptions(fit=args.fit, fps_cap=fps_cap, duration_s=args.duration,
                                     screenshot=args.screenshot, screenshot_every_s=args.screenshot_every,
                                     timed_sets=list(args.timed), record_fps=args.record_fps,
                                     model=getattr(gen, "model_name", args.model), input=_input_label(args.input)),
                         source=self.source, inference=self.inference, recorder=self.recorder,
                         class_names=_class_names(), controls=self.surfaces)
        self.show.ndi = self.ndi
        if self.showlog is not None:  # the state the show starts from, then every change as applied
            from vj.showlog import BeatTap

            self.showlog.params(self.registry.snapshot(), self.registry.palette)
            self.registry.on_applied = self.showlog.params
            self.show.beat_source = BeatTap(self.show.beat_source, self.showlog)
            self.showlog.start()
        if self.recorder is not None:
            self.recorder.start()
        self.inference.start()
        stack.callback(self._stop_worker, self.inference.stop)
        self.front.start()
        stack.callback(self._stop_worker, self.front.stop)
        for signum in (signal.SIGINT, signal.SIGTERM):  # SIGTERM: `kill`, systemd, a supervisor — stop cleanly
            stack.callback(signal.signal, signum, signal.getsignal(signum))
            signal.signal(signum, self._on_sigint)

    # -- tear-down helpers -------------------------------------------------------------------------------------
    def _on_sigint(self, signum, frame) -> None:
        self.show.stop_requested = True

    def _stop_worker(self, stop) -> None:
        self.clean &= bool(stop())

    @staticmethod
    def _quietly(what: str, fn) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 — closing at exit must not hide the exit's cause
            log.warning("%s: %s", what, exc)

    def _close_show_log(self) -> None:
        self.registry.on_applied = None
        self.showlog.close()

    def _after_teardown(self, leave_hung_streams_to_os) -> None:
        if not self.clean:
            log.warning("a worker thread did not stop in time")
        leave_hung_streams_to_os()

    # -- the show ----------------------------------------------------------------------------------------------
    def play(self) -> None:
        """Run the frame loop (:meth:`vj.display.show.Show.run`) until it ends, then write the last stats line."""
        self.show.run()
        self.last_stats = self.show.emit_stats(now_s())

    def report(self) -> None:
        """Log the show's summary (and the recording's) after tear-down."""
        show, stats = self.show, self.stats
        elapsed = now_s() - self.t0
        log.info("live: %.1f s, %d swaps (%.1f fps), %d generated frames shown (%.1f fps), latency p50 %s ms "
                 "p95 %s ms (beat pulse lead %s ms), %d generated frames dropped, %d audio overflows",
                 elapsed, show.swaps, show.swaps / max(elapsed, 1e-9), show.frames_shown,
                 show.frames_shown / max(elapsed, 1e-9), _fmt(stats.latency_ms(50)), _fmt(stats.latency_ms(95)),
                 _fmt(self.inference.pulse_lead_s * 1000.0), self.frames.overwritten,
                 self.last_stats.get("audio_overflows", 0))
        recorder = self.recorder
        if recorder is not None:
            if recorder.error:
                log.warning("record: %s", recorder.error)
            else:
                log.info("recorded %s: %d frames, %d dropped", self.args.record, recorder.frames_written,
                         recorder.dropped_video)
        ndi = self.ndi
        if ndi is not None:
            log.info("NDI %r: %d frames sent, %d dropped%s", ndi.source_name, ndi.sent, ndi.dropped,
                     f" ({ndi.error})" if ndi.error else "")


def _registry(args):
    """The parameter registry with ``--set``, ``--classes`` applied; checks ``--at``, ``--stats``, screenshots.

    Returns:
        ``(registry, classes)`` — classes as ImageNet indices, or None.

    Raises:
        VJError: an unknown parameter, bad classes, an unwritable stats file, a screenshot pattern without {n}.
    """
    from vj.control.params import ParamRegistry
    from vj.errors import VJError

    if args.screenshot_every and not (args.screenshot and "{n}" in args.screenshot):
        raise VJError("--screenshot-every needs --screenshot with {n} in the name, e.g. shot_{n}.png")
    if args.show_log_audio and not args.show_log:
        raise VJError("--show-log-audio needs --show-log FILE")
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
    return registry, classes


def _open_surface(args):
    """The window (or headless surface) the show draws on.

    Returns:
        ``(surface, fell_back)`` — fell_back is True when no display was there and the show runs headless.

    Raises:
        VJError: ``--fullscreen``/``--screen`` asked for a display that is not there, or EGL is missing.
    """
    from vj.display.window import HeadlessSurface, LiveWindow
    from vj.errors import VJError

    if args.headless:
        return HeadlessSurface(), False
    try:
        return LiveWindow(size=args.size, fullscreen=args.fullscreen, screen=args.screen, vsync=not args.no_vsync,
                          title="vj"), False
    except VJError as exc:
        if args.fullscreen or args.screen is not None:
            raise  # a show asked for a projector: say it is not there
        # no display at all (a server, CI, ssh): the show still runs, headless, and says how it is doing
        log.info("no display to open a window on (%s): running headless instead (status every 5 s; "
                 "--record FILE.mp4 keeps the output; Ctrl-C stops)", str(exc).split("(", 1)[-1].split(")")[0])
        return HeadlessSurface(), True


def _analyzer(sample_rate: int, hop_size: int, bar_sync, tempo_range=None):
    """The live analyzer, with ``bar_sync`` (a :class:`vj.audio.bars.BarSync`) feeding its bar tracker and the
    beat tracker searching ``tempo_range`` (LO, HI) [bpm] when given."""
    from vj.audio.analysis import AnalysisConfig, StreamingAnalyzer

    cfg = None
    if tempo_range:
        lo, hi = tempo_range
        cfg = AnalysisConfig(min_bpm=lo, max_bpm=hi, prior_bpm=min(max(110.0, lo), hi))
    an = StreamingAnalyzer(sample_rate, hop_size=hop_size, config=cfg)
    an.bar_sync = bar_sync
    return an


def _open_show_log(args, t0, gen, model_label, classes, registry, source):
    """Create the ``--show-log`` writer with its header (see :mod:`vj.showlog`). Raises VJError if unwritable."""
    import datetime

    import vj
    from vj.mapping import MappingSettings
    from vj.showlog import ShowLogWriter, weights_identity

    ident = weights_identity(model_label, args.weights)
    header = {
        "vj_version": vj.__version__, "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "model": model_label, "weights_path": ident["weights_path"], "generator_resolution":
            int(getattr(gen, "resolution", 128)), "seed": int(args.seed), "classes": list(classes or []),
        "mapping": MappingSettings(classes=classes).to_json(), "input": str(args.input),
        "loop": bool(args.loop or args.input == "demo"),
        "sample_rate": int(getattr(source, "sample_rate", 0) or 0),
        "hop_size": int(getattr(source, "hop_size", 0) or 0),
        "output_size": list(args.size), "params": registry.snapshot(), "palette":
            [list(registry.palette.source), list(registry.palette.target), registry.palette.mix],
        "audio": bool(args.show_log_audio), "beat_source": "clock",
    }
    return ShowLogWriter(args.show_log, header, t0, weights_path=ident["weights_path"])


def _input_label(spec: str) -> str:
    """Short name of the input for the overlay (``file:`` inputs by file name)."""
    import os

    spec = str(spec)
    return "file:" + os.path.basename(spec[5:]) if spec.startswith("file:") else spec[:40]


def _fmt(x: float) -> str:
    return "-" if x != x else f"{x:.0f}"
