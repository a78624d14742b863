"""Accuracy of vj's streaming audio analysis against human annotations; prints tables (markdown).

    python benchmarks/analysis_accuracy.py [--quick]

Uses the annotated recordings in ../shared/testdata (or $VJ_TESTDATA) and the bundled demo piece (synthetic,
exact ground truth). Every figure comes from :func:`vj.audio.analysis.analyze_signal`, the same hop-by-hop
code the live audio callback runs, with event times taken as the *end* of the hop that reported them (what a
live consumer sees), so delays are included in the scores. mir_eval does the scoring:

* onsets — ``mir_eval.onset.f_measure`` (±50 ms) on madmom/sample.wav (hand-annotated onsets), on the note
  onsets of madmom/stereo_sample.wav (notes within 50 ms merged) and on the demo (drum hits + chord changes;
  its build's snare roll is not in the list, so it counts as false alarms); aubio methods × thresholds;
* beats — ``mir_eval.beat.f_measure`` (±70 ms), with mir_eval's default of ignoring the first 5 s (F) and over
  the whole clip (F all); aubio's tempo tracker alone vs vj's beat clock;
* tempo — median reported bpm after 5 s (after 60% of a shorter clip) vs the annotation (median inter-beat
  interval, or both tempi of sample.tempo: the error is against the nearer one);
* pitch — ``mir_eval.melody`` raw pitch accuracy (±50 cents, voiced reference frames), voicing recall and
  false alarm on annotated/vocadito_1.wav;
* chroma — share of frames (with at least one note sounding) whose strongest chroma bin is a sounding pitch
  class, madmom/stereo_sample.wav and the demo's chords;
* delay — mean (reported − annotated) time of matched events [ms].
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

from vj.audio.analysis import AnalysisConfig, analyze_signal  # noqa: E402
from vj.audio.decode import load_audio  # noqa: E402

warnings.filterwarnings("ignore", module="mir_eval")


def event_times(feats, attr: str) -> np.ndarray:
    """Times [s] (hop end) of the hops where ``attr`` (onset/beat) is True."""
    return np.array([f.time_s for f in feats if getattr(f, attr)], dtype=np.float64)


def mean_delay_ms(ref: np.ndarray, est: np.ndarray, window_s: float) -> float:
    """Mean of (est - nearest ref) over estimates within ``window_s`` of a reference event [ms]."""
    if len(ref) == 0 or len(est) == 0:
        return float("nan")
    d = np.array([e - ref[np.argmin(np.abs(ref - e))] for e in est])
    d = d[np.abs(d) <= window_s]
    return float(1000 * d.mean()) if len(d) else float("nan")


def load_beats(path: Path) -> np.ndarray:
    return np.loadtxt(path, usecols=0, comments="#", ndmin=1)


def note_onsets(notes: np.ndarray, merge_s: float = 0.05) -> np.ndarray:
    """Unique note-onset times (chords played together counted once)."""
    t = np.sort(notes[:, 0])
    keep = [t[0]]
    for x in t[1:]:
        if x - keep[-1] > merge_s:
            keep.append(x)
    return np.array(keep)


def beat_scores(ref, est):
    import mir_eval

    f5 = mir_eval.beat.f_measure(mir_eval.beat.trim_beats(ref), mir_eval.beat.trim_beats(est))
    f0 = mir_eval.beat.f_measure(ref, est)
    return f5, f0


def midi_to_hz(m: np.ndarray) -> np.ndarray:
    return np.where(m > 0, 440.0 * 2.0 ** ((m - 69.0) / 12.0), 0.0)


def chroma_agreement(feats, notes: list[tuple[float, float, int]], lag_s: float = 0.0) -> float:
    """% of non-silent frames with >= 1 sounding note whose chroma argmax is a sounding pitch class.

    ``notes`` = (onset_s, offset_s, midi). A frame at time t (hop end) is compared with the notes sounding at
    ``t - lag_s``; frames within 50 ms of a note boundary are skipped (the window straddles both).
    """
    hits = total = 0
    starts = np.array([n[0] for n in notes])
    ends = np.array([n[1] for n in notes])
    bounds = np.concatenate([starts, ends])
    for f in feats:
        if f.silent:
            continue
        t = f.time_s - lag_s
        if np.min(np.abs(bounds - t)) < 0.05:
            continue
        pcs = {int(m) % 12 for (a, b, m) in notes if a <= t < b}
        if not pcs:
            continue
        total += 1
        hits += int(np.argmax(f.chroma)) in pcs
    return 100.0 * hits / max(total, 1)


def section_onsets(quick: bool) -> None:
    import mir_eval

    y1, sr1 = load_audio(TESTDATA / "madmom" / "sample.wav")
    ref1 = np.loadtxt(TESTDATA / "madmom" / "sample.onsets", comments="#")
    y2, sr2 = load_audio(TESTDATA / "madmom" / "stereo_sample.wav")
    ref2 = note_onsets(np.loadtxt(TESTDATA / "madmom" / "stereo_sample.notes", comments="#"))
    from vj.audio import demo

    y3, sr3 = load_audio("demo")
    ref3 = note_onsets(np.array([[t] for t in (*demo.HAT_TIMES_S, *(c[0] for c in demo.CHORDS))]))
    methods = ["specflux", "kl", "hfc"] if quick else ["specflux", "kl", "mkl", "hfc", "complex", "specdiff",
                                                      "energy", "wphase"]
    thresholds = [0.2, 0.3] if quick else [0.1, 0.2, 0.3, 0.5]
    print("\n### Onsets (F-measure, ±50 ms; times = end of the reporting hop)\n")
    print("| method | threshold | F sample.wav | delay ms | F stereo_sample notes | delay ms | F demo | delay ms "
          "| mean F |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m in methods:
        for th in thresholds:
            cfg = AnalysisConfig(onset_method=m, onset_threshold=th)
            row = []
            for y, sr, ref in ((y1, sr1, ref1), (y2, sr2, ref2), (y3, sr3, ref3)):
                est = event_times(analyze_signal(y, sr, 512, cfg), "onset")
                f = mir_eval.onset.f_measure(ref, est, window=0.05)[0]
                row += [f, mean_delay_ms(ref, est, 0.05)]
            default = " (default)" if (m, th) == (AnalysisConfig.onset_method, AnalysisConfig.onset_threshold) else ""
            print(f"| {m}{default} | {th} | {row[0]:.3f} | {row[1]:.0f} | {row[2]:.3f} | {row[3]:.0f} "
                  f"| {row[4]:.3f} | {row[5]:.0f} | {(row[0] + row[2] + row[4]) / 3:.3f} |")


def section_beats() -> None:
    from vj.audio import demo

    clips = [
        ("annotated/Media-105901.wav (waltz)", TESTDATA / "annotated" / "Media-105901.wav",
         load_beats(TESTDATA / "annotated" / "Media-105901.beats"), None),
        ("annotated/easy_example.flac (pop)", TESTDATA / "annotated" / "easy_example.flac",
         load_beats(TESTDATA / "annotated" / "easy_example.beats"), 100.0),
        ("madmom/sample.wav (2.8 s)", TESTDATA / "madmom" / "sample.wav",
         load_beats(TESTDATA / "madmom" / "sample.beats"),
         tuple(np.loadtxt(TESTDATA / "madmom" / "sample.tempo", comments="#")[:2])),
        ("demo (synthetic, 128 bpm)", "demo", np.array(demo.BEAT_TIMES_S), demo.BPM),
    ]
    print("\n### Beats (F-measure ±70 ms; F = mir_eval default, first 5 s ignored; F all = whole clip) "
          "and tempo\n")
    print("| clip | tracker | F | F all | beat delay ms | bpm (median after 5 s) | annotated bpm | tempo error |")
    print("|---|---|---|---|---|---|---|---|")
    for name, path, ref, bpm_ref in clips:
        y, sr = load_audio(path)
        if bpm_ref is None:
            bpm_ref = 60.0 / float(np.median(np.diff(ref)))
        for tracker in ("aubio", "clock"):
            feats = analyze_signal(y, sr, 512, AnalysisConfig(beat_tracker=tracker))
            est = event_times(feats, "beat")
            f5, f0 = beat_scores(ref, est)
            late = [f.bpm for f in feats if f.time_s >= min(5.0, 0.6 * feats[-1].time_s) and f.bpm > 0]
            bpm = float(np.median(late)) if late else 0.0
            refs = bpm_ref if isinstance(bpm_ref, tuple) else (bpm_ref,)
            err = min((100.0 * (bpm - r) / r for r in refs), key=abs)  # nearest annotated tempo
            label = "aubio tempo alone" if tracker == "aubio" else "vj beat clock"
            shown = " or ".join(f"{r:.1f}" for r in refs)
            print(f"| {name} | {label} | {f5:.3f} | {f0:.3f} | {mean_delay_ms(ref, est, 0.07):.0f} | {bpm:.1f} "
                  f"| {shown} | {err:+.1f}% |")


def section_pitch(quick: bool) -> None:
    import mir_eval

    y, sr = load_audio(TESTDATA / "annotated" / "vocadito_1.wav")
    ref = np.loadtxt(TESTDATA / "annotated" / "vocadito_1_f0.csv", delimiter=",")
    print(f"\n### Pitch (vocadito_1.wav, peak {20 * np.log10(np.abs(y).max()):.1f} dBFS; mir_eval.melody, "
          "±50 cents; times = hop end)\n")
    print("| method | raw pitch accuracy | raw chroma accuracy | voicing recall | voicing false alarm | "
          "overall accuracy | RPA, times = window centre |")
    print("|---|---|---|---|---|---|---|")
    for method in (["yinfast"] if quick else ["yinfast", "yin", "yinfft"]):
        feats = analyze_signal(y, sr, 512, AnalysisConfig(pitch_method=method))
        t = np.array([f.time_s for f in feats])
        hz = midi_to_hz(np.array([f.pitch_midi for f in feats]))
        scores = mir_eval.melody.evaluate(ref[:, 0], ref[:, 1], t, hz)
        centred = mir_eval.melody.evaluate(ref[:, 0], ref[:, 1], t - AnalysisConfig.pitch_buf_size / 2 / sr, hz)
        default = " (default)" if method == AnalysisConfig.pitch_method else ""
        print(f"| {method}{default} | {scores['Raw Pitch Accuracy']:.3f} | {scores['Raw Chroma Accuracy']:.3f} "
              f"| {scores['Voicing Recall']:.3f} | {scores['Voicing False Alarm']:.3f} "
              f"| {scores['Overall Accuracy']:.3f} | {centred['Raw Pitch Accuracy']:.3f} |")


def section_chroma() -> None:
    from vj.audio import demo

    y, sr = load_audio(TESTDATA / "madmom" / "stereo_sample.wav")
    notes = np.loadtxt(TESTDATA / "madmom" / "stereo_sample.notes", comments="#")
    piano = [(float(a), float(a + d), int(m)) for a, m, d, _ in notes]
    yd, srd = load_audio("demo")
    chords = [(a, b, m) for a, b, name in demo.CHORDS for m in (*demo.CHORD_NOTES[name], demo.BASS_NOTES[name])]
    print("\n### Chroma (share of frames whose strongest bin is a sounding pitch class)\n")
    print("| clip | argmax ∈ sounding pitch classes | chance (mean #classes / 12) |")
    print("|---|---|---|")
    feats = analyze_signal(y, sr, 512)
    chance = np.mean([len({m % 12 for a, b, m in piano if a <= f.time_s < b}) for f in feats
                      if any(a <= f.time_s < b for a, b, m in piano)]) / 12 * 100
    print(f"| madmom/stereo_sample.wav (piano) | {chroma_agreement(feats, piano):.1f}% | {chance:.0f}% |")
    featsd = analyze_signal(yd, srd, 512)
    print(f"| demo (synthetic chords Am-F-C-G + bass) | {chroma_agreement(featsd, chords):.1f}% | 25% |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer onset/pitch variants")
    args = ap.parse_args()
    t0 = time.perf_counter()
    cfg = AnalysisConfig()
    print(f"defaults: onset {cfg.onset_method} threshold {cfg.onset_threshold}, pitch {cfg.pitch_method}, "
          f"beat tracker {cfg.beat_tracker}, hop 512")
    section_onsets(args.quick)
    section_beats()
    section_pitch(args.quick)
    section_chroma()
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
