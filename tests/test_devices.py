"""``vj devices``: runs (exit 0) on a machine without sound card, display or MIDI, in text and JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from vj.cli import main


def test_devices_text_without_display(capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("audio inputs:")
    assert "screens: no display" in out
    assert "midi" in out
    assert all(len(line) < 200 for line in out.splitlines())


def test_devices_json_without_display(capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["devices", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"audio_inputs", "screens", "midi_inputs", "ndi_sources", "notices"}
    assert data["screens"] == [] and "screens: no display" in data["notices"]
    if not data["audio_inputs"]:
        assert "audio: no audio inputs found" in data["notices"]
    for d in data["audio_inputs"]:
        assert {"index", "name", "channels", "default_samplerate", "hostapi", "is_default"} <= set(d)


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb not installed (python3 -m vj.bootstrap)")
def test_devices_lists_xvfb_screen(tmp_path):
    display = f":{90 + os.getpid() % 900}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sock = f"/tmp/.X11-unix/X{display[1:]}"
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and time.monotonic() < deadline and xvfb.poll() is None:
            time.sleep(0.05)
        out = subprocess.run([sys.executable, "-m", "vj", "devices", "--json"], capture_output=True, text=True,
                             env=dict(os.environ, DISPLAY=display), timeout=60)
    finally:
        xvfb.terminate()
        xvfb.wait(5)
    assert out.returncode == 0, out.stderr
    screens = json.loads(out.stdout)["screens"]
    assert [(s["width"], s["height"]) for s in screens] == [(800, 600)]
    assert screens[0]["primary"]
