"""NDI out over loopback: sender CPU, display-thread time, frames received / frames displayed (issue 14 targets).

Three parts, each printing one JSON line:

* ``sender`` — :class:`vj.engine.ndi.NdiOutput`'s sender thread fed 1280x720 UYVY at 60 Hz (a stand-in for the
  display thread, which only fills the hand-off slot), with a receiver (``python -m vj.engine.ndi_receive receive``) in a
  second process; CPU of this process over the run (``time.process_time``), minus the same loop without NDI.
* ``gl`` — the added display-thread time per frame: :meth:`NdiOutput.frame` (conversion pass + asynchronous
  read-back + copying the previous read-back out) on a headless EGL context behind a 1280x720 :class:`Pipeline`.
* ``live`` — ``vj live --headless --ndi`` (CPPN, 1280x720, ``--fps-cap 60``) with a receiver for a run, beside
  the same show without ``--ndi``: process CPU (rusage), display rate, frames the receiver's NDI runtime received
  and the frames its application got, over frames displayed.

Usage::

    python benchmarks/ndi_loopback.py [--seconds 60] [--parts sender,gl,live] [--picture noise|smooth]

Discovery is loopback-only (a private ``ndi-config.v1.json`` naming 127.0.0.1); needs ``vj[ndi]`` and EGL.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vj.engine import ndi  # noqa: E402


def _env(cfg: Path) -> dict:
    return dict(os.environ, NDI_CONFIG_DIR=str(cfg),
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))


def _receiver(name: str, seconds: float, env: dict, out: Path) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "vj.engine.ndi_receive", "receive", name, "--seconds", str(seconds),
                             "--timeout", "120", "--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _last_status(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=120)
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{") and '"frames"' in x]
    return lines[-1] if lines else {}


def _feed(out: ndi.NdiOutput | None, seconds: float, fps: float, frame: np.ndarray) -> int:
    """Fill the hand-off slot at ``fps`` like the display thread does; returns frames pushed."""
    slot = out._slot if out is not None else ndi.FrameSlot(*frame.shape[:2])
    t0 = time.perf_counter()
    n = 0
    while (now := time.perf_counter()) - t0 < seconds:
        buf = slot.write_buffer(*frame.shape[:2])
        buf[...] = frame
        n += 1
        slot.publish(frame_id=n, t_done_s=now)
        if out is not None:
            out.pushed = n
            out._wake.set()
        time.sleep(max(0.0, t0 + n / fps - time.perf_counter()))
    return n


def _picture(kind: str, w: int, h: int) -> np.ndarray:
    """A UYVY frame, uint8 (h, w/2, 4): ``noise`` (worst case for NDI's compression) or ``smooth`` (soft colour
    fields, closer to the CPPN/BigGAN output after upscaling)."""
    if kind == "noise":
        return np.random.default_rng(0).integers(16, 235, (h, w // 2, 4), dtype=np.uint8)
    y, x = np.mgrid[0:h, 0:w // 2].astype(np.float32)
    f = np.empty((h, w // 2, 4), np.float32)
    f[..., 0] = 128 + 60 * np.sin(x / 37.0 + y / 53.0)
    f[..., 2] = 128 + 60 * np.cos(x / 41.0 - y / 29.0)
    f[..., 1] = 16 + 219 * (0.5 + 0.45 * np.sin(x / 23.0) * np.cos(y / 31.0))
    f[..., 3] = 16 + 219 * (0.5 + 0.45 * np.sin((x + 0.5) / 23.0) * np.cos(y / 31.0))
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def part_sender(seconds: float, cfg: Path, picture: str = "noise") -> dict:
    os.environ["NDI_CONFIG_DIR"] = str(cfg)
    w, h, fps = 1280, 720, 60.0
    frame = _picture(picture, w, h)
    c0, t0 = time.process_time(), time.perf_counter()
    _feed(None, seconds, fps, frame)
    base = (time.process_time() - c0) / (time.perf_counter() - t0)
    out = ndi.NdiOutput("bench-sender", (w, h), fps=fps)
    out.open()
    out.start()
    recv = _receiver("bench-sender", seconds + 5, _env(cfg), Path(tempfile.mkdtemp()))
    time.sleep(3.0)  # connected and streaming
    c0, t0 = time.process_time(), time.perf_counter()
    sent0 = out.sent
    pushed = _feed(out, seconds, fps, frame)
    wall = time.perf_counter() - t0
    cpu = (time.process_time() - c0) / wall
    sent = out.sent - sent0
    st = _last_status(recv)
    out.close()
    return {"part": "sender", "picture": picture, "size": f"{w}x{h}", "format": "UYVY", "fps": fps, "seconds": round(wall, 1),
            "pushed": pushed, "sent": sent, "dropped": out.dropped, "cpu_cores_with_ndi": round(cpu, 4),
            "cpu_cores_without": round(base, 4), "ndi_cost_cores": round(cpu - base, 4),
            "receiver": st}


def part_gl(seconds: float) -> dict:
    import moderngl

    from vj.display.pipeline import Pipeline

    ctx = moderngl.create_standalone_context(backend="egl")
    pipe = Pipeline(ctx, (1280, 720), (128, 128))
    pipe.upload(np.random.default_rng(0).integers(0, 255, (128, 128, 4), dtype=np.uint8))
    out = {}
    for alpha in (False, True):
        o = ndi.NdiOutput("gl", (1280, 720), alpha=alpha)
        o.attach(pipe)
        base, added, copy = [], [], []
        buf = np.empty(o.frame_shape, np.uint8)
        t_end = time.perf_counter() + seconds / 2
        while time.perf_counter() < t_end:
            a = time.perf_counter()
            pipe.render(0.5, 0.35)
            ctx.finish()
            b = time.perf_counter()
            o.frame()
            ctx.finish()
            c = time.perf_counter()
            o._gl[4].read_into(buf)  # the CPU part of frame(): copying a finished read-back out (as on a GPU)
            copy.append(time.perf_counter() - c)
            base.append(b - a)
            added.append(c - b)
        o.close()
        key = "rgba" if alpha else "uyvy"
        out[key] = {"frames": len(added), "ms_p50": round(1e3 * float(np.median(added)), 3),
                    "ms_p95": round(1e3 * float(np.percentile(added, 95)), 3),
                    "copy_ms_p50": round(1e3 * float(np.median(copy)), 3),
                    "copy_ms_p95": round(1e3 * float(np.percentile(copy, 95)), 3),
                    "render_ms_p50": round(1e3 * float(np.median(base)), 3)}
    renderer = ctx.info.get("GL_RENDERER", "?")
    pipe.release()
    ctx.release()
    return {"part": "gl", "renderer": renderer, **out}


def _live(seconds: float, cfg: Path, with_ndi: bool, tmp: Path) -> dict:
    stats = tmp / f"stats_{int(with_ndi)}.jsonl"
    stats.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "vj", "live", "--headless", "--model", "cppn", "--input", "demo", "--size",
           "1280x720", "--fps-cap", "60", "--osc-port", "0", "--duration", str(seconds), "--stats", str(stats)]
    name = f"bench-live-{os.getpid()}"
    if with_ndi:
        cmd += ["--ndi", name]
    env = _env(cfg)
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    recv = _receiver(name, seconds + 30, env, tmp / "recv") if with_ndi else None
    _, status, ru = os.wait4(proc.pid, 0)
    err = proc.stderr.read()
    lines = [json.loads(x) for x in stats.read_text().splitlines() if x.strip()]
    swaps = None
    for ln in err.splitlines():
        if " swaps (" in ln:
            swaps = int(ln.split(" swaps (")[0].rsplit(",", 1)[1])
    res = {"ndi": with_ndi, "exit": os.waitstatus_to_exitcode(status), "swaps": swaps,
           "cpu_cores": round((ru.ru_utime + ru.ru_stime) / seconds, 3),
           "display_fps_mean": round(float(np.mean([x["display_fps"] for x in lines[1:]])), 2)}
    if recv is not None:
        time.sleep(2.0)  # its once-a-second status line covers the show's last frames
        recv.terminate()
        st = _last_status(recv)
        res.update({"ndi_sent": lines[-1].get("ndi_sent"), "ndi_dropped": lines[-1].get("ndi_dropped"),
                    "receiver_app_frames": st.get("frames"),
                    "receiver_ndi_frames": st.get("ndi", {}).get("frames_total"), "receiver": st})
        if swaps:
            res["received_ndi_over_displayed"] = round((res["receiver_ndi_frames"] or 0) / swaps, 4)
            res["received_app_over_displayed"] = round((res["receiver_app_frames"] or 0) / swaps, 4)
    return res


def part_live(seconds: float, cfg: Path) -> dict:
    tmp = Path(tempfile.mkdtemp())
    without = _live(seconds, cfg, False, tmp)
    with_ndi = _live(seconds, cfg, True, tmp)
    return {"part": "live", "seconds": seconds, "without": without, "with": with_ndi,
            "ndi_cost_cores": round(with_ndi["cpu_cores"] - without["cpu_cores"], 3)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--parts", default="sender,gl,live")
    p.add_argument("--picture", choices=("noise", "smooth"), default="noise", help="what the sender part sends")
    a = p.parse_args(argv)
    cfg = Path(tempfile.mkdtemp(prefix="vj-ndi-bench-"))
    ndi.write_config(cfg, ["127.0.0.1"])
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "load_1min": round(os.getloadavg()[0], 2)}
    print(json.dumps({"machine": machine}), flush=True)
    for part in a.parts.split(","):
        if part == "sender":
            r = part_sender(a.seconds, cfg, a.picture)
        elif part == "gl":
            r = part_gl(min(a.seconds, 20.0))
        elif part == "live":
            r = part_live(a.seconds, cfg)
        else:
            raise SystemExit(f"unknown part {part!r}")
        r["load_1min_after"] = round(os.getloadavg()[0], 2)
        print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
