"""``vj render AUDIO -o OUT.mp4``: render a song to a music video offline."""

from __future__ import annotations

import argparse
from pathlib import Path

from vj.commands._args import ranged, resolution
from vj.parameters import setting

HELP = "render an audio file (or 'demo') to an H.264/AAC music video"


def _mapping_flag(group, flag: str, field: str, what: str, default=True) -> None:
    """Add a mapping flag whose range and default come from its declaration (:func:`vj.parameters.setting`)."""
    p = setting(field)
    kind = int if p.kind == "int" else float
    lo, hi = (kind(p.lo), kind(p.hi))
    unit = f" [{p.unit}]" if p.unit and p.unit != "frames" else ""
    value = kind(p.render_value)
    help_default = f" (default {value:g})" if default else f" (default {value:g}, or as many as --classes)"
    group.add_argument(flag, type=ranged(kind, lo, hi), default=value if default else None,
                       help=f"{lo:g}..{hi:g}{unit}: {what}{help_default}")


#: the beat-locked reactions (vj.motion), 0 = the original's motion
_REACTIONS = (
    ("--pulse", "pulse", "noise jolt on each beat, decaying within the beat"),
    ("--calm", "calm", "reduction of the steady loudness motion"),
    ("--onset-follow", "onset_follow", "noise step with each frame's onset strength"),
    ("--class-beat", "class_beat", "class mix moves on the beats"),
    ("--truncation-pulse", "truncation_pulse", "truncation swing on each beat"),
    ("--pulse-lead", "pulse_lead_s", "how early the pulse starts"),
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", nargs="?", default=None,
                   help="audio file (wav, flac, ogg, mp3, m4a, ...) or 'demo' for the bundled piece; with --replay, "
                        "optionally the show's original audio for the soundtrack")
    p.add_argument("-o", "--output", type=Path, default=Path("vj-render.mp4"), help="output video (default %(default)s)")
    _mapping_flag(p, "--fps", "fps", "video frame rate")
    p.add_argument("--resolution", type=_size, default=(512, 512),
                   help="output size: WIDTHxHEIGHT, SIZE, 1080p or 720p (default 512); the generator's frames are "
                        "resized to it (bicubic, antialiased when shrinking; through the effects pass unless --no-fx)")
    p.add_argument("--start", type=ranged(float, 0.0), default=0.0, metavar="S", help="start of the excerpt [s]")
    p.add_argument("--duration", type=ranged(float, 0.0, lo_open=True), default=None, metavar="S",
                   help="length of the excerpt [s] (default: to the end)")
    p.add_argument("--batch-size", type=ranged(int, 1, 256), default=4, help="frames per generator call")
    p.add_argument("--seed", type=ranged(int, 0, 2**31 - 1), default=0, help="same seed + input → identical frames")
    p.add_argument("--device", default="auto",
                   help="torch device: auto (CUDA when available, else the CPU), cpu, cuda, cuda:1 ... "
                        "(default %(default)s)")
    p.add_argument("--model", default="auto",
                   help="auto (BigGAN-deep-128 if its weights are here, else CPPN), cppn, biggan-deep-128/256/512")
    p.add_argument("--weights", default=None, metavar="PATH", help="BigGAN weights: a directory or a .bin/.safetensors")
    p.add_argument("--precision", choices=("auto", "fp16", "bf16", "fp32"), default="auto",
                   help="BigGAN arithmetic (default auto: fp16 on GPUs with compute capability >= 7.0, bf16 on CPUs "
                        "with native bf16, else fp32); the CPPN always runs fp32")
    p.add_argument("--crf", type=ranged(int, 0, 51), default=18, help="x264 quality, lower is better (default 18)")
    p.add_argument("--hop", type=ranged(int, 64, 8192), default=512, help="analysis hop [samples] (default 512)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-fx", action="store_true",
                   help="the bare generator: no live effects pass (flash, zoom, feedback, hue, sharpen ...)")
    p.add_argument("--set", dest="sets", type=_set_spec, action="append", default=[], metavar="NAME=VALUE",
                   help="an effect parameter for the effects pass (repeatable), e.g. --set fx.feedback.amount=0.6")

    a = p.add_argument_group("aftermovie (docs/aftermovie.md)")
    a.add_argument("--replay", type=Path, default=None, metavar="LOG",
                   help="render a show log written by vj live --show-log (the model may differ from the show's)")
    a.add_argument("--end", type=ranged(float, 0.0, lo_open=True), default=None, metavar="S",
                   help="with --replay: end of the excerpt on the show's audio clock [s]")
    a.add_argument("--chunk-frames", type=ranged(int, 1, 4096), default=16,
                   help="with --replay: frames per generator chunk (the unit farmed out; default 16)")
    a.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="with --replay: farm the generator out to a Ray cluster (ADDRESS, 'auto' for the running "
                        "one; no value: a local one); pip install 'vj[farm]'")
    a.add_argument("--ray-workers", type=ranged(int, 1, 4096), default=None, metavar="N",
                   help="Ray actors (default one per GPU, or one per CPU without GPUs)")

    m = p.add_argument_group("mapping (the deep music visualizer's controls)")
    _mapping_flag(m, "--pitch-sensitivity", "pitch_sensitivity", "how fast the classes follow the pitch")
    _mapping_flag(m, "--tempo-sensitivity", "tempo_sensitivity", "how far the noise moves with loudness")
    _mapping_flag(m, "--depth", "depth", "maximum class weight")
    _mapping_flag(m, "--jitter", "jitter", "noise jitter")
    _mapping_flag(m, "--truncation", "truncation", "BigGAN truncation")
    _mapping_flag(m, "--smooth-factor", "smooth_factor", "class smoothing [video frames]")
    _mapping_flag(m, "--num-classes", "num_classes", "how many classes", default=False)
    m.add_argument("--classes", nargs="+", default=None, metavar="CLASS",
                   help="up to 12 ImageNet classes by index or name (e.g. 985 107, or daisy jellyfish)")
    m.add_argument("--sort-classes-by-power", action="store_true",
                   help="tie the first class to the most powerful pitch, the second to the next, ...")
    _mapping_flag(m, "--beat-kick", "beat_kick", "noise jump on each beat")
    for flag, field, what in _REACTIONS:
        _mapping_flag(m, flag, field, what)
    m.add_argument("--lookahead", action="store_true",
                   help="smooth with future audio, as the original did (offline only; default causal, as live)")
    m.add_argument("--save-latents", type=Path, default=None, metavar="FILE.npz", help="save the latent trajectory")
    m.add_argument("--load-latents", type=Path, default=None, metavar="FILE.npz",
                   help="reuse a saved latent trajectory instead of analysing (use_previous_vectors)")


def _size(text: str) -> tuple[int, int]:
    from vj.replay import NAMED_SIZES

    return NAMED_SIZES.get(text.lower()) or resolution(text)


def _set_spec(text: str):
    from vj.commands.live import _set_spec as parse

    return parse(text)


def run(args: argparse.Namespace) -> int:
    from vj.errors import VJError

    if args.replay is not None:
        return _run_replay(args)
    if args.audio is None:
        raise VJError("give an audio file (or 'demo'), or --replay LOG")
    for flag in ("end", "ray", "ray_workers"):
        if getattr(args, flag) is not None:
            raise VJError(f"--{flag.replace('_', '-')} is for --replay")
    from vj.mapping import MappingSettings
    from vj.render import RenderOptions, render

    classes = None
    if args.classes:
        if len(args.classes) > 12:
            raise VJError(f"give at most 12 classes (got {len(args.classes)})")
        from vj.models.imagenet import resolve_classes

        classes = resolve_classes(args.classes)
    num_classes = args.num_classes if args.num_classes is not None else (
        len(classes) if classes else MappingSettings.num_classes)
    if classes and num_classes > len(classes):
        raise VJError(f"--num-classes {num_classes} is more than the {len(classes)} classes given")
    settings = MappingSettings(
        pitch_sensitivity=args.pitch_sensitivity,
        tempo_sensitivity=args.tempo_sensitivity,
        depth=args.depth,
        jitter=args.jitter,
        truncation=args.truncation,
        smooth_factor=args.smooth_factor,
        num_classes=num_classes,
        classes=classes,
        sort_classes_by_power=args.sort_classes_by_power,
        fps=args.fps,
        beat_kick=args.beat_kick,
        **{field: getattr(args, flag[2:].replace("-", "_")) for flag, field, _ in _REACTIONS},
    )
    if args.save_latents and args.load_latents:
        raise VJError("use either --save-latents or --load-latents, not both")
    render(
        RenderOptions(
            audio=args.audio,
            output=args.output,
            fps=args.fps,
            resolution=args.resolution,
            start_s=args.start,
            duration_s=args.duration,
            batch_size=args.batch_size,
            seed=args.seed,
            device=args.device,
            model=args.model,
            weights=args.weights,
            lookahead=args.lookahead,
            save_latents=args.save_latents,
            load_latents=args.load_latents,
            hop_size=args.hop,
            crf=args.crf,
            precision=args.precision,
            progress=not args.no_progress,
            settings=settings,
            fx=not args.no_fx,
            sets=list(args.sets),
        )
    )
    return 0


def _run_replay(args: argparse.Namespace) -> int:
    from vj.errors import VJError
    from vj.replay import ReplayOptions, render_replay

    if args.load_latents or args.save_latents or args.lookahead:
        raise VJError("--replay renders the logged timeline: --load-latents, --save-latents and --lookahead do not "
                      "apply")
    if args.sets:
        raise VJError("--replay takes its parameters from the log; --set does not apply")
    end = args.end
    if end is None and args.duration is not None:
        end = args.start + args.duration
    render_replay(ReplayOptions(
        log=args.replay, output=args.output, model=None if args.model == "auto" else args.model,
        weights=args.weights, resolution=args.resolution, fps=args.fps, start_s=args.start, end_s=end,
        audio=args.audio, fx=not args.no_fx, device=args.device, precision=args.precision,
        batch_size=args.batch_size, chunk_frames=args.chunk_frames, ray=args.ray, ray_workers=args.ray_workers,
        crf=args.crf, progress=not args.no_progress))
    return 0
