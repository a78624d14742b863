"""One-step set-up for a fresh machine: ``python3 -m vj.bootstrap [--test]``.

Standard library only (it runs before anything is installed). It

1. installs the Debian packages vj needs (PortAudio for sounddevice, EGL/Mesa for moderngl, and with ``--test``
   Xvfb, PulseAudio with its ALSA plug-in for the real-capture tests, and liblo-tools for an independent OSC
   client) when they are missing and apt-get is usable (root, or passwordless sudo);
2. installs PyTorch if it is absent, preferring a wheel already provided locally through pip's ``find-links``
   (so a machine with a local CPU build does not download several GB of CUDA wheels);
3. installs vj itself in editable mode, with the ``test`` and ``midi`` extras when ``--test`` is given.

Each step is skipped when its result is already present, so running it again costs a few seconds.

Exit status: 0 on success, 1 when a step failed (the failing command is named on one line).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Debian packages needed to run vj (audio I/O, GL on screen and headless, the overlay's font).
APT_RUNTIME = ["libportaudio2", "libegl1", "libgl1", "libgl1-mesa-dri", "libglx-mesa0", "xvfb", "xauth",
               "fonts-dejavu-core", "libfontconfig1", "libfreetype6"]  # the last three: the overlay's text
#: Extra Debian packages the test suite drives for real: a virtual X server, a PulseAudio null sink with the
#: ALSA bridge so PortAudio can capture from it, and liblo's command-line OSC client/server.
APT_TEST = ["pulseaudio", "pulseaudio-utils", "libasound2-plugins", "liblo-tools", "alsa-utils"]


def _log(msg: str) -> None:
    print(f"[vj bootstrap] {msg}", flush=True)


def _run(cmd: list[str], env: dict | None = None) -> None:
    _log("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"[vj bootstrap] failed ({proc.returncode}): {' '.join(cmd)}")


def _missing_debs(names: list[str]) -> list[str]:
    if not shutil.which("dpkg-query"):
        return []
    missing = []
    for name in names:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True)
        if "install ok installed" not in out.stdout:
            missing.append(name)
    return missing


def install_debs(names: list[str]) -> None:
    missing = _missing_debs(names)
    if not missing:
        return
    if not shutil.which("apt-get"):
        _log("not a Debian-like system; please install the equivalents of: " + " ".join(missing))
        return
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
            prefix = ["sudo", "-n"]
        else:
            _log("not root: please run  sudo apt-get install -y " + " ".join(missing))
            return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(prefix + ["apt-get", "update", "-qq"], env=env)
    _run(prefix + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)


def _pip(*args: str) -> None:
    _run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args])


def _local_torch_version() -> str | None:
    """Version of a torch wheel that pip's find-links already provide for this Python, if any."""
    links = os.environ.get("PIP_FIND_LINKS", "")
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
        links += " " + " ".join(re.findall(r"find-links='([^']*)'", out.stdout))
    except OSError:
        pass
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    versions = []
    for folder in links.split():
        folder = folder.removeprefix("file://")
        for wheel in glob.glob(os.path.join(folder, f"torch-*-{tag}-*.whl")):
            m = re.match(r"torch-([0-9][^-]*)-", os.path.basename(wheel))
            if m:
                versions.append(m.group(1).split("+")[0])
    return max(versions, key=lambda v: tuple(int(x) for x in re.findall(r"\d+", v))) if versions else None


def install_torch() -> None:
    if importlib.util.find_spec("torch") is not None:
        return
    local = _local_torch_version()
    if local:
        _log(f"using the locally provided torch {local} wheel")
        _pip(f"torch=={local}")
    else:
        _pip("torch>=2.1,<3")


def install_vj(test: bool) -> None:
    extras = "[test,midi]" if test else "[midi]"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = ROOT / ".bootstrap-stamp"
    if stamp.exists() and stamp.read_text().strip() == digest and importlib.util.find_spec("vj") is not None:
        return
    _pip("-q", "-e", f"{ROOT}{extras}")
    if shutil.which("pyenv"):  # make the new `vj` console script visible through pyenv's shims
        subprocess.run(["pyenv", "rehash"], capture_output=True)
    stamp.write_text(digest + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m vj.bootstrap", description=__doc__.splitlines()[0])
    parser.add_argument("--test", action="store_true", help="also install what the test suite needs")
    parser.add_argument("--no-apt", action="store_true", help="skip Debian packages")
    args = parser.parse_args(argv)
    if not args.no_apt:
        install_debs(APT_RUNTIME + (APT_TEST if args.test else []))
    install_torch()
    install_vj(args.test)
    _log("ready")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
