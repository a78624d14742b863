"""One-step set-up for a fresh machine: ``python3 -m vj.bootstrap [--test]``.

Standard library only (it runs before anything is installed). It never installs into the system Python and never
uses ``--break-system-packages`` (PEP 668): everything goes into a project virtual environment.

1. Debian packages: the ones vj needs at run time (PortAudio for sounddevice, EGL/Mesa for moderngl, Xvfb, the
   overlay's fonts) and, with ``--test``, PulseAudio with its ALSA plug-in for the real-capture tests and
   liblo-tools for an independent OSC client. Also, when this Python lacks them, the packages that provide
   ``venv``/``ensurepip`` and the C headers (aubio is built from source). Installed only when missing and
   apt-get is usable (root, or passwordless sudo).
2. The environment: an already active virtual environment is used as it is (and ``.venv`` in the checkout is
   linked to it when there is none, so ``.venv/bin/vj`` works either way); otherwise ``.venv`` in the checkout
   is created (or reused) from this Python — Debian's ``/usr/bin/python3``, a pyenv, conda or any other CPython
   >= 3.11.
3. PyTorch in that environment if it is absent, preferring a wheel already provided locally through pip's
   ``find-links`` (so a CPU machine with a local build does not download several GB of CUDA wheels).
4. vj itself in editable mode, with the ``midi`` extra, and the ``test`` extra with ``--test``.

Each step is skipped when its result is already present, so running it again costs a few seconds.
Afterwards: ``.venv/bin/vj live``, ``.venv/bin/python -m pytest``.

Exit status: 0 on success, 1 when a step failed (the failing command is named on one line).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"

#: Debian packages needed to run vj (audio I/O, GL on screen and headless, the overlay's font).
APT_RUNTIME = ["libportaudio2", "libegl1", "libgl1", "libgl1-mesa-dri", "libglx-mesa0", "xvfb", "xauth",
               "fonts-dejavu-core", "libfontconfig1", "libfreetype6"]  # the last three: the overlay's text
#: Extra Debian packages the test suite drives for real: a virtual X server, a PulseAudio null sink with the
#: ALSA bridge so PortAudio can capture from it, and liblo's command-line OSC client/server.
APT_TEST = ["pulseaudio", "pulseaudio-utils", "libasound2-plugins", "liblo-tools", "alsa-utils"]


class BootstrapError(Exception):
    """A set-up step failed; the message is one line naming it."""


def _log(msg: str) -> None:
    print(f"[vj bootstrap] {msg}", flush=True)


def _run(cmd: list[str], env: dict | None = None, quiet: bool = False) -> None:
    _log("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL if quiet else None)
    if proc.returncode != 0:
        raise BootstrapError(f"failed ({proc.returncode}): {' '.join(cmd)}")


# --------------------------------------------------------------------------------------------- Debian packages
def _missing_debs(names: list[str]) -> list[str]:
    if not shutil.which("dpkg-query"):
        return []
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\\n", *names], capture_output=True,
                         text=True)
    installed = {line.split()[0] for line in out.stdout.splitlines() if line.endswith("install ok installed")}
    return [n for n in names if n not in installed]


def _apt_prefix() -> list[str] | None:
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


def install_debs(names: list[str]) -> None:
    """Install the Debian packages among ``names`` that are missing (nothing when all are present).

    Raises:
        BootstrapError: apt-get failed.
    """
    missing = _missing_debs(names)
    if not missing:
        return
    if not shutil.which("apt-get"):
        _log("not a Debian-like system; please install the equivalents of: " + " ".join(missing))
        return
    prefix = _apt_prefix()
    if prefix is None:
        _log("not root: please run  sudo apt-get install -y " + " ".join(missing))
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(prefix + ["apt-get", "update", "-qq"], env=env)
    _run(prefix + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)


def _system_python_debs() -> list[str]:
    """Debian packages this (system) Python needs to make a venv and build aubio, if it lacks them."""
    if not sys.executable.startswith("/usr/bin/"):
        return []  # pyenv, conda, a self-built Python: ship ensurepip and headers themselves
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    need = []
    try:
        import ensurepip  # noqa: F401  (Debian splits it into python3-venv)
    except ImportError:
        need += ["python3-venv", f"python{ver}-venv"]
    if not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        need += ["python3-dev", f"python{ver}-dev"]
    if not shutil.which("cc"):
        need += ["gcc", "libc6-dev"]
    return need


# --------------------------------------------------------------------------------------------- the environment
def _active_venv() -> Path | None:
    """The virtual environment this Python runs in, if any (``python -m venv``/virtualenv, not conda's base)."""
    if sys.prefix != getattr(sys, "base_prefix", sys.prefix):
        return Path(sys.prefix)
    return None


def _env_python(env: Path) -> Path:
    return env / "bin" / "python"


def _works(python: Path) -> bool:
    try:
        return subprocess.run([str(python), "-c", "import sys; sys.exit(sys.version_info < (3, 11))"],
                              capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def prepare_env() -> Path:
    """Choose or make the environment vj is installed into; return its Python.

    Returns:
        Path of the environment's ``python``.

    Raises:
        BootstrapError: no usable environment could be made (the message says what to install).
    """
    active = _active_venv()
    if active is not None:
        _log(f"using the active virtual environment {active}")
        if not VENV.exists() and not VENV.is_symlink():
            VENV.symlink_to(active, target_is_directory=True)  # so `.venv/bin/vj` is this environment too
        elif VENV.resolve() != active.resolve():
            _log(f"note: {VENV} is another environment; run vj from {active / 'bin'}")
        return Path(sys.executable)
    if VENV.is_symlink() and not _works(_env_python(VENV)):
        VENV.unlink()  # a link to an environment that is gone
    if _works(_env_python(VENV)):
        return _env_python(VENV)
    if VENV.exists():
        _log(f"{VENV} is broken; making it again")
        shutil.rmtree(VENV)
    _run([sys.executable, "-m", "venv", str(VENV)])
    python = _env_python(VENV)
    if not _works(python):
        raise BootstrapError(f"{VENV} was made but its Python does not run")
    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--upgrade", "pip"],
         quiet=True)
    return python


def _has_module(python: Path, name: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({name!r}) is None)"
    return subprocess.run([str(python), "-c", code], capture_output=True).returncode == 0


def _pip(python: Path, *args: str) -> None:
    _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", *args])


def _local_torch_version(python: Path) -> str | None:
    """Version of a torch wheel that pip's find-links already provide for this Python, if any."""
    links = os.environ.get("PIP_FIND_LINKS", "")
    try:
        out = subprocess.run([str(python), "-m", "pip", "config", "list"], capture_output=True, text=True)
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


def install_torch(python: Path) -> None:
    """Install PyTorch into the environment unless it is there (the local wheel when one is provided)."""
    if _has_module(python, "torch"):
        return
    local = _local_torch_version(python)
    if local:
        _log(f"using the locally provided torch {local} wheel")
        _pip(python, f"torch=={local}")
    else:
        _pip(python, "torch>=2.1,<3")


def install_vj(python: Path, test: bool) -> None:
    """Install vj in editable mode with its extras, unless the same pyproject.toml was installed already."""
    extras = "[test,midi]" if test else "[midi]"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()
                            + str(python).encode()).hexdigest()
    stamp = ROOT / ".bootstrap-stamp"
    if stamp.exists() and stamp.read_text().strip() == digest and _has_module(python, "vj.cli"):
        return
    if not test and stamp.exists() and _has_module(python, "pytest"):
        extras = "[test,midi]"  # keep what a previous --test run installed
    _pip(python, "-q", "-e", f"{ROOT}{extras}")
    stamp.write_text(digest + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m vj.bootstrap", description=__doc__.splitlines()[0])
    parser.add_argument("--test", action="store_true", help="also install what the test suite needs")
    parser.add_argument("--no-apt", action="store_true", help="skip Debian packages")
    args = parser.parse_args(argv)
    if sys.version_info < (3, 11):
        _log(f"vj needs Python >= 3.11; this is {sys.version.split()[0]} ({sys.executable})")
        return 1
    try:
        if not args.no_apt:
            install_debs(APT_RUNTIME + (APT_TEST if args.test else []) + _system_python_debs())
        python = prepare_env()
        install_torch(python)
        install_vj(python, args.test)
    except BootstrapError as exc:
        _log(str(exc))
        return 1
    bin_dir = python.parent if _active_venv() is not None else VENV / "bin"
    rel = os.path.relpath(bin_dir, Path.cwd()) if bin_dir.is_relative_to(Path.cwd()) else str(bin_dir)
    _log(f"ready: {rel}/vj live" + (f"   tests: {rel}/python -m pytest" if args.test else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
