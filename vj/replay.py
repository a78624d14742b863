"""``vj render --replay LOG``: a show log (:mod:`vj.showlog`) rendered again, deterministically — the aftermovie.

1. **Timeline** (sequential, cheap): video frame ``k`` shows audio-clock time ``T_k = k / fps``. The audio clock is
   the input stream's own time (``Features.time_s``, hop-exact); a logged event's show-clock instant is mapped onto
   it through the newest hop captured before it (``T = hop.time_s + (t_event - hop.capture)``). For every frame
   from 0 to the end, the parameters and palette in force at ``T_k`` (the header's start state, then every logged
   change up to ``T_k``) are given to the same :class:`vj.mapping.Mapper` as live — ``apply_params`` and
   ``set_palette`` exactly as :class:`vj.engine.inference.InferenceThread` does — and it is stepped with the newest
   logged hop at ``T_k`` (or the inference thread's drift when no hop came for ``DRIFT_AFTER_S``), ``dt = 1/fps``.
   The effect uniforms come from :func:`vj.display.offline.fx_timeline` with the logged beat-clock count. The mapper
   always starts at frame 0, so an excerpt (``--start/--end``) has the same frames as the full render.
2. **Frames**: the generator (any model and size, e.g. BigGAN-deep-512 for a show played at 128) runs on the
   timeline's latents in chunks, in this process or on Ray (:mod:`vj.farm`); chunks come back in order.
3. **Effects** through the live shaders, headless (:class:`vj.display.offline.OfflineFx`), unless ``--no-fx``.
4. **Encode** with the render's encoder process (H.264 + AAC, reproducible), audio from the log
   (``--show-log-audio``) or from the original file, cut to the same excerpt.

Same log + same options → identical frames.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vj.errors import VJError
from vj.showlog_reader import ShowLog, read_show_log

log = logging.getLogger("vj")

#: named output sizes for ``--resolution``
NAMED_SIZES = {"512": (512, 512), "1024": (1024, 1024), "1080p": (1920, 1080), "720p": (1280, 720),
               "4k": (3840, 2160)}


@dataclass
class ReplayOptions:
    """What :func:`render_replay` needs.

    Attributes:
        log: the show log path.
        output: video path (.mp4/.mov/.mkv).
        model: generator name, or None = the one the show used.
        weights: BigGAN weights path, or None = the show's (if it still exists) or the cache.
        resolution: output (width, height) [px].
        fps: video frame rate [frames/s].
        start_s, end_s: excerpt on the show's audio clock [s] (end None = the end of the log).
        audio: the original audio file for the soundtrack (None = the log's audio, else the show's input file).
        fx: apply the show's effects (False = the bare generator, upscaled bicubically).
        device, precision, batch_size: generator placement (see :class:`vj.farm.GeneratorSpec`).
        chunk_frames: frames per farmed chunk.
        ray: None = in-process; "" / "local" = a local Ray cluster; an address or "auto" = that cluster.
        ray_workers: number of Ray actors (None = one per GPU, else one per CPU).
        crf: x264 quality.
        progress: show a progress bar.
    """

    log: Path
    output: Path
    model: str | None = None
    weights: str | None = None
    resolution: tuple[int, int] = (512, 512)
    fps: float = 30.0
    start_s: float = 0.0
    end_s: float | None = None
    audio: str | None = None
    fx: bool = True
    device: str = "cpu"
    precision: str = "fp32"
    batch_size: int = 4
    chunk_frames: int = 16
    ray: str | None = None
    ray_workers: int | None = None
    crf: int = 18
    progress: bool = True
    farm: object = field(default=None, repr=False)  #: a ready farm (tests), overrides device/ray


@dataclass
class Timeline:
    """The replay's per-frame inputs, frames ``0 .. n - 1`` at ``k / fps`` on the audio clock.

    Attributes:
        times_s: float64 [n] frame times [s].
        noise: float32 [n, 128]; truncation: float32 [n].
        cv_cols: int64 [m] the class indices ever non-zero; cv_vals: float32 [n, m] their weights (the class
            vectors, stored sparsely: a dense one-hour timeline would take 430 MB).
        fx: one :class:`vj.display.offline.FrameFx` per frame.
        params: the parameter values in force at each frame (only kept when asked, for tests and docs).
    """

    times_s: np.ndarray
    noise: np.ndarray
    truncation: np.ndarray
    cv_cols: np.ndarray
    cv_vals: np.ndarray
    fx: list
    fps: float
    params: list | None = None

    def __len__(self) -> int:
        return len(self.times_s)

    def class_vectors(self, a: int, b: int) -> np.ndarray:
        """Dense class vectors of frames ``a .. b-1``: float32 [b - a, 1000]."""
        out = np.zeros((b - a, 1000), np.float32)
        out[:, self.cv_cols] = self.cv_vals[a:b]
        return out

    def chunks(self, first: int, last: int, size: int, batch_size: int):
        """:class:`vj.farm.Chunk` s covering frames ``first .. last - 1``.

        Chunk and generator-batch boundaries sit at multiples of ``size`` and ``batch_size`` counted from frame 0,
        and a chunk at the edge of an excerpt generates its whole batch and keeps only the frames asked for: a
        generator's arithmetic may depend on which frames share a batch, and this way every frame is made in the
        same batch whatever the excerpt, chunking or farm (``size`` is rounded up to a multiple of
        ``batch_size``; the timeline must reach ``ceil(last / batch_size) * batch_size``).
        """
        from vj.farm import Chunk

        bs = int(batch_size)
        size = max(int(math.ceil(size / bs)) * bs, bs)
        start = (first // size) * size
        for i, a in enumerate(range(start, last, size)):
            lo = max(a, (first // bs) * bs)
            b = min(a + size, int(math.ceil(last / bs)) * bs, len(self))
            keep = (max(first, a) - lo, min(last, b) - lo)
            yield Chunk(i, lo, self.noise[lo:b], self.class_vectors(lo, b), self.truncation[lo:b], keep)


def event_audio_times(show_log: ShowLog) -> np.ndarray:
    """Each logged event's instant on the audio clock [s] (see the module docstring), float64 [len(events)]."""
    h = show_log.hops
    ts = np.array([t for _, t, _ in show_log.events], np.float64)
    if show_log.n_hops == 0:
        return ts
    show = h["show_s"].astype(np.float64)
    audio = h["time_s"].astype(np.float64)
    j = np.searchsorted(show, ts, side="right") - 1
    jj = np.clip(j, 0, len(show) - 1)
    return audio[jj] + (ts - show[jj])


def log_end_s(show_log: ShowLog) -> float:
    """Audio-clock time of the last logged hop [s] (0 for an empty log)."""
    return float(show_log.hops["time_s"][-1]) if show_log.n_hops else 0.0


def build_timeline(show_log: ShowLog, fps: float, n_frames: int, keep_params: bool = False) -> Timeline:
    """Run the live mapping over the log, frame by frame (see the module docstring).

    Args:
        show_log: the log.
        fps: video frame rate [frames/s].
        n_frames: frames from time 0.
        keep_params: keep each frame's parameter dict in :attr:`Timeline.params`.

    Returns:
        The :class:`Timeline`.

    Raises:
        VJError: a mapping setting in the log is invalid.
    """
    from dataclasses import replace

    from vj.audio.features import Features
    from vj.display.offline import fx_timeline
    from vj.engine.inference import InferenceThread
    from vj.mapping import DIM_Z, Mapper, MappingSettings

    hdr = show_log.header
    settings = MappingSettings.from_json(hdr.get("mapping", "{}"))
    settings.fps = float(fps)
    mapper = Mapper(settings, seed=int(hdr.get("seed", 0)))
    params = dict(hdr.get("params", {}))
    src, tgt, mix = hdr.get("palette", [[], [], 1.0])
    palette = (tuple(src), tuple(tgt), float(mix))
    ev_t = event_audio_times(show_log)
    order = np.argsort(ev_t, kind="stable")
    events = [show_log.events[i] for i in order]
    ev_t = ev_t[order]
    beat_count = 0
    hop_t = show_log.hops["time_s"].astype(np.float64)
    cache: dict[int, Features] = {}

    def hop(j: int) -> Features:
        f = cache.get(j)
        if f is None:
            cache.clear()
            f = cache[j] = show_log.features(j)
        return f

    times = np.arange(n_frames, dtype=np.float64) / fps
    noise = np.zeros((n_frames, DIM_Z), np.float32)
    trunc = np.zeros(n_frames, np.float32)
    cv_idx: list[np.ndarray] = []
    cv_val: list[np.ndarray] = []
    feats, plist, beats = [], [], []
    e = 0
    dt = 1.0 / fps
    drift_after = InferenceThread.DRIFT_AFTER_S
    for k in range(n_frames):
        t = times[k]
        while e < len(events) and ev_t[e] <= t + 1e-9:
            kind, _, payload = events[e]
            if kind == "p":
                params.update(payload[0])
            elif kind == "c":
                palette = (tuple(payload[0]), tuple(payload[1]), float(payload[2]))
            elif kind == "b":
                beat_count = int(payload[0])
            e += 1
        j = int(np.searchsorted(hop_t, t + 1e-9, side="right")) - 1
        f = hop(j) if j >= 0 else None
        # as InferenceThread._sync_controls
        mapper.apply_params(params)
        if palette[1] or palette[0]:
            try:
                mapper.set_palette(list(palette[0]), list(palette[1]), palette[2])
            except VJError:
                pass
        if f is None or t - hop_t[j] > drift_after:  # as InferenceThread.step: no new hop for a while → drift
            base = f if f is not None else Features()
            level = 0.35 + 0.25 * math.sin(2.0 * math.pi * t / InferenceThread.DRIFT_PERIOD_S)
            fm = replace(base, level=level, onset=False, beat=False)
        else:
            fm = f
        lat = mapper.step(fm, dt)
        noise[k] = lat.noise
        trunc[k] = lat.truncation
        nz = np.flatnonzero(lat.class_vector)
        cv_idx.append(nz)
        cv_val.append(lat.class_vector[nz])
        feats.append(f)
        plist.append(dict(params))
        beats.append(beat_count)
    fx = fx_timeline(times, feats, plist, beats if hdr.get("beat_source") == "clock" else None)
    cols = np.unique(np.concatenate(cv_idx)) if cv_idx else np.zeros(0, np.int64)
    vals = np.zeros((n_frames, len(cols)), np.float32)
    for k, (nz, v) in enumerate(zip(cv_idx, cv_val)):
        vals[k, np.searchsorted(cols, nz)] = v
    return Timeline(times, noise, trunc, cols.astype(np.int64), vals, fx, float(fps),
                    plist if keep_params else None)


def log_audio(show_log: ShowLog) -> tuple[np.ndarray, int] | None:
    """The logged input audio on the audio clock: float32 [samples] mono and its rate, or None if not logged.
    Hops the analysis skipped (it fell behind) are silence."""
    if show_log.audio_pcm is None or not len(show_log.audio_pcm):
        return None
    idx = show_log.audio_hop_index
    hop = show_log.audio_pcm.shape[1]
    n = int(idx.max()) + 1
    out = np.zeros(n * hop, np.float32)
    for i, pcm in zip(idx, show_log.audio_pcm):
        if i >= 0:
            out[i * hop:(i + 1) * hop] = pcm.astype(np.float32) / 32767.0
    return out, int(show_log.audio_rate)


def soundtrack(show_log: ShowLog, audio_path: str | None, start_s: float, duration_s: float):
    """The excerpt's audio: ``--audio FILE``, else the log's audio, else the show's input file (``file:PATH``
    or the demo), tiled if the show looped it; silence (one warning) when there is none.

    Returns:
        (float32 [samples] or [samples, channels], sample_rate [Hz]).

    Raises:
        VJError: ``audio_path`` cannot be read.
    """
    from vj.audio.decode import load_audio

    got = None
    looped = False
    if audio_path:
        got = load_audio(audio_path, mono=False)
    else:
        got = log_audio(show_log)
        if got is None:
            spec = str(show_log.header.get("input", ""))
            path = "demo" if spec == "demo" else spec[5:] if spec.startswith("file:") else None
            if path is not None and (path == "demo" or os.path.isfile(path)):
                got = load_audio(path, mono=False)
                looped = bool(show_log.header.get("loop"))
            else:
                log.warning("replay: no audio in the log and the show's input (%s) is not a file here: the video "
                            "has a silent soundtrack (pass --audio FILE)", spec or "?")
    if got is None:
        sr = int(show_log.header.get("sample_rate") or 48000)
        return np.zeros(int(round(duration_s * sr)), np.float32), sr
    y, sr = got
    a = int(round(start_s * sr))
    b = a + int(round(duration_s * sr))
    if looped and len(y) and b > len(y):  # the show looped its file (the demo always loops)
        y = np.concatenate([y] * int(math.ceil(b / len(y))), axis=0)
    seg = y[a:b]
    if len(seg) < b - a:  # pad to the video's length
        pad = np.zeros((b - a - len(seg),) + seg.shape[1:], np.float32)
        seg = np.concatenate([seg, pad], axis=0)
    return np.ascontiguousarray(seg, np.float32), int(sr)


def _to_size(frames_rgba: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [N, H, W, 4] → uint8 [N, height, width, 3], bicubic (antialiased) in torch (the --no-fx path)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(frames_rgba[..., :3]).permute(0, 3, 1, 2).float()
    if (x.shape[-1], x.shape[-2]) != tuple(size):
        x = F.interpolate(x, size=(size[1], size[0]), mode="bicubic", align_corners=False, antialias=True)
    return np.ascontiguousarray(x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())


def make_farm(opts: ReplayOptions, model: str, weights: str | None, seed: int):
    """The farm for ``opts``: :class:`vj.farm.RayFarm` with ``--ray``, else :class:`vj.farm.LocalFarm`."""
    from vj.farm import GeneratorSpec, LocalFarm, RayFarm

    spec = GeneratorSpec(model=model, weights=weights, seed=seed, device=opts.device, precision=opts.precision,
                         batch_size=opts.batch_size)
    if opts.ray is not None:
        return RayFarm(spec, address=opts.ray or None, workers=opts.ray_workers)
    return LocalFarm(spec)


def render_replay(opts: ReplayOptions) -> dict:
    """Render a show log to a video (see the module docstring).

    Returns:
        Figures of the render: ``frames``, ``seconds`` (wall), ``generate_fps``, ``farm``, ``truncated``, ...

    Raises:
        VJError: unreadable or corrupt log, bad options, missing weights, unwritable output, EGL missing (FX).
    """
    from vj.render import Progress, check_output_path, encoding

    output = check_output_path(opts.output)
    if not (math.isfinite(opts.fps) and 1.0 <= opts.fps <= 240.0):
        raise VJError(f"--fps must be within 1..240 (got {opts.fps})")
    show_log = read_show_log(opts.log)
    hdr = show_log.header
    end_log = log_end_s(show_log)
    end_s = end_log if opts.end_s is None else min(float(opts.end_s), end_log)
    if end_s <= opts.start_s:
        raise VJError(f"nothing to render: the log's audio clock runs to {end_log:.2f} s, the excerpt is "
                      f"{opts.start_s:g}..{end_s:g} s")
    first = int(round(opts.start_s * opts.fps))
    last = max(int(round(end_s * opts.fps)), first + 1)
    model = opts.model or hdr.get("model", "cppn")
    weights = opts.weights
    if weights is None and model == hdr.get("model") and hdr.get("weights_path") and \
            os.path.exists(hdr["weights_path"]):
        weights = hdr["weights_path"]
    if model == hdr.get("model") and weights and hdr.get("weights_sha256"):
        from vj.showlog import sha256_file

        if os.path.isfile(weights) and sha256_file(weights) != hdr["weights_sha256"]:
            log.warning("replay: these %s weights are not the ones the show used (SHA-256 differs)", model)
    t0 = time.perf_counter()
    bs = opts.farm.spec.batch_size if opts.farm is not None else opts.batch_size
    timeline = build_timeline(show_log, opts.fps, int(math.ceil(last / bs)) * bs)
    t_timeline = time.perf_counter() - t0
    log.info("replay: %s, %d frames (%.2f..%.2f s of the show's %.2f s) at %g fps; timeline in %.2f s",
             opts.log, last - first, first / opts.fps, last / opts.fps, end_log, opts.fps, t_timeline)
    audio, sr = soundtrack(show_log, opts.audio, first / opts.fps, (last - first) / opts.fps)

    farm = opts.farm or make_farm(opts, model, weights, int(hdr.get("seed", 0)))
    fx_pass = None
    bar = Progress(opts.progress, last - first, "replaying")
    t1 = time.perf_counter()
    t_gen_wait = 0.0
    try:
        res = int(farm.resolution)
        if opts.fx:
            from vj.display.offline import OfflineFx

            fx_pass = OfflineFx(opts.resolution, (res, res))
        with encoding(output, opts.fps, opts.resolution, audio, sr, opts.crf) as muxer:
            k = first
            stream = farm.frames(timeline.chunks(first, last, opts.chunk_frames, bs), progress=bar.advance)
            while True:
                tw = time.perf_counter()
                imgs = next(stream, None)
                t_gen_wait += time.perf_counter() - tw
                if imgs is None:
                    break
                if fx_pass is not None:
                    out = np.stack([fx_pass.frame(img, timeline.fx[k + i]) for i, img in enumerate(imgs)])
                else:
                    out = _to_size(imgs, opts.resolution)
                muxer.write_frames(out)
                k += len(imgs)
            if k != last:
                raise VJError(f"replay produced {k - first} of {last - first} frames")
    finally:
        bar.close()
        if fx_pass is not None:
            fx_pass.close()
        if opts.farm is None:
            farm.close()
    wall = time.perf_counter() - t1
    log.info("wrote %s (%d frames, %.2f s, %dx%d, %s, %.1f frames/s)", output, last - first,
             (last - first) / opts.fps, *opts.resolution, farm.kind, (last - first) / max(wall, 1e-9))
    return {"frames": last - first, "first": first, "seconds": wall, "fps": (last - first) / max(wall, 1e-9),
            "timeline_s": t_timeline, "wait_s": t_gen_wait, "farm": farm.kind, "truncated": show_log.truncated,
            "model": getattr(farm, "model_name", model), "audio_samples": int(len(audio)), "sample_rate": sr}
