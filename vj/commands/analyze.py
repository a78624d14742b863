"""``vj analyze AUDIO [-o FILE.csv|FILE.json]``: the live analysis, hop by hop, as a table.

Runs :func:`vj.audio.analysis.analyze_signal` — the same :class:`~vj.audio.analysis.StreamingAnalyzer` code the
live audio callback runs — over a file (or ``demo``) and writes one row per hop:

``time_s, rms, bass, mid, high, onset, beat, bpm, pitch_midi, pitch_confidence, chroma_C … chroma_B,
downbeat, meter, bar_phase, phrase_pos, event, event_confidence, tempo_confidence``

``time_s`` is the end of the hop in the file's time (``--start`` included); ``onset``/``beat``/``downbeat`` are
0/1 for the hop that reported the event; ``meter`` is 3 or 4, ``bar_phase`` 0..1 (0 = the downbeat),
``phrase_pos`` bars since the phrase anchor modulo 32 (:mod:`vj.audio.bars`); ``event`` is ``build``, ``drop``,
``breakdown`` or empty, in the hop that reported it, with ``event_confidence`` 0..1 (:mod:`vj.audio.sections`);
``tempo_confidence`` is the beat clock's confidence in ``bpm``, 0..1 (no beats are emitted below 0.6).
Without ``-o`` the CSV goes to stdout. A ``.json`` output holds
``{"audio", "sample_rate", "hop_size", "columns", "rows"}`` with ``rows`` a list of lists in column order.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vj.commands._args import ranged, tempo_range

HELP = ("analyse audio (or 'demo') hop by hop: onsets, beats, bpm, pitch, chroma, loudness, downbeats, bars, "
        "phrases, section events → CSV/JSON")

ONSET_METHODS = ("specflux", "hfc", "complex", "phase", "wphase", "specdiff", "kl", "mkl", "energy")
PITCH_METHODS = ("yinfast", "yin", "yinfft", "mcomb", "fcomb", "schmitt", "specacf")


def columns() -> list[str]:
    """Output column names, in order."""
    from vj.audio.features import CHROMA_NAMES

    base = ["time_s", "rms", "bass", "mid", "high", "onset", "beat", "bpm", "pitch_midi", "pitch_confidence"]
    bars = ["downbeat", "meter", "bar_phase", "phrase_pos", "event", "event_confidence", "tempo_confidence"]
    return base + [f"chroma_{n}" for n in CHROMA_NAMES] + bars


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``analyze`` arguments."""
    parser.add_argument("audio", help="audio file (wav, flac, ogg, mp3, m4a, ...) or 'demo' for the bundled piece")
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                        help="write FILE.csv or FILE.json (default: CSV to stdout)")
    parser.add_argument("--hop", type=ranged(int, 64, 8192), default=512, help="hop size [samples] (default 512)")
    parser.add_argument("--onset-method", default=None, metavar="NAME",
                        help=f"aubio onset method: {', '.join(ONSET_METHODS)} (default specflux)")
    parser.add_argument("--onset-threshold", type=ranged(float, 0.0, 10.0), default=None, metavar="X",
                        help="onset peak-picking threshold, higher = fewer onsets (default 0.2)")
    parser.add_argument("--pitch-method", default=None, metavar="NAME",
                        help=f"aubio pitch method: {', '.join(PITCH_METHODS)} (default yinfast)")
    parser.add_argument("--tempo-range", type=tempo_range, default=None, metavar="LO-HI",
                        help="beat clock tempo range [bpm], e.g. 110-150 for a club night (default 60-200)")
    parser.add_argument("--start", type=ranged(float, 0.0), default=0.0, metavar="S", help="start at S seconds")
    parser.add_argument("--duration", type=ranged(float, 0.0, lo_open=True), default=None, metavar="S",
                        help="analyse at most S seconds (default: to the end)")


def _rows(feats, offset_s: float):
    for f in feats:
        yield [
            round(f.time_s + offset_s, 6),
            float(f.rms),
            float(f.bass),
            float(f.mid),
            float(f.high),
            int(f.onset),
            int(f.beat),
            float(f.bpm),
            float(f.pitch_midi),
            float(f.pitch_confidence),
            *(float(c) for c in f.chroma),
            int(f.downbeat),
            int(f.meter),
            float(f.bar_phase),
            float(f.phrase_pos),
            f.event,
            float(f.event_confidence),
            round(float(f.tempo_confidence), 4),
        ]


def _fmt(v) -> str:
    return str(v) if isinstance(v, (int, str)) else f"{v:.6g}"


def run(args: argparse.Namespace) -> int:
    """Analyse and write the table.

    Returns:
        0 on success.

    Raises:
        AudioInputError: missing, unreadable or non-audio input.
        VJError: unknown method, output not .csv/.json, output not writable.
    """
    import sys

    from vj.errors import VJError

    cfg_kw = {}
    if args.onset_method is not None:
        if args.onset_method not in ONSET_METHODS:
            raise VJError(f"unknown onset method {args.onset_method!r} (one of {', '.join(ONSET_METHODS)})")
        cfg_kw["onset_method"] = args.onset_method
    if args.onset_threshold is not None:
        cfg_kw["onset_threshold"] = args.onset_threshold
    if args.pitch_method is not None:
        if args.pitch_method not in PITCH_METHODS:
            raise VJError(f"unknown pitch method {args.pitch_method!r} (one of {', '.join(PITCH_METHODS)})")
        cfg_kw["pitch_method"] = args.pitch_method
    if getattr(args, "tempo_range", None):
        lo, hi = args.tempo_range
        cfg_kw.update(min_bpm=lo, max_bpm=hi, prior_bpm=min(max(110.0, lo), hi))

    out = args.output
    fmt = "csv"
    if out is not None:
        fmt = out.suffix.lower().lstrip(".")
        if fmt not in ("csv", "json"):
            raise VJError(f"output must end in .csv or .json: {out}")
        _check_writable(out)  # fail before the (long) analysis

    from vj.audio.analysis import AnalysisConfig, analyze_signal
    from vj.audio.decode import load_audio

    y, sr = load_audio(args.audio, mono=True, start_s=args.start, duration_s=args.duration)
    feats = analyze_signal(y, sr, args.hop, AnalysisConfig(**cfg_kw))
    cols = columns()
    handle = None
    try:
        if out is not None:
            handle = open(out, "w", encoding="utf-8", newline="")
        else:
            handle = sys.stdout
        if fmt == "json":
            import json

            json.dump({"audio": str(args.audio), "sample_rate": sr, "hop_size": args.hop, "columns": cols,
                       "rows": list(_rows(feats, args.start))}, handle)
            handle.write("\n")
        else:
            handle.write(",".join(cols) + "\n")
            for row in _rows(feats, args.start):
                handle.write(",".join(_fmt(v) for v in row) + "\n")
        handle.flush()
    except BrokenPipeError:  # `vj analyze x | head`: the reader left; not an error
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        raise VJError(f"cannot write {out or 'stdout'}: {exc.strerror or exc}") from None
    finally:
        if out is not None and handle is not None:
            handle.close()
    return 0


def _check_writable(out: Path) -> None:
    import os

    from vj.errors import VJError

    if out.is_dir():
        raise VJError(f"output is a directory: {out}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise VJError(f"cannot write {out}: folder {parent} does not exist")
    if (out.exists() and not os.access(out, os.W_OK)) or not os.access(parent, os.W_OK):
        raise VJError(f"cannot write {out}: permission denied")
