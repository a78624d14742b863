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

1. beat F per clip for the defaults and with each of their parts turned off or moved (``VARIANTS``);
2. the synthetic drum loops of :data:`vj.audio.demo.LOOPS` (patterns that tempt a tracker to a 4:3 or 2:3
   level): the tempo read after 8 s over the true one, when it is first at a metrical level (½, 1 or 2 times the
   tempo) for good, and beat F after 8 s against the true beats — with the defaults and as vj 0.1;
3. related tempo levels: the prior-free comb score (the tracker's own autocorrelation comb, over 5–17 s of each
   clip) at 1/2, 2/3, 3/4, 4/3, 3/2 and 2 times the annotated tempo, relative to the annotated tempo;
4. beat salience (what the level check compares) at those levels, clips and loops;
5. cost: time inside ``BeatTracker.update`` per hop (fastest of 3) against the 11.6 ms hop.
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
    ("defaults (window 5 s, gate 0.6, level check 4.5, octave hold 2)", {}),
    ("no level check (level_gamma 0)", {"level_gamma": 0.0}),
    ("no confidence gate", {"min_confidence": 0.0}),
    ("no octave hold", {"octave_hold": 1.0}),
    ("vj 0.1 (window 6 s, none of the three)", {"tempo_window_s": 6.0, "min_confidence": 0.0, "level_gamma": 0.0,
                                                "octave_hold": 1.0}),
    ("window 6 s", {"tempo_window_s": 6.0}),
    ("window 4 s", {"tempo_window_s": 4.0}),
    ("level_gamma 3.5", {"level_gamma": 3.5}),
    ("level_gamma 6", {"level_gamma": 6.0}),
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


def envelope_of(y):
    """:func:`envelope` of samples at 44.1 kHz (a generated loop)."""
    import tempfile

    import soundfile as sf

    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        sf.write(tmp.name, y, SR)
        return envelope(tmp.name)


def salience(odf, fr, bpm):
    """The clock's beat salience (:meth:`vj.audio.beat.BeatTracker.salience`) of ``odf`` at ``bpm``, offline."""
    period = 60.0 * fr / bpm
    n = len(odf)
    best = max(np.interp(np.arange(phi, n - 1, period), np.arange(n), odf).mean() for phi in np.arange(0, period, 0.5))
    return best / odf.mean()


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

    print("\n### Synthetic drum loops (tempo read after 8 s / true; metrical level from [s]; beat F after 8 s)\n")
    print("| loop | true bpm | defaults | vj 0.1 |")
    print("|---|---|---|---|")
    for name in demo.LOOPS:
        y, beats, bpm = demo.drum_loop(name)
        cells = []
        for kw in ({}, VARIANTS[4][1]):
            an = StreamingAnalyzer(SR, HOP)
            for key, value in kw.items():
                setattr(an._clock, key if key != "tempo_window_s" else "_tempo_n",
                        value if key != "tempo_window_s" else int(round(value * an.frame_rate)))
            feats = [an.process(y[i * HOP : (i + 1) * HOP]) for i in range(len(y) // HOP)]
            t = np.array([f.time_s for f in feats])
            ratio = np.array([f.bpm for f in feats]) / bpm
            ok = np.min(np.abs(ratio[:, None] - np.array([0.5, 1.0, 2.0])[None, :]), axis=1) < 0.03
            since = float(t[~ok][-1]) if (~ok).any() else 0.0
            est = t[[f.beat for f in feats]]
            f8 = mir_eval.beat.f_measure(beats[beats > 8], est[est > 8])
            cells.append(f"{np.median(ratio[t > 8]):.3f} / {since:.1f} / {f8:.2f}")
        print(f"| {name} | {bpm:.0f} | " + " | ".join(cells) + " |")

    print("\n### Comb evidence at related tempo levels (relative to the annotated tempo's; 5–17 s)\n")
    print("| clip | tempo | " + " | ".join(lab for lab, _ in LEVELS) + " |")
    print("|---|---|" + "---|" * len(LEVELS))
    for name, ref, odf, active, fr, settings in data:
        bpm = 60.0 / float(np.median(np.diff(ref)))
        seg = odf[int(5 * fr) : int(17 * fr)]
        base = comb_score(seg, fr, bpm)
        print(f"| {name} | {bpm:.1f} | " + " | ".join(f"{comb_score(seg, fr, bpm * r) / base:.2f}" for _, r in LEVELS)
              + " |")

    print("\n### Beat salience at related tempo levels (the level check's evidence; relative to the true tempo's, "
          "5–13 s)\n")
    print("| clip | tempo | " + " | ".join(lab for lab, _ in LEVELS) + " |")
    print("|---|---|" + "---|" * len(LEVELS))
    loops = []
    for name in demo.LOOPS:
        y, beats, bpm = demo.drum_loop(name)
        odf, _, fr, _ = envelope_of(y)
        loops.append((name, np.asarray(beats), odf, fr, bpm))
    for name, ref, odf, fr, bpm in [(d[0], d[1], d[2], d[4], 60.0 / float(np.median(np.diff(d[1])))) for d in data] + loops:
        seg = odf[int(5 * fr) : int(13 * fr)]
        base = salience(seg, fr, bpm)
        print(f"| {name} | {bpm:.1f} | " + " | ".join(
            f"{salience(seg, fr, bpm * r) / base:.2f}" if 60 <= bpm * r <= 200 else "–" for _, r in LEVELS) + " |")

    print("\n### Cost of the beat clock (BeatTracker.update per hop, fastest of 3; hop 512 at 44.1 kHz = 11.6 ms)\n")
    print("| clip | µs per hop | % of the hop |")
    print("|---|---|---|")
    for name, ref, odf, active, fr, settings in data:
        dt = min(run_clock(odf, active, fr, settings)[1] for _ in range(3))
        print(f"| {name} | {1e6 * dt:.0f} | {100 * dt / (HOP / SR):.2f} |")


if __name__ == "__main__":
    main()
