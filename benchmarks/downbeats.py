"""Downbeats, meter and section events of vj's streaming analysis against exact and human annotations.

    python benchmarks/downbeats.py [--sweep]

Clips: the bundled demo piece (exact: 128 bpm 4/4, drop at bar 12 = 22.5 s), the three club-tempo GTZAN clips
(``../shared/testdata/club``, beats and downbeats annotated) and the Ballroom waltz and the pop example
(``../shared/testdata/annotated``). Every figure comes from :func:`vj.audio.analysis.analyze_signal` (the live
code), event times = end of the reporting hop. Scores (mir_eval): beat F and downbeat F with ±70 ms, first 5 s
ignored (mir_eval's default trimming), and downbeat F over the whole clip ("all"); tempo locked from = the time
after which the reported bpm stays within 4 % of the annotation's (median inter-beat interval) up to a second
before the last annotated beat.

``--sweep`` also scores the bar tracker's main settings (accent weights, switching margin, memory) — the table
the defaults were chosen from. Cost: hop time of the bar and section trackers against the whole analysis.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TESTDATA = Path(os.environ.get("VJ_TESTDATA", ROOT.parent / "shared" / "testdata"))

import vj.audio.bars as bars_mod  # noqa: E402
from vj.audio import demo  # noqa: E402
from vj.audio.analysis import StreamingAnalyzer, analyze_signal  # noqa: E402
from vj.audio.decode import load_audio  # noqa: E402

warnings.filterwarnings("ignore", module="mir_eval")


def clips():
    out = [("demo (exact)", "demo", np.array(demo.BEAT_TIMES_S), np.array(demo.BEAT_TIMES_S[::4]), 4)]
    for rel, meter in (("club/gtzan_disco00000", 4), ("club/gtzan_hiphop00007", 4), ("club/gtzan_pop00024", 4),
                       ("annotated/Media-105901", 3), ("annotated/easy_example", 4)):
        audio = next((TESTDATA / (rel + ext) for ext in (".wav", ".flac") if (TESTDATA / (rel + ext)).exists()), None)
        if audio is None:
            print(f"(missing {TESTDATA / rel}: skipped)")
            continue
        a = np.loadtxt(TESTDATA / (rel + ".beats"), ndmin=2)
        out.append((rel, audio, a[:, 0], a[a[:, 1] == 1, 0], meter))
    return out


def scores(feats, ref_beats, ref_downs):
    import mir_eval

    tb = mir_eval.beat.trim_beats
    eb = np.array([f.time_s for f in feats if f.beat])
    ed = np.array([f.time_s for f in feats if f.downbeat])
    return (mir_eval.beat.f_measure(tb(ref_beats), tb(eb)), mir_eval.beat.f_measure(tb(ref_downs), tb(ed)),
            mir_eval.beat.f_measure(ref_downs, ed))


def section_downbeats(data):
    print("\n### Downbeats and meter (mir_eval F, ±70 ms; F = first 5 s ignored, all = whole clip)\n")
    print("| clip | beat F | downbeat F | downbeat F all | tempo locked from [s] | meter (annotated) "
          "| meter right from [s] | events |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (y, sr), rb, rd, meter in data:
        feats = analyze_signal(y, sr, 512)
        fb, fd, fa = scores(feats, rb, rd)
        wrong = [f.time_s for f in feats if f.meter != meter]
        since = wrong[-1] if wrong else 0.0
        ref_bpm = 60.0 / float(np.median(np.diff(rb)))
        end = min(feats[-1].time_s, float(rb[-1])) - 1.0  # the last second (fade-outs) left out
        off = [f.time_s for f in feats if f.time_s < end and not abs(f.bpm - ref_bpm) < 0.04 * ref_bpm]
        lock = f"{off[-1]:.1f}" if off else "0.0"
        ev = ", ".join(f"{f.event} {f.time_s:.2f} s ({f.event_confidence:.2f})" for f in feats if f.event) or "none"
        print(f"| {name} | {fb:.3f} | {fd:.3f} | {fa:.3f} | {lock} | {feats[-1].meter} ({meter}) | {since:.1f} "
              f"| {ev} |")


def section_events():
    y, sr = load_audio("demo")
    feats = analyze_signal(y, sr, 512)
    true = {"breakdown": 8 * demo.BAR_S, "build": 10 * demo.BAR_S, "drop": 12 * demo.BAR_S}
    print("\n### Section events on the demo piece (exact arrangement: breakdown bar 8, build bar 10, drop bar 12)\n")
    print("| event | true time [s] | reported [s] | late [ms] | late [beats] | confidence |")
    print("|---|---|---|---|---|---|")
    for f in feats:
        if f.event:
            late = f.time_s - true.get(f.event, float("nan"))
            print(f"| {f.event} | {true.get(f.event, float('nan')):.3f} | {f.time_s:.3f} | {1000 * late:.0f} "
                  f"| {late / demo.BEAT_S:.2f} | {f.event_confidence:.2f} |")
    n = sum(1 for f in feats if f.event)
    print(f"\n{n} events in all (3 sections with an event: breakdown, build, drop).")


def section_cost():
    """Time spent inside the bar and section trackers' update() against the whole process(), in the same run
    (a ratio, so a busy machine shifts both alike); best of 3 runs."""
    y, sr = load_audio("demo")
    hop = 512
    best = None
    for _ in range(3):
        an = StreamingAnalyzer(sr, hop)
        spent = [0.0]
        for obj in (an._bars, an._sections):
            def timed(*a, _f=obj.update, **k):
                t = time.perf_counter()
                _f(*a, **k)
                spent[0] += time.perf_counter() - t

            obj.update = timed
        n = len(y) // hop
        t0 = time.perf_counter()
        for i in range(n):
            an.process(y[i * hop : (i + 1) * hop])
        total = (time.perf_counter() - t0) / n
        run = (total, spent[0] / n)
        best = run if best is None or run[0] < best[0] else best
    total, trackers = best
    hop_s = hop / sr
    print("\n### Cost per hop (demo, hop 512 at 44.1 kHz = 11.6 ms; the run with the fastest whole analysis of 3)\n")
    print("| | µs per hop | % of hop time | share of the analysis |")
    print("|---|---|---|---|")
    print(f"| whole analysis (process) | {1e6 * total:.0f} | {100 * total / hop_s:.2f} | 100% |")
    print(f"| bar + section trackers (update) | {1e6 * trackers:.0f} | {100 * trackers / hop_s:.2f} "
          f"| {100 * trackers / total:.1f}% |")


def section_sweep(data):
    print("\n### Bar tracker settings (downbeat F, first 5 s ignored)\n")
    names = [d[0].split("/")[-1] for d in data]
    print("| chroma_weight | switch_margin | decay_beats | " + " | ".join(names) + " | club mean |")
    print("|---|---|---|" + "---|" * (len(names) + 1))
    orig = bars_mod.BarTracker.__init__
    try:
        for cw, sm, db in ((0.5, 1.25, 32.0), (1.0, 1.25, 32.0), (1.0, 1.5, 32.0), (1.5, 1.25, 32.0),
                           (2.0, 1.0, 32.0), (2.0, 1.25, 32.0), (2.0, 1.25, 16.0), (3.0, 1.25, 32.0)):
            def init(self, *a, _kw=dict(chroma_weight=cw, switch_margin=sm, decay_beats=db), **k):
                k.update(_kw)
                orig(self, *a, **k)

            bars_mod.BarTracker.__init__ = init
            row = [scores(analyze_signal(y, sr, 512), rb, rd)[1] for _, (y, sr), rb, rd, _ in data]
            club = [r for r, n in zip(row, names) if n.startswith("gtzan")]
            default = " (default)" if (cw, sm, db) == (2.0, 1.25, 32.0) else ""
            print(f"| {cw}{default} | {sm} | {db:g} | " + " | ".join(f"{r:.3f}" for r in row)
                  + f" | {np.mean(club) if club else float('nan'):.3f} |")
    finally:
        bars_mod.BarTracker.__init__ = orig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", action="store_true", help="also score the bar tracker's settings")
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = [(name, load_audio(path), rb, rd, m) for name, path, rb, rd, m in clips()]
    section_downbeats(data)
    section_events()
    section_cost()
    if args.sweep:
        section_sweep(data)
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
