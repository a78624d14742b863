"""Turn ``vj bench`` JSON lines (stdin or files) into the markdown table used in docs/benchmarks.md.

Usage::

    vj bench --device cpu --batch 1 --batch 4 --iters 10 > cpu.jsonl
    python benchmarks/bench_table.py cpu.jsonl

Columns: implementation, dtype, batch, median / p99 / fastest ms per call, fps (from the median), and
``speedup_vs_reference`` (median over rounds of the per-round ratio; the implementations run interleaved).
"""

from __future__ import annotations

import fileinput
import json


def main() -> int:
    rows = [json.loads(line) for line in fileinput.input() if line.strip().startswith("{")]
    print("| impl | dtype | threads | batch | px | ms median | ms p99 | ms min | fps | × reference (paired) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = r.get("speedup_vs_reference")
        name = r["impl"] + (" (graph)" if r.get("graph") else "")
        print(f"| {name} | {r['dtype']} | {r.get('threads') or '-'} | {r['batch']} | {r['resolution']} | "
              f"{r['ms_median']:.0f} | {r['ms_p99']:.0f} | {r.get('ms_min', float('nan')):.0f} | {r['fps']:.2f} | "
              f"{'%.2f' % ratio if ratio else '-'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
