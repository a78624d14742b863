import subprocess
import sys

from vj.cli import main


def test_help_lists_commands(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert "usage: vj" in out


def test_version_via_module():
    out = subprocess.run([sys.executable, "-m", "vj", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("vj ")
