"""Shared fixtures: paths to the real recordings in ../shared/testdata and a clean tmp output dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = Path(os.environ.get("VJ_TESTDATA", ROOT.parent / "shared" / "testdata"))


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


@pytest.fixture(scope="session")
def testdata() -> Path:
    """Folder of real, annotated recordings (../shared/testdata); tests needing it fail if it is absent."""
    if not TESTDATA.is_dir():
        pytest.fail(f"test recordings not found at {TESTDATA} (set VJ_TESTDATA)")
    return TESTDATA


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
