"""Aftermovie benchmarks: show-log cost and size, replay throughput in-process vs Ray, a one-hour log's frame count
and audio sync.

    PYTHONPATH=$PWD python3 benchmarks/aftermovie.py [--frames 48] [--hour-excerpt 20] [--skip-ray]

* **Log cost**: one hour of records (86 hops/s of features at 44.1 kHz / 512, parameter events at 5/s, beats at
  2/s; optionally the audio) pushed through :class:`vj.showlog.ShowLogWriter` in one-second batches as fast as it
  takes them; CPU seconds of the producers' puts and of the writer thread, as a share of one core over an hour.
* **Size per hour**: the file that run writes.
* **Replay throughput**: the same log rendered (CPPN 128 px → 128 px, effects on) in-process (1 and 2 torch
  threads) and on a local Ray cluster with 1 and 2 CPU actors (one thread each); Ray overhead per frame =
  (Ray with 1 actor − in-process with 1 thread) / frames.
* **One hour**: a one-hour log synthesised by tiling the analysis of the demo piece (features, and its audio) —
  no hour-long live run — whose timeline is built for the whole hour (frame count checked against
  hours × 3600 × fps), and an excerpt of it rendered and checked for frame count and audio length.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def demo_hops(seconds: float | None = None):
    from vj.audio.analysis import analyze_signal
    from vj.audio.decode import load_audio

    y, sr = load_audio("demo", mono=True, duration_s=seconds)
    return analyze_signal(y, sr, 512), y, sr


def header(sr: int, audio: bool, input_spec: str = "demo") -> dict:
    from vj.control.params import ParamRegistry
    from vj.mapping import MappingSettings

    return {"vj_version": "bench", "model": "cppn", "seed": 0, "classes": [], "input": input_spec, "loop": True,
            "mapping": MappingSettings().to_json(), "params": ParamRegistry().snapshot(), "palette": [[], [], 1.0],
            "audio": audio, "beat_source": "clock", "sample_rate": sr, "hop_size": 512}


def tiled(hops, y, seconds: float, sr: int):
    """Features and audio of the demo repeated to ``seconds`` (hop indices, times and counters continue)."""
    n_src = len(hops)
    hop_s = 512 / sr
    n = int(math.ceil(seconds / hop_s))
    out = []
    on0, be0 = hops[-1].onset_count + 1, hops[-1].beat_count + 1
    for i in range(n):
        r, f = divmod(i, n_src)
        h = hops[f]
        t = (i + 1) * hop_s
        out.append(replace(h, hop_index=i, time_s=t, capture_time_s=t + 0.2, onset_count=h.onset_count + r * on0,
                           beat_count=h.beat_count + r * be0))
    audio = np.resize(y[: n_src * 512], n * 512) if y is not None else None
    return out, audio


def log_cost(hops, y, sr, with_audio: bool, tmp: Path) -> dict:
    from vj.control.params import Palette
    from vj.showlog import ShowLogWriter

    hop_s = 512 / sr
    per_s = int(round(1 / hop_s))
    path = tmp / f"hour{'_audio' if with_audio else ''}.vjlog"
    t0 = time.perf_counter()
    w = ShowLogWriter(path, header(sr, with_audio), t0, flush_every_s=0.002, queue_size=1 << 20)
    w.start()
    n_src = len(hops)
    audio_hops = y[: (len(y) // 512) * 512].reshape(-1, 512) if with_audio else None
    put_cpu = 0.0
    pal = Palette((1, 2), (3, 4), 0.5)
    for s in range(3600):
        c = time.thread_time()
        for k in range(per_s):
            i = s * per_s + k
            h = hops[i % n_src]
            w.hop(h)
            if with_audio:
                w.audio(audio_hops[i % len(audio_hops)], sr)
        for e in range(5):
            w.params({"fx.hue.shift": (s * 5 + e) % 100 / 100.0}, pal if e == 0 else None)
        w.beat(2 * s)
        w.beat(2 * s + 1)
        put_cpu += time.thread_time() - c
        while w._q.qsize() > 4 * per_s:  # let the writer take each second as its own batch
            time.sleep(0.0005)
    w.close()
    size = path.stat().st_size
    return {"audio": with_audio, "writer_cpu_s": w.cpu_s, "producer_cpu_s": put_cpu,
            "core_share_pct": 100 * (w.cpu_s + put_cpu) / 3600, "mb_per_hour": size / 1e6, "dropped": w.dropped,
            "hops": w.hops}


def replay_fps(log: Path, tmp: Path, frames: int, skip_ray: bool) -> list[dict]:
    from vj.farm import GeneratorSpec, LocalFarm
    from vj.replay import ReplayOptions, render_replay

    end = frames / 30.0
    rows = []

    def run(name, farm):
        opts = ReplayOptions(log=log, output=tmp / f"{name}.mp4", resolution=(128, 128), fps=30.0, end_s=end,
                             progress=False, farm=farm, chunk_frames=8)
        r = render_replay(opts)
        rows.append({"path": name, "frames": r["frames"], "seconds": r["seconds"], "fps": r["fps"]})
        print(json.dumps(rows[-1]), flush=True)

    for threads in (1, 2):
        farm = LocalFarm(GeneratorSpec("cppn", threads=threads))
        run(f"in-process, {threads} thread(s)", farm)
    if not skip_ray:
        import ray

        from vj.farm import RayFarm

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        for n in (1, 2):
            farm = RayFarm(GeneratorSpec("cppn", threads=1), workers=n)
            run(f"ray, {n} CPU actor(s)", farm)
            farm.close()
        ray.shutdown()
    return rows


def one_hour(hops, y, sr, tmp: Path, excerpt_s: float) -> dict:
    import av

    from vj.replay import ReplayOptions, build_timeline, log_end_s, render_replay
    from vj.showlog import write_offline
    from vj.showlog_reader import read_show_log

    hh, audio = tiled(hops, y, 3600.0, sr)
    path = tmp / "one_hour.vjlog"
    events = [["p", 0.2 + 60.0 * m, {"fx.hue.shift": (m % 10) / 10}] for m in range(60)]
    t = time.perf_counter()
    size = write_offline(path, header(sr, True), hh, events, audio=audio, sample_rate=sr)
    t_write = time.perf_counter() - t
    t = time.perf_counter()
    show = read_show_log(path)
    t_read = time.perf_counter() - t
    end = log_end_s(show)
    n = int(round(end * 30))
    t = time.perf_counter()
    tl = build_timeline(show, 30.0, n)
    t_tl = time.perf_counter() - t
    a = 1800.0
    out = tmp / "hour_excerpt.mp4"
    r = render_replay(ReplayOptions(log=path, output=out, resolution=(128, 128), fps=30.0, start_s=a,
                                    end_s=a + excerpt_s, progress=False, chunk_frames=8))
    with av.open(str(out)) as c:
        vf = sum(1 for _ in c.decode(video=0))
    with av.open(str(out)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
        rate = c.streams.audio[0].rate
    return {"log_mb": size / 1e6, "write_s": t_write, "read_s": t_read, "log_end_s": end,
            "timeline_frames": len(tl), "expected_frames": int(round(3600 * 30)), "timeline_s": t_tl,
            "excerpt_frames": vf, "excerpt_expected": int(round(excerpt_s * 30)),
            "excerpt_audio_s": samples / rate, "excerpt_video_s": vf / 30.0,
            "sync_error_frames": (samples / rate - vf / 30.0) * 30.0, "excerpt_render_fps": r["fps"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=48, help="frames per throughput run")
    ap.add_argument("--hour-excerpt", type=float, default=10.0, help="seconds of the one-hour log to render")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--only", choices=("cost", "replay", "hour"), default=None)
    args = ap.parse_args()
    hops, y, sr = demo_hops()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.only in (None, "cost"):
            for with_audio in (False, True):
                print(json.dumps(log_cost(hops, y, sr, with_audio, tmp)), flush=True)
        if args.only in (None, "replay"):
            from vj.showlog import write_offline

            hh, audio = tiled(hops, y, args.frames / 30.0 + 1.0, sr)
            log = tmp / "short.vjlog"
            write_offline(log, header(sr, True), hh, [["p", 0.7, {"fx.hue.shift": 0.3}]], audio=audio,
                          sample_rate=sr)
            replay_fps(log, tmp, args.frames, args.skip_ray)
        if args.only in (None, "hour"):
            print(json.dumps(one_hour(hops, y, sr, tmp, args.hour_excerpt)), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    main()
