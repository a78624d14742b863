"""``vj bench``: JSON lines with every key, skip notes on stderr, user errors on one line; the weights it makes."""

from __future__ import annotations

import json

import pytest
import torch

from vj.cli import main

KEYS = {"impl", "device", "dtype", "batch", "resolution", "ms_median", "ms_p99", "fps"}


@pytest.fixture(autouse=True)
def _cache_and_threads(tmp_path, monkeypatch, torch_state_restored):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def lines(out: str) -> list[dict]:
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert rows, "no JSON lines"
    return rows


def test_bench_cpu_prints_one_json_object_per_implementation(capsys):
    rc = main(["bench", "--device", "cpu", "--iters", "2", "--warmup", "1", "--batch", "1",
               "--channel-width", "8", "--threads", "1"])
    cap = capsys.readouterr()
    assert rc == 0
    rows = lines(cap.out)
    for row in rows:
        assert KEYS <= row.keys()
        assert row["device"] == "cpu" and row["batch"] == 1 and row["resolution"] == 128
        assert 0 < row["ms_median"] <= row["ms_p99"]
        assert row["fps"] == pytest.approx(1000.0 / row["ms_median"], rel=1e-3)
        assert row["iters"] == 2
        assert row["timer"] == "perf_counter" and row["span"]  # one timer for all; what the span covers, stated
    got = {(r["impl"], r["dtype"]) for r in rows}
    assert {("ours", "float32"), ("ours", "bfloat16"), ("ours-fast", "float32"), ("cppn", "float32")} <= got
    try:
        import pytorch_pretrained_biggan  # noqa: F401
    except ImportError:
        assert "reference skipped" in cap.err
    else:
        assert ("reference", "float32") in got
    assert "float16 on cpu skipped" in cap.err  # a note line, not a JSON line
    for line in cap.err.splitlines():  # notes and log lines only; results go to stdout
        assert line.startswith(("vj bench: note:", "vj: generator:")) or not line.strip(), line


def test_bench_filters_and_batches(capsys):
    rc = main(["bench", "--device", "cpu", "--iters", "1", "--warmup", "0", "--batch", "2", "--impl", "ours",
               "--dtype", "float32", "--channel-width", "8", "--threads", "1"])
    rows = lines(capsys.readouterr().out)
    assert rc == 0 and len(rows) == 1
    assert rows[0]["impl"] == "ours" and rows[0]["batch"] == 2 and rows[0]["dtype"] == "float32"
    assert rows[0]["fps"] == pytest.approx(2000.0 / rows[0]["ms_median"], rel=1e-3)


def test_bench_without_cuda_is_one_line_error(capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    rc = main(["bench", "--device", "cuda", "--iters", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("vj: error:") and "CUDA" in err[0]


def test_bench_rejects_bad_weights_folder(capsys, tmp_path):
    rc = main(["bench", "--device", "cpu", "--weights", str(tmp_path), "--iters", "1"])
    assert rc == 2 and "config.json" in capsys.readouterr().err


def test_random_weights_are_published_format_and_cached(tmp_path):
    from vj.commands.bench import cached_random_weights
    from vj.models.biggan import published_shapes

    folder = cached_random_weights(128, channel_width=8, seed=1)
    again = cached_random_weights(128, channel_width=8, seed=1)
    assert folder == again
    sd = torch.load(folder / "pytorch_model.bin")
    cfg = json.loads((folder / "config.json").read_text())
    from vj.models.biggan import BigGANConfig

    shapes = published_shapes(BigGANConfig.from_dict(cfg))
    assert {k: tuple(v.shape) for k, v in sd.items()} == shapes
    ref = pytest.importorskip("pytorch_pretrained_biggan")
    model = ref.BigGAN(ref.BigGANConfig.from_dict(cfg))
    model.load_state_dict(sd, strict=True)
