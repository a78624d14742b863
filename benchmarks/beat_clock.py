"""The beat clock's choices, side by side in one run: beat F per clip for its settings and the alternatives, the
comb evidence at the tempo levels related to the true one, and the clock's cost per hop.

    python benchmarks/beat_clock.py

Clips: the demo piece (exact beats), the three club-tempo GTZAN clips (``../shared/testdata/club``, or
``VJ_TESTDATA``), the Ballroom waltz and the pop example (``annotated/``). Each clip is analysed once by the live
code (:class:`vj.audio.analysis.StreamingAnalyzer`); the onset-strength envelope it feeds the beat clock (and the
per-hop silence flag) is recorded, and every variant of :class:`vj.audio.beat.BeatTracker` is then run on that same
envelope — exactly what the analysis does with it, so the default row equals ``vj analyze``. Scores: mir_eval beat
F, ±70 ms, first 5 s ignored ("F") and over the whole clip ("all"); beat time = end of the reporting hop.

Sections printed (Markdown):

1. beat F per clip for: the defaults (5 s tempo window, confidence gate 0.6), no gate, the former 6 s window
   without the gate (= vj 0.1), and a 4 s window;
2. related tempo levels: the prior-free comb score (the tracker's own autocorrelation comb, over 5–17 s of each
   clip) at 1/2, 2/3, 3/4, 4/3, 3/2 and 2 times the annotated tempo, relative to the annotated tempo;
3. cost: time inside ``BeatTracker.update`` per hop (fastest of 3) against the 11.6 ms hop.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TESTDATA = Path(os.environ.get("VJ_TESTDATA", ROOT.parent / "shared" / "testdata"))

from vj.audio import demo  # noqa: E402
from vj.audio.analysis import StreamingAnalyzer  # noqa: E402
from vj.audio.beat import BeatTracker  # noqa: E402
from vj.audio.decode import load_audio  # noqa: E402

warnings.filterwarnings("ignore", module="mir_eval")
HOP = 512
SR = 44100
VARIANTS = [
    ("defaults (window 5 s, gate 0.6)", {}),
    ("no confidence gate", {"min_confidence": 0.0}),
    ("vj 0.1 (window 6 s, no gate)", {"tempo_window_s": 6.0, "min_confidence": 0.0}),
    ("window 6 s, gate 0.6", {"tempo_window_s": 6.0}),
    ("window 4 s, gate 0.6", {"tempo_window_s": 4.0}),
    ("gate 0.5", {"min_confidence": 0.5}),
    ("gate 0.7", {"min_confidence": 0.7}),
]
LEVELS = [("1/2", 0.5), ("2/3", 2 / 3), ("3/4", 0.75), ("4/3", 4 / 3), ("3/2", 1.5), ("2", 2.0)]


def clips():
    out = [("demo", "demo", np.asarray(demo.BEAT_TIMES_S))]
    for rel in ("club/gtzan_disco00000", "club/gtzan_hiphop00007", "club/gtzan_pop00024",
                "annotated/Media-105901", "annotated/easy_example"):
        audio = next((TESTDATA / (rel + e) for e in (".wav", ".flac") if (TESTDATA / (rel + e)).exists()), None)
        if audio is None:
            print(f"(missing {TESTDATA / rel}: skipped)")
            continue
        out.append((rel.split("/")[-1], audio, np.loadtxt(TESTDATA / (rel + ".beats"), ndmin=2)[:, 0]))
    return out


def envelope(path):
    """The onset-strength envelope and activity flags the analysis feeds its beat clock, hop by hop."""
    y, sr = load_audio(path, SR)
    an = StreamingAnalyzer(sr, HOP)
    fed = []
    inner = an._clock.update

    def record(odf, active=True):
        fed.append((odf, active))
        return inner(odf, active)

    an._clock.update = record
    for i in range(-(-len(y) // HOP)):
        seg = np.zeros(HOP, np.float32)
        chunk = y[i * HOP : (i + 1) * HOP]
        seg[: len(chunk)] = chunk
        an.process(seg)
    clock = an._clock
    settings = dict(latency_frames=clock.latency_frames, tempo_every=clock.tempo_every,
                    phase_every=clock.phase_every)
    return np.array([o for o, _ in fed]), np.array([a for _, a in fed]), an.frame_rate, settings


def run_clock(odf, active, fr, settings, **kw):
    clock = BeatTracker(fr, **settings, **kw)
    beats = []
    t0 = time.perf_counter()
    for i, (o, a) in enumerate(zip(odf, active)):
        if clock.update(o, a):
            beats.append((i + 1) * HOP / SR)
    return np.asarray(beats), (time.perf_counter() - t0) / len(odf), clock


def comb_score(odf, fr, bpm):
    """The tracker's comb (taps at 1..4 periods, weights 1/k) over the unbiased autocorrelation of ``odf``."""
    x = odf - odf.mean()
    n = len(x)
    acf = np.correlate(x, x, "full")[n - 1 :] / np.arange(n, 0, -1)
    lag = 60.0 * fr / bpm
    return sum(w * np.interp(k * lag, np.arange(n), acf) for k, w in zip((1, 2, 3, 4), (1, 1 / 2, 1 / 3, 1 / 4)))


def main():
    import mir_eval

    data = [(name, ref, *envelope(path)) for name, path, ref in clips()]
    tb = mir_eval.beat.trim_beats
    print("\n### Beat F per setting (first 5 s ignored / whole clip)\n")
    print("| setting | " + " | ".join(d[0] for d in data) + " | club min |")
    print("|---|" + "---|" * (len(data) + 1))
    for label, kw in VARIANTS:
        cells, club = [], []
        for name, ref, odf, active, fr, settings in data:
            est = run_clock(odf, active, fr, settings, **kw)[0]
            f, fa = mir_eval.beat.f_measure(tb(ref), tb(est)), mir_eval.beat.f_measure(ref, est)
            cells.append(f"{f:.3f} / {fa:.3f}")
            if name.startswith("gtzan"):
                club.append(f)
        print(f"| {label} | " + " | ".join(cells) + f" | {min(club) if club else float('nan'):.3f} |")

    print("\n### Comb evidence at related tempo levels (relative to the annotated tempo's; 5–17 s)\n")
    print("| clip | tempo | " + " | ".join(lab for lab, _ in LEVELS) + " |")
    print("|---|---|" + "---|" * len(LEVELS))
    for name, ref, odf, active, fr, settings in data:
        bpm = 60.0 / float(np.median(np.diff(ref)))
        seg = odf[int(5 * fr) : int(17 * fr)]
        base = comb_score(seg, fr, bpm)
        print(f"| {name} | {bpm:.1f} | " + " | ".join(f"{comb_score(seg, fr, bpm * r) / base:.2f}" for _, r in LEVELS)
              + " |")

    print("\n### Cost of the beat clock (BeatTracker.update per hop, fastest of 3; hop 512 at 44.1 kHz = 11.6 ms)\n")
    print("| clip | µs per hop | % of the hop |")
    print("|---|---|---|")
    for name, ref, odf, active, fr, settings in data:
        dt = min(run_clock(odf, active, fr, settings)[1] for _ in range(3))
        print(f"| {name} | {1e6 * dt:.0f} | {100 * dt / (HOP / SR):.2f} |")


if __name__ == "__main__":
    main()
