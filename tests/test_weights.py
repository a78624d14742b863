"""Weights: locating (path, Hugging Face cache, never the network in tests), reading, errors, conversion, CLI."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"  # before huggingface_hub is imported anywhere in this process

pytest.importorskip("pytorch_pretrained_biggan")
from pytorch_pretrained_biggan import BigGAN as RefBigGAN  # noqa: E402
from pytorch_pretrained_biggan import BigGANConfig as RefConfig  # noqa: E402

from vj.errors import VJError, WeightsError  # noqa: E402
from vj.models import MODEL_NAMES, canonical_name, list_models, load_generator  # noqa: E402
from vj.models import weights as W  # noqa: E402
from vj.models.biggan import BigGANConfig, BigGANDeep, random_state_dict  # noqa: E402

#: the BigGAN-deep-128 layout at channel width 4 (instead of 128): same keys, tiny tensors
TINY = {**BigGANConfig().to_dict(), "channel_width": 4}


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path, torch_one_thread):
    """No network, an empty Hugging Face cache, no repository override, one torch thread."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv(W.ENV_REPO, raising=False)


@pytest.fixture
def ref_checkpoint(tmp_path):
    """(folder with pytorch_model.bin + config.json written by the reference package, reference model)."""
    ref = RefBigGAN(RefConfig.from_dict(TINY))
    ref.load_state_dict(random_state_dict(BigGANConfig.from_dict(TINY), seed=21), strict=True)
    ref.eval()
    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save(ref.state_dict(), folder / "pytorch_model.bin")
    (folder / "config.json").write_text(RefConfig.from_dict(TINY).to_json_string())
    return folder, ref


def _inputs(n=2):
    g = torch.Generator().manual_seed(5)
    return 0.5 * torch.randn(n, 128, generator=g), torch.softmax(torch.randn(n, 1000, generator=g), dim=1)


def _same_as_reference(model, ref, t=0.6):
    z, c = _inputs()
    with torch.no_grad():
        a, b = ref(z, c, t), model(z, c, t)
    assert a.std() > 0.05
    return (a - b).abs().max().item() < 1e-4


def _published_sd(folder):
    return torch.load(folder / "pytorch_model.bin", weights_only=True)


# ---------------------------------------------------------------------------------------------------------------
# reading good checkpoints


def test_load_reference_folder(ref_checkpoint):
    folder, ref = ref_checkpoint
    model = load_generator("biggan-deep-128", weights=folder, download=False)
    assert isinstance(model, BigGANDeep) and model.resolution == 128
    assert _same_as_reference(model, ref)


def test_load_legacy_format_bin(ref_checkpoint, tmp_path):
    """The published 2019 files predate the zip format; they must load with weights_only=True."""
    folder, ref = ref_checkpoint
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    torch.save(_published_sd(folder), legacy / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    (legacy / "config.json").write_text((folder / "config.json").read_text())
    assert _same_as_reference(load_generator("biggan", weights=legacy, download=False), ref)


def test_convert_to_safetensors_and_load_single_file(ref_checkpoint, tmp_path, capsys):
    folder, ref = ref_checkpoint
    dst = W.convert(folder, tmp_path / "out" / "tiny.safetensors")
    assert dst.is_file()
    # single file: the configuration travels in the safetensors metadata
    assert _same_as_reference(load_generator("biggan-deep-128", weights=dst, download=False), ref)
    # and through the CLI
    from vj.cli import main

    assert main(["weights", "convert", str(folder / "pytorch_model.bin"), str(tmp_path / "b.safetensors")]) != 0
    assert "vj: error:" in capsys.readouterr().err  # a bare tiny .bin is checked against the 128 layout
    assert main(["weights", "convert", str(folder), str(tmp_path / "c.safetensors")]) == 0
    assert (tmp_path / "c.safetensors").is_file()


def test_convert_rejects_other_suffix(ref_checkpoint, tmp_path):
    folder, _ = ref_checkpoint
    with pytest.raises(VJError, match="must end in .safetensors"):
        W.convert(folder, tmp_path / "x.bin")


def test_single_bin_uses_builtin_config_and_reports_mismatch(ref_checkpoint):
    folder, _ = ref_checkpoint
    with pytest.raises(WeightsError, match=r"do not match biggan-deep-128 .*has shape \[1024, 256\], "
                                           r"expected \[32768, 256\]"):
        load_generator("biggan-deep-128", weights=folder / "pytorch_model.bin", download=False)


# ---------------------------------------------------------------------------------------------------------------
# corrupt and mismatched checkpoints


@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "not_tensors"])
def test_corrupt_bin(ref_checkpoint, damage):
    folder, _ = ref_checkpoint
    path = folder / "pytorch_model.bin"
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
        match = "not a readable PyTorch checkpoint"
    elif damage == "random":
        path.write_bytes(os.urandom(4096))
        match = "not a readable PyTorch checkpoint"
    elif damage == "empty":
        path.write_bytes(b"")
        match = "is empty"
    else:
        torch.save({"hello": 1}, path)
        match = "not named tensors"
    with pytest.raises(WeightsError, match=match) as info:
        load_generator("biggan-deep-128", weights=folder, download=False)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_corrupt_safetensors(ref_checkpoint, tmp_path, damage):
    folder, _ = ref_checkpoint
    dst = W.convert(folder, tmp_path / "m.safetensors")
    data = dst.read_bytes()
    dst.write_bytes(data[: len(data) // 2] if damage == "truncated" else os.urandom(4096))
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        load_generator("biggan-deep-128", weights=dst, download=False)


def test_mismatched_keys_and_shapes(ref_checkpoint):
    folder, _ = ref_checkpoint
    base = _published_sd(folder)

    def check(sd, pattern):
        torch.save(sd, folder / "pytorch_model.bin")
        with pytest.raises(WeightsError, match=pattern):
            load_generator("biggan-deep-128", weights=folder, download=False)

    sd = dict(base)
    del sd["generator.layers.0.conv_1.weight_orig"]
    check(sd, r"1 missing key\(s\): generator\.layers\.0\.conv_1\.weight_orig")
    sd = dict(base, **{"generator.extra.weight": torch.zeros(3)})
    check(sd, r"1 unexpected key\(s\): generator\.extra\.weight")
    sd = dict(base)
    sd["generator.conv_to_rgb.bias"] = torch.zeros(5)
    check(sd, r"generator\.conv_to_rgb\.bias has shape \[5\], expected \[4\]")
    sd = {k: v for k, v in base.items() if "layers.3" not in k}
    check(sd, r"\d+ missing key\(s\): .* \.\.\.")


def test_bad_config_json(ref_checkpoint):
    folder, _ = ref_checkpoint
    (folder / "config.json").write_text("{not json")
    with pytest.raises(WeightsError, match="cannot read BigGAN config"):
        load_generator("biggan-deep-128", weights=folder, download=False)


def test_config_for_other_model_is_reported(ref_checkpoint):
    folder, _ = ref_checkpoint
    with pytest.raises(WeightsError, match="describes biggan-deep-128, not biggan-deep-256"):
        load_generator("biggan-deep-256", weights=folder, download=False)


def test_missing_path(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_generator("biggan-deep-128", weights=tmp_path / "nope", download=False)
    with pytest.raises(WeightsError, match="holds neither"):
        load_generator("biggan-deep-128", weights=tmp_path, download=False)


# ---------------------------------------------------------------------------------------------------------------
# no weights, cache, download (all offline)


def _assert_paragraph(msg: str, name="biggan-deep-128"):
    assert "\n" not in msg and "Traceback" not in msg
    for needle in ("--weights", f"vj weights download {name}", "HF_HOME", W.ENV_REPO):
        assert needle in msg, needle


def test_missing_weights_offline_is_one_paragraph():
    with pytest.raises(WeightsError) as info:
        load_generator("biggan-deep-128")  # download allowed, but HF_HUB_OFFLINE is set
    _assert_paragraph(str(info.value))
    with pytest.raises(WeightsError) as info:
        load_generator("biggan-deep-128", download=False)
    _assert_paragraph(str(info.value))


def test_download_failure_is_reported_without_network(monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")
    calls = []

    def fake_download(repo_id, filename, **kw):
        calls.append((repo_id, filename))
        raise OSError("Connection refused\nmore detail")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    with pytest.raises(WeightsError, match="download from osanseviero/BigGAN-deep-128 failed: Connection refused"
                       ) as info:
        W.download("biggan-deep-128")
    _assert_paragraph(str(info.value))
    assert calls == [("osanseviero/BigGAN-deep-128", "config.json")]


def test_offline_never_calls_the_hub(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("network used"))
    with pytest.raises(WeightsError):
        W.download("biggan-deep-128")


def test_no_default_repo_for_256():
    assert W.repo_for("biggan-deep-256") is None
    with pytest.raises(WeightsError, match="--repo OWNER/NAME"):
        load_generator("biggan-deep-256")


def test_repo_override(monkeypatch):
    assert W.repo_for("biggan-deep-128") == "osanseviero/BigGAN-deep-128"
    monkeypatch.setenv(W.ENV_REPO, "me/BigGAN-deep-{resolution}")
    assert W.repo_for("biggan-deep-512") == "me/BigGAN-deep-512"
    assert W.repo_for("biggan-deep-512", "other/x") == "other/x"


def _fake_cache(folder, repo="osanseviero/BigGAN-deep-128"):
    """Lay out a Hugging Face hub cache entry (refs/main -> snapshots/<commit>/files) under $HF_HOME/hub."""
    commit = "0" * 40
    entry = W.hf_cache_dir() / ("models--" + repo.replace("/", "--"))
    snap = entry / "snapshots" / commit
    snap.mkdir(parents=True)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(commit)
    for name in ("pytorch_model.bin", "config.json"):
        (snap / name).write_bytes((folder / name).read_bytes())
    return snap


def test_hf_cache_is_found_and_auto_uses_it(ref_checkpoint, caplog):
    folder, ref = ref_checkpoint
    assert W.find_local("biggan-deep-128") is None
    snap = _fake_cache(folder)
    loc = W.find_local("biggan-deep-128")
    assert loc is not None and loc.source == "cache" and loc.weights_path == snap / "pytorch_model.bin"
    with caplog.at_level(logging.INFO, logger="vj"):
        model = load_generator("auto")
    records = [r for r in caplog.records if r.name == "vj"]
    assert len(records) == 1 and "biggan-deep" in records[0].getMessage()
    assert "Hugging Face cache" in records[0].getMessage()
    assert _same_as_reference(model, ref)
    rows = {r["name"]: r for r in list_models()}
    assert rows["biggan-deep-128"]["available"] and str(snap) in rows["biggan-deep-128"]["where"]


def test_auto_with_explicit_weights(ref_checkpoint, caplog):
    folder, ref = ref_checkpoint
    with caplog.at_level(logging.INFO, logger="vj"):
        model = load_generator("AUTO", weights=folder)
    assert [r.name for r in caplog.records].count("vj") == 1
    assert _same_as_reference(model, ref)


def test_auto_without_weights_falls_back_to_cppn(caplog):
    pytest.importorskip("vj.models.cppn")
    with caplog.at_level(logging.INFO, logger="vj"):
        model = load_generator("auto")
    records = [r for r in caplog.records if r.name == "vj"]
    assert len(records) == 1 and "CPPN" in records[0].getMessage()
    assert type(model).__name__ == "CPPN"
    z, c = _inputs(1)
    with torch.no_grad():
        out = model(z, c, 0.5)
    assert out.shape[:2] == (1, 3)


def test_names():
    assert canonical_name("BigGAN") == "biggan-deep-128"
    assert canonical_name("biggan-deep-512") == "biggan-deep-512"
    assert set(MODEL_NAMES) >= {"auto", "cppn", "biggan-deep-128", "biggan-deep-256", "biggan-deep-512"}
    with pytest.raises(VJError, match="valid: auto, biggan-deep-128"):
        load_generator("stylegan")


# ---------------------------------------------------------------------------------------------------------------
# CLI (subprocesses: what a user sees)


def _vj(*args, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "vj", "weights", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_cli_status_runs(tmp_path):
    out = _vj("status")
    assert out.returncode == 0, out.stderr
    assert "biggan-deep-128" in out.stdout and "missing" in out.stdout and str(tmp_path) in out.stdout


def test_cli_bad_path_is_one_line_error(tmp_path):
    out = _vj("convert", str(tmp_path / "missing.bin"), str(tmp_path / "x.safetensors"))
    assert out.returncode != 0
    assert out.stderr.startswith("vj: error: ") and out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr


def test_cli_download_offline_is_one_paragraph():
    out = _vj("download", "biggan-deep-128")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.startswith("vj: error: ") and out.stderr.count("\n") == 1
    _assert_paragraph(out.stderr.rstrip("\n"))


def test_auto_with_single_safetensors_of_another_resolution(tmp_path, caplog):
    from vj.models.biggan import CONFIGS

    config = BigGANConfig.from_dict({**CONFIGS["biggan-deep-256"].to_dict(), "channel_width": 4})
    folder = tmp_path / "c256"
    folder.mkdir()
    torch.save(random_state_dict(config, seed=2), folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    dst = W.convert(folder, tmp_path / "m256.safetensors")
    with caplog.at_level(logging.INFO, logger="vj"):
        model = load_generator("auto", weights=dst)
    assert model.resolution == 256 and model.model_name == "biggan-deep-256"
    assert "biggan-deep-256" in caplog.records[-1].getMessage()
