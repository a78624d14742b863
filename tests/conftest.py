"""Shared fixtures.

The suite's core needs nothing outside the clone: the fixtures :func:`demo_flac`, :func:`mono_wav`,
:func:`stereo_wav` and :func:`music_flac` give real music (the bundled demo piece, whose beats, chords and sections
are module constants in :mod:`vj.audio.demo`) and signals with exact ground truth, written at test time.

Accuracy tests on third-party annotated recordings use :func:`testdata`. They run when the recordings are present
(``VJ_TESTDATA``, else ``../shared/testdata`` beside the clone) and otherwise skip with one line saying what is
missing. ``VJ_REQUIRE_TESTDATA=1`` (set by ``.ci/run``) turns that skip into a failure, so on the project's own
machines they always run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = Path(os.environ.get("VJ_TESTDATA") or ROOT.parent / "shared" / "testdata")
#: Set to 1 (``.ci/run`` does) to make a missing recordings folder a failure instead of a skip.
REQUIRE_TESTDATA = os.environ.get("VJ_REQUIRE_TESTDATA", "").strip().lower() in ("1", "true", "yes")
TESTDATA_PARTS = ("madmom", "annotated", "club")


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def _testdata_problem() -> str | None:
    if not TESTDATA.is_dir():
        return f"not found at {TESTDATA}"
    missing = [part for part in TESTDATA_PARTS if not (TESTDATA / part).is_dir()]
    return f"{TESTDATA} lacks {', '.join(missing)}/" if missing else None


@pytest.fixture(scope="session")
def testdata() -> Path:
    """Folder of third-party annotated recordings (madmom/, annotated/, club/).

    Skips the test when absent (fails instead under ``VJ_REQUIRE_TESTDATA=1``). A user's clone does not have
    them; the README says where they come from.
    """
    problem = _testdata_problem()
    if problem:
        msg = (f"third-party test recordings {problem}: set VJ_TESTDATA to a folder with "
               f"{', '.join(p + '/' for p in TESTDATA_PARTS)} (see README, 'Optional recordings')")
        if REQUIRE_TESTDATA:
            pytest.fail(msg + " [VJ_REQUIRE_TESTDATA=1]", pytrace=False)
        pytest.skip(msg)
    return TESTDATA


@pytest.fixture(scope="session")
def demo_flac() -> Path:
    """The bundled demo piece (30 s, 44.1 kHz mono FLAC, 128 bpm; ground truth in :mod:`vj.audio.demo`)."""
    from vj.audio.demo import demo_path

    return demo_path()


@pytest.fixture(scope="session")
def demo_audio(demo_flac):
    """The demo piece decoded: ``(y, sr)`` with ``y`` float32 mono [-1, 1], ``sr`` = 44100 Hz."""
    import soundfile as sf

    y, sr = sf.read(str(demo_flac), dtype="float32")
    return y, sr


@pytest.fixture(scope="session")
def generated_audio(tmp_path_factory, demo_audio) -> Path:
    """A folder of short clips written at test time from the demo piece and exact synthetic signals:

    * ``mono.wav`` — 2.8 s, mono, 16-bit: the demo's groove from bar 4 (kick, snare, hats, bass, pad);
    * ``stereo.wav`` — 4.15 s, stereo, 16-bit: left the demo's drop from bar 12, right a 440 Hz sine at -12 dBFS
      (so mixing to mono and picking channels give different, checkable results);
    * ``music.flac`` — the demo's first 24 s (intro, groove, breakdown, build), mono FLAC.
    """
    import numpy as np
    import soundfile as sf
    from vj.audio import demo

    y, sr = demo_audio
    out = tmp_path_factory.mktemp("generated_audio")
    bar = int(round(demo.BAR_S * sr))
    sf.write(out / "mono.wav", y[4 * bar : 4 * bar + int(2.8 * sr)], sr, subtype="PCM_16")
    n = int(4.15 * sr)
    left = y[12 * bar : 12 * bar + n]
    right = (10 ** (-12 / 20) * np.sin(2 * np.pi * 440.0 * np.arange(n) / sr)).astype(np.float32)
    sf.write(out / "stereo.wav", np.column_stack([left, right]), sr, subtype="PCM_16")
    sf.write(out / "music.flac", y[: 24 * sr], sr)
    return out


@pytest.fixture(scope="session")
def mono_wav(generated_audio) -> Path:
    return generated_audio / "mono.wav"


@pytest.fixture(scope="session")
def stereo_wav(generated_audio) -> Path:
    return generated_audio / "stereo.wav"


@pytest.fixture(scope="session")
def music_flac(generated_audio) -> Path:
    return generated_audio / "music.flac"


@pytest.fixture(autouse=True)
def _denormals_back_on():
    """A render in this process (``vj.models.fast.prepare_cpu``) turns on flushing of denormal floats for the whole
    process, as a real render should; turn it off again after each test so later tests see IEEE-754 arithmetic."""
    yield
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_flush_denormal(False)


@pytest.fixture
def torch_state_restored():
    """Restore torch's process-wide state after the test: intra-op threads and denormal flushing (off)."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)


@pytest.fixture
def torch_one_thread(torch_state_restored):
    """One intra-op thread for the test (on a shared 2-core machine small ops run several times faster without
    contention), then torch's state restored."""
    import torch

    torch.set_num_threads(1)
    yield
