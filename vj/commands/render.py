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
    ("--class-beat", "class_beat", "class mix moves on the beats"),
    ("--truncation-pulse", "truncation_pulse", "truncation swing on each beat"),
    ("--pulse-lead", "pulse_lead_s", "how early the pulse starts"),
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", help="audio file (wav, flac, ogg, mp3, m4a, ...) or 'demo' for the bundled piece")
    p.add_argument("-o", "--output", type=Path, default=Path("vj-render.mp4"), help="output video (default %(default)s)")
    _mapping_flag(p, "--fps", "fps", "video frame rate")
    p.add_argument("--resolution", type=resolution, default=(512, 512),
                   help="output size, WIDTHxHEIGHT or SIZE (default 512); the generator's frames are resized to it "
                        "(bicubic, antialiased when shrinking)")
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


def run(args: argparse.Namespace) -> int:
    from vj.errors import VJError
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
        )
    )
    return 0
