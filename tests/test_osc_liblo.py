"""A real OSC round trip over loopback with an independent implementation (liblo-tools' oscsend/oscdump)."""

import shutil
import socket
import subprocess
import time

import pytest

from vj.control.params import ParamRegistry
from vj.control.presets import load_preset
from vj.control.osc import parse_allowlist
from vj.control.surfaces import SurfaceOptions, start_surfaces


def tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install Debian's liblo-tools (CI's bootstrap does)")
    return path


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(reg, predicate, timeout_s=5.0, surfaces=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if surfaces is not None:  # what the frame loop does before it applies the queue
            surfaces.poll()
        reg.apply_pending()
        if predicate():
            return True
        time.sleep(0.02)
    return False


def oscsend(port, *args):
    subprocess.run([tool("oscsend"), "localhost", str(port), *args], check=True, timeout=10)


@pytest.fixture
def live(tmp_path):
    dump_port = free_udp_port()
    dump = subprocess.Popen([tool("oscdump"), "-L", str(dump_port)], stdout=subprocess.PIPE, text=True)
    reg = ParamRegistry()
    args = SurfaceOptions(osc_host="127.0.0.1", osc_port=0, osc_feedback=("127.0.0.1", dump_port))
    surfaces = start_surfaces(args, reg)
    surfaces.presets.save_dir = tmp_path
    try:
        yield reg, surfaces, dump
    finally:
        surfaces.close()
        dump.kill()
        dump.wait()


def test_oscsend_drives_the_registry_and_oscdump_gets_feedback(live):
    reg, surfaces, dump = live
    port = surfaces.osc.port
    time.sleep(0.2)  # let oscdump bind
    oscsend(port, "/vj/master", "f", "0.5")
    assert wait_for(reg, lambda: reg.get("master") == 0.5)
    oscsend(port, "/vj/blackout", "i", "1")
    assert wait_for(reg, lambda: reg.get("blackout") == 1.0)
    oscsend(port, "/vj/gan/classes", "s", "jellyfish, daisy")
    assert wait_for(reg, lambda: reg.classes == (107, 985))
    reg.set_now("transition.time_s", 0.0)
    oscsend(port, "/vj/preset/select", "s", "flowers")
    assert wait_for(reg, lambda: reg.classes == load_preset("flowers").classes, surfaces=surfaces)
    oscsend(port, "/vj/nonsense", "f", "1")  # ignored, counted
    assert wait_for(reg, lambda: surfaces.osc.drops.count == 1)
    time.sleep(0.3)
    dump.terminate()
    out = dump.communicate(timeout=5)[0]
    assert "/vj/master f 0.500000" in out
    assert "/vj/blackout i 1" in out
    assert '/vj/preset/current s "flowers"' in out


def test_allowlist_ignores_other_senders():
    reg = ParamRegistry()
    args = SurfaceOptions(osc_host="127.0.0.1", osc_port=0, osc_allow=parse_allowlist("10.9.8.7"))
    surfaces = start_surfaces(args, reg)
    try:
        oscsend(surfaces.osc.port, "/vj/master", "f", "0.25")
        assert wait_for(reg, lambda: surfaces.osc.drops.count == 1)
        assert reg.get("master") == 1.0
    finally:
        surfaces.close()
