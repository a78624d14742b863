"""The musicality matrix of issue 16: clips × generators × (``vj render``, ``vj live --record``) × checkouts.

Usage::

    python benchmarks/musicality_suite.py [--before /work/main] [--after .] [--models cppn,biggan]
        [--weights DIR] [--systems render,live] [--duration 20] [--biggan-duration 15] [--out DIR]

Each clip (the club dev clips in ``../shared/testdata/club/*.wav`` with their ``.beats``, and ``demo``) is cut to
``--duration`` seconds (a WAV and its beats, written under ``--out``), then for every checkout (``--before``: the
code as it was, e.g. the main checkout; ``--after``: this one) and generator it runs

* ``vj render CLIP --resolution 128`` with default settings, and
* ``vj live --headless --input file:CLIP --record OUT.mp4 --record-fps 30 --size 128x128`` for the clip's length,

each with that checkout's code (``python3 -m vj`` in it, ``PYTHONPATH`` set to it), and measures every video with
``benchmarks/musicality.py`` (this checkout's), against the clip and its annotated beats. Videos and one JSON line
per cell (``results.jsonl``) are kept under ``--out``; a cell already in it is not run again (``--fresh`` re-runs).
Prints a Markdown table, before and after side by side, and marks the cells that miss a target of the issue
(beat ratio ≥ 1.5; best r ≥ 0.35 at a lag ≤ +3 frames; ≤ 3 large flashes per second).

BigGAN uses random weights in the published format (``--weights``: a folder with ``pytorch_model.bin`` and
``config.json``, e.g. written by pytorch-pretrained-biggan from :func:`vj.models.biggan_checkpoint.random_state_dict`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CLUB = next((p / "club" for p in ([Path(os.environ["VJ_TESTDATA"])] if os.environ.get("VJ_TESTDATA") else [])
             + [HERE.parent.parent / "shared" / "testdata", Path("/work/shared/testdata")] if (p / "club").is_dir()),
            Path("club"))
TARGET_RATIO, TARGET_R, TARGET_LAG, TARGET_FLASHES = 1.5, 0.35, 3, 3


def cut_clips(out: Path, duration_s: float) -> list[tuple[str, Path, Path | None]]:
    """``(name, audio, beats)`` for the club clips cut to ``duration_s`` (written under ``out``), and the demo."""
    import soundfile as sf

    clips = []
    for wav in sorted(CLUB.glob("*.wav")):
        y, sr = sf.read(str(wav), dtype="float32")
        dst, beats = out / f"{wav.stem}-{duration_s:g}s.wav", out / f"{wav.stem}-{duration_s:g}s.beats"
        if not dst.exists():
            sf.write(str(dst), y[: int(duration_s * sr)], sr)
            b = np.loadtxt(wav.with_suffix(".beats"), usecols=0, comments="#", ndmin=1)
            np.savetxt(beats, b[b < duration_s], fmt="%.4f")
        clips.append((wav.stem.replace("gtzan_", ""), dst, beats))
    from vj.audio import demo

    dst, beats = out / f"demo-{duration_s:g}s.wav", out / f"demo-{duration_s:g}s.beats"
    if not dst.exists():
        y, sr = sf.read(str(demo.demo_path()), dtype="float32")
        sf.write(str(dst), y[: int(duration_s * sr)], sr)
        b = np.asarray(demo.BEAT_TIMES_S)
        np.savetxt(beats, b[b < duration_s], fmt="%.4f")
    clips.append(("demo", dst, beats))
    return clips


def vj_command(checkout: Path, system: str, audio: Path, video: Path, model: str, weights: str | None,
               duration_s: float) -> list[str]:
    model_args = ["--model", "biggan-deep-128" if model == "biggan" else "cppn"]
    if model == "biggan" and weights:
        model_args += ["--weights", weights]
    if system == "render":
        return [sys.executable, "-m", "vj", "render", str(audio), "-o", str(video), "--resolution", "128",
                "--no-progress", *model_args]
    return [sys.executable, "-m", "vj", "live", "--headless", "--input", f"file:{audio}", "--duration",
            f"{duration_s + 0.5:g}", "--record", str(video), "--record-fps", "30", "--size", "128x128",
            *model_args]


def run_cell(checkout: Path, system: str, clip: tuple[str, Path, Path | None], model: str, weights: str | None,
             duration_s: float, out: Path, label: str) -> dict:
    name, audio, beats = clip
    video = out / f"{label}-{system}-{model}-{name}.mp4"
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    cmd = vj_command(checkout, system, audio, video, model, weights, duration_s)
    proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not video.exists():
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    cmd = [sys.executable, str(HERE / "musicality.py"), str(video), str(audio)] + (["--beats", str(beats)] if beats else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()}
    return json.loads(proc.stdout)


def misses(r: dict) -> list[str]:
    """The targets a cell misses."""
    if "error" in r:
        return ["error"]
    out = []
    if not r["beat_ratio"] >= TARGET_RATIO:
        out.append("ratio")
    if not (r["r_best"] >= TARGET_R and r["r_best_lag"] <= TARGET_LAG):
        out.append("r")
    if r["flashes_per_s_max"] > TARGET_FLASHES:
        out.append("flash")
    return out


def cell_text(r: dict | None) -> str:
    if r is None:
        return "—"
    if "error" in r:
        return f"error: {r['error'][:60]}"
    miss = misses(r)
    mark = "" if not miss else " ✗" + ",".join(miss)
    return (f"{r['r_best']:+.2f}@{r['r_best_lag']:+d} / {r['beat_ratio']:.2f} / {r['flashes_per_s_max']}"
            f" / {r['motion_mean']:.1f}±{r['motion_cv']:.2f}{mark}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, default=Path("/work/main"), help="checkout of the code before")
    p.add_argument("--after", type=Path, default=HERE.parent, help="checkout of the code after (default: this one)")
    p.add_argument("--models", default="cppn,biggan")
    p.add_argument("--systems", default="render,live")
    p.add_argument("--clips", default="", help="comma-separated clip names to run (default all)")
    p.add_argument("--weights", default=None, help="BigGAN weights folder (published format)")
    p.add_argument("--duration", type=float, default=20.0, help="clip length for the CPPN [s]")
    p.add_argument("--biggan-duration", type=float, default=15.0, help="clip length for BigGAN [s]")
    p.add_argument("--out", type=Path, default=Path("/tmp/vj-musicality"))
    p.add_argument("--fresh", action="store_true", help="re-run cells already in results.jsonl")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "results.jsonl"
    done = {}
    if store.exists() and not args.fresh:
        for line in store.read_text().splitlines():
            rec = json.loads(line)
            done[rec["key"]] = rec["result"]
    models = [m for m in args.models.split(",") if m]
    if "biggan" in models and not args.weights:
        p.error("--weights is needed for biggan (random weights in the published format)")
    wanted = {c for c in args.clips.split(",") if c}
    rows = []
    for model in models:
        dur = args.biggan_duration if model == "biggan" else args.duration
        for clip in cut_clips(args.out, dur):
            if wanted and clip[0] not in wanted:
                continue
            for system in args.systems.split(","):
                pair = []
                for label, checkout in (("before", args.before), ("after", args.after)):
                    key = f"{label}|{system}|{model}|{clip[0]}|{dur:g}"
                    if key not in done:
                        done[key] = run_cell(checkout.resolve(), system, clip, model, args.weights, dur, args.out, label)
                        with store.open("a") as fh:
                            fh.write(json.dumps({"key": key, "result": done[key]}) + "\n")
                        print(f"{key}: {cell_text(done[key])}", file=sys.stderr, flush=True)
                    pair.append(done[key])
                rows.append((clip[0], model, system, dur, *pair))
    print("| clip | generator | system | s | before: r@lag / beat ratio / flashes/s / motion | "
          "after: r@lag / beat ratio / flashes/s / motion |")
    print("|---|---|---|---|---|---|")
    for name, model, system, dur, before, after in rows:
        sysname = "`vj render`" if system == "render" else "`vj live --record`"
        print(f"| {name} | {model} | {sysname} | {dur:g} | {cell_text(before)} | {cell_text(after)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
