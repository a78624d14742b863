"""One markdown table from a ``benchmarks/gpu_check.sh`` results folder (bench, live stats, cuda tests).

Usage::

    python benchmarks/gpu_table.py OUT_DIR > OUT_DIR/table.md

Reads ``OUT_DIR/bench.jsonl`` (``vj bench`` JSON lines), ``OUT_DIR/startup.json``, ``OUT_DIR/live-stats.jsonl`` (``vj live --stats``, one
line per second), ``OUT_DIR/pytest.txt`` and ``OUT_DIR/env.txt``; missing parts are stated as such in the table.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    env = (out / "env.txt").read_text(errors="replace") if (out / "env.txt").is_file() else ""
    device = next((line for line in env.splitlines() if line.startswith("device ")), "device: unknown")
    tests = (out / "pytest.txt").read_text(errors="replace").strip().splitlines() if (out / "pytest.txt").is_file() \
        else ["(no pytest output)"]
    print(f"Machine: {device}; {next((x for x in env.splitlines() if x.startswith('python ')), '')}")
    print(f"cuda-marked tests: {tests[-1] if tests else '(none)'}")
    print()
    print("| what | px | batch | dtype | ms median | ms p99 | fps | × reference | runner / span |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---|")
    bench = _jsonl(out / "bench.jsonl")
    for r in bench:
        ratio = r.get("speedup_vs_reference")
        what = r["impl"] + (" (graph)" if r.get("graph") else "")
        print(f"| bench {what} | {r['resolution']} | {r['batch']} | {r['dtype']} | {r['ms_median']:.3f} | "
              f"{r['ms_p99']:.3f} | {r['fps']:.1f} | {'%.2f' % ratio if ratio else '-'} | "
              f"{r.get('runner', '')} {r.get('span', '')} |")
    if not bench:
        print("| bench | - | - | - | not measured (no bench rows; see bench.err) | | | | |")
    for r in _jsonl(out / "startup.json"):
        print(f"| start to first frame [s] (load {r['load_s']:.2f} s + runner, capture, self-check, first frame "
              f"{r['runner_to_first_frame_s']:.2f} s) | 128 | 1 | auto | {r['start_to_first_frame_s']:.2f} | - | - | - | "
              f"{r['runner']}{'; steps: ' + ' / '.join(r['steps']) if r.get('steps') else ''} |")
    live = [r for r in _jsonl(out / "live-stats.jsonl") if r.get("t_s", 0) >= 5.0]  # after start-up
    if live:
        def med(key):
            vals = [r[key] for r in live if isinstance(r.get(key), (int, float))]
            return statistics.median(vals) if vals else float("nan")

        print(f"| live headless 30 s: display fps (median of 1 s windows) | 128 | 1 | auto | - | - | "
              f"{med('display_fps'):.1f} | - | |")
        print(f"| live headless 30 s: generator fps | 128 | 1 | auto | - | - | {med('gan_fps'):.1f} | - | |")
        print(f"| live headless 30 s: audio→swap latency p50 / p95 [ms] | 128 | 1 | auto | "
              f"{med('latency_ms_p50'):.1f} | {med('latency_ms_p95'):.1f} | - | - | |")
    else:
        print("| live headless | - | - | - | not measured (no stats lines; see live.log) | | | | |")
    log = (out / "live.log").read_text(errors="replace") if (out / "live.log").is_file() else ""
    gen_line = next((x for x in log.splitlines() if "generator:" in x), None)
    if gen_line:
        print()
        print(f"live runner: `{gen_line.strip()}`")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
