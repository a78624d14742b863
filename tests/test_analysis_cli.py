"""``vj analyze``: output formats, options, and one-line errors for bad input."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest

from vj.cli import main

COLUMNS = ["time_s", "rms", "bass", "mid", "high", "onset", "beat", "bpm", "pitch_midi", "pitch_confidence",
           *(f"chroma_{n}" for n in ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")),
           "downbeat", "meter", "bar_phase", "phrase_pos", "event", "event_confidence",
           "tempo_confidence"]


def _one_line_error(capsys, rc):
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert err.startswith("vj: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_csv_to_stdout(capsys, mono_wav):
    rc = main(["analyze", str(mono_wav)])
    assert rc == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == COLUMNS
    n = len(rows) - 1
    assert n == -(-int(2.8 * 44100) // 512) or abs(n - 2.8 * 44100 / 512) < 3
    body = [[float(v) for v in r[:22]] for r in rows[1:]]  # up to the chroma; bar/event columns: test_sections
    assert body[0][0] == pytest.approx(512 / 44100, abs=1e-5)
    assert {r[5] for r in body} <= {0.0, 1.0} and sum(r[5] for r in body) >= 10  # onsets flagged 0/1
    assert all(0 <= v <= 1 for r in body for v in r[10:])


def test_json_with_options(tmp_path, mono_wav):
    out = tmp_path / "a.json"
    rc = main(["analyze", str(mono_wav), "-o", str(out), "--hop", "256",
               "--onset-method", "hfc", "--onset-threshold", "0.5", "--pitch-method", "yin",
               "--start", "1.0", "--duration", "1.0"])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["columns"] == COLUMNS and doc["hop_size"] == 256 and doc["sample_rate"] == 44100
    rows = doc["rows"]
    assert len(rows) == -(-44100 // 256)
    assert rows[0][0] == pytest.approx(1.0 + 256 / 44100, abs=1e-5)  # file time, --start included


def test_demo_to_csv_file(tmp_path):
    out = tmp_path / "demo.csv"
    assert main(["analyze", "demo", "--duration", "3", "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].split(",") == COLUMNS and len(lines) > 250


def test_missing_file(capsys, tmp_path):
    err = _one_line_error(capsys, main(["analyze", str(tmp_path / "nope.wav")]))
    assert "not found" in err


def test_not_audio(capsys, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio\n" * 50)
    _one_line_error(capsys, main(["analyze", str(bad)]))


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_permission(capsys, tmp_path, mono_wav):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        _one_line_error(capsys, main(["analyze", str(mono_wav), "-o", str(ro / "x.csv")]))
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("args", [["-o", "/nonexistent-dir/x.csv"], ["-o", "out.txt"],
                                  ["--onset-method", "bogus"], ["--pitch-method", "bogus"]])
def test_bad_options(capsys, mono_wav, args):
    _one_line_error(capsys, main(["analyze", str(mono_wav), *args]))


def test_output_is_directory(capsys, tmp_path, mono_wav):
    d = tmp_path / "dir.csv"
    d.mkdir()
    _one_line_error(capsys, main(["analyze", str(mono_wav), "-o", str(d)]))
