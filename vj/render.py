"""Offline render: an audio file → an H.264/AAC music video (the deep music visualizer's job).

The same analysis (:class:`vj.audio.analysis.StreamingAnalyzer`, hop by hop) and mapping (:mod:`vj.mapping`) as
live, just not in real time. Video frame ``k`` shows time ``k / fps``: it is generated from the newest hop that
ended at or before that time (causal), or, with ``lookahead``, from the mapping smoothed with future audio.

The video is encoded by :class:`vj.engine.mp4.Mp4Writer` (libx264, yuv420p, +faststart) and the audio (the same
excerpt, AAC) is muxed in, starting at the same instant as frame 0. The file is written under a temporary name in the output's directory and
renamed at the end, so a failed or interrupted render leaves no broken output.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vj.audio.features import Features
from vj.clock import now_s
from vj.errors import VJError
from vj.mapping import LatentTrack, MappingSettings, map_offline

log = logging.getLogger("vj")


@dataclass
class RenderOptions:
    """What :func:`render` needs beyond the mapping settings.

    Attributes:
        audio: input path or ``"demo"``.
        output: output path (.mp4, .mov or .mkv).
        fps: video frame rate [frames/s].
        resolution: output (width, height) [pixels]; None = the generator's native size.
        start_s, duration_s: excerpt of the input [s]; duration None = to the end.
        batch_size: frames generated per generator call.
        seed: seeds class choice, noise and (for the CPPN) the network.
        device: torch device for the generator ("auto" = CUDA when available, "cpu", "cuda", "cuda:1", ...).
        model: generator name for :func:`vj.models.load_generator` ("auto", "cppn", "biggan-deep-128", ...).
        weights: BigGAN weights path (None = cache or download).
        lookahead: smooth the mapping with future audio as the original did.
        save_latents, load_latents: write the latent trajectory to / read it from an ``.npz``.
        hop_size: analysis hop [samples].
        crf: x264 constant rate factor (lower = better quality, bigger file).
        precision: BigGAN arithmetic, "auto" (default: fp16 on GPUs with compute capability >= 7.0, bf16 on CPUs
            with native bf16, else fp32), "fp16", "bf16" or "fp32" (batch-norm maths stay fp32; see
            :mod:`vj.models.fast` and :func:`vj.engine.gpu.choose_precision`). The CPPN always runs in fp32.
        progress: show a progress bar.
        fx: apply the live show's effects offline (:mod:`vj.display.offline`, headless EGL); False = the bare
            generator, resized bicubically.
        sets: ``(name, value)`` registry parameters for the effects pass (else the registry's defaults).
    """

    audio: str
    output: Path
    fps: float = 30.0
    resolution: tuple[int, int] | None = (512, 512)
    start_s: float = 0.0
    duration_s: float | None = None
    batch_size: int = 4
    seed: int = 0
    device: str = "auto"
    model: str = "auto"
    weights: str | None = None
    lookahead: bool = False
    save_latents: Path | None = None
    load_latents: Path | None = None
    hop_size: int = 512
    crf: int = 18
    precision: str = "auto"
    progress: bool = True
    settings: MappingSettings = field(default_factory=MappingSettings)
    fx: bool = True
    sets: list = field(default_factory=list)


def frame_features(hops: list[Features], n_frames: int, fps: float, sample_rate: int, hop_size: int) -> list[Features]:
    """The newest hop that ended at or before each video frame's time (causal sampling).

    Args:
        hops: one :class:`Features` per hop, in order.
        n_frames: number of video frames.
        fps: video frame rate [frames/s].
        sample_rate: [Hz]; hop_size: [samples].

    Returns:
        ``n_frames`` Features; frames before the first hop ends get an empty (silent) record.
    """
    empty = Features()
    out = []
    for k in range(n_frames):
        i = int(math.floor(k / fps * sample_rate / hop_size + 1e-9)) - 1
        out.append(hops[min(i, len(hops) - 1)] if i >= 0 and hops else empty)
    return out


def check_output_path(path: Path) -> Path:
    """Validate the output path before any work is done.

    Raises:
        VJError: unsupported extension, missing or unwritable directory, or the path is a directory.
    """
    path = Path(path).expanduser()
    if path.suffix.lower() not in (".mp4", ".mov", ".mkv", ".m4v"):
        raise VJError(f"output must end in .mp4, .mov, .m4v or .mkv (got {path.name!r})")
    if path.is_dir():
        raise VJError(f"output {path} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise VJError(f"output directory does not exist: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise VJError(f"output directory is not writable: {parent}")
    if path.exists() and not os.access(path, os.W_OK):
        raise VJError(f"output file is not writable: {path}")
    return path


class Progress:
    """A rich progress bar with ETA (or nothing when disabled)."""

    def __init__(self, enabled: bool, total: int, label: str):
        self._bar = None
        if enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[fps]:.1f} fps"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(label, total=total, fps=0.0)
        self._t0 = now_s()
        self._done = 0

    def advance(self, n: int) -> None:
        self._done += n
        if self._bar is not None:
            fps = self._done / max(now_s() - self._t0, 1e-9)
            self._bar.update(self._task, advance=n, fps=fps)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _to_uint8_hwc(images, size: tuple[int, int]) -> np.ndarray:
    """[N,3,H,W] float in [-1,1] (torch) → uint8 [N,height,width,3] (numpy), resized to ``size`` = (width, height).

    The resize is bicubic (antialiased when shrinking) in torch rather than in swscale: FFmpeg 8's scaler was seen
    to give run-to-run different pixels, which would break "same seed → identical frames".
    """
    import torch.nn.functional as F

    from vj.engine.gpu import to_rgba_uint8

    x = images.float()
    if (x.shape[-1], x.shape[-2]) != tuple(size):
        x = F.interpolate(x, size=(size[1], size[0]), mode="bicubic", align_corners=False, antialias=True)
    return np.ascontiguousarray(to_rgba_uint8(x)[..., :3].cpu().numpy())


class _Muxer:
    """Feeds a :class:`vj.engine.mp4.Mp4Writer`: video frames in order, the song's audio interleaved up to the
    current video time (1024-sample chunks)."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], audio: np.ndarray, sample_rate: int, crf: int):
        from vj.engine.mp4 import AAC_RATES, Mp4Writer

        # audio: planar float, mono or stereo
        if audio.ndim == 1:
            audio = audio[:, None]
        if audio.shape[1] > 2:
            audio = audio[:, :2]
        if sample_rate not in AAC_RATES:
            from vj.audio.decode import resample

            audio, sample_rate = resample(audio, sample_rate, 48000), 48000
        self.audio_data = np.ascontiguousarray(np.clip(audio, -1.0, 1.0).T, dtype=np.float32)
        self.sample_rate = sample_rate
        # x264 was seen to give run-to-run different bitstreams for identical frames when it ran in the process
        # that runs torch, and with more than one thread; in its own process and one thread it is reproducible
        # (see EncoderProcess), which "same seed + input -> identical frames" needs.
        self.writer = Mp4Writer(path, size, fps, crf=crf, audio_rate=sample_rate,
                                audio_channels=self.audio_data.shape[0], faststart=True, threads=1)
        self._audio_pos = 0
        self.fps = fps

    def _write_audio_until(self, t_s: float | None) -> None:
        end = self.audio_data.shape[1] if t_s is None else min(self.audio_data.shape[1], int(t_s * self.sample_rate))
        chunk = 1024
        while self._audio_pos < end:
            n = min(chunk, end - self._audio_pos) if t_s is None else chunk
            if self._audio_pos + n > end:
                break
            self.writer.write_audio(self.audio_data[:, self._audio_pos : self._audio_pos + n], self._audio_pos)
            self._audio_pos += n

    def write_frames(self, frames: np.ndarray) -> None:
        """Encode uint8 [N,H,W,3] RGB frames of the output size."""
        for img in frames:
            self.writer.write_video(img)
        self._write_audio_until(self.writer.frames_written / self.fps)

    def close(self) -> None:
        self._write_audio_until(None)
        self.writer.close()

    def abort(self) -> None:
        self.writer.abort()


def _encoder_main(conn, path, fps, size, audio, sample_rate, crf) -> None:
    """Body of the encoder process: receive frame batches, mux them, report "ok" or the error."""
    muxer = None
    try:
        muxer = _Muxer(Path(path), fps, size, audio, sample_rate, crf)
        conn.send("ready")
        while True:
            msg = conn.recv()
            if msg is None:
                break
            shape, data = msg
            muxer.write_frames(np.frombuffer(data, np.uint8).reshape(shape))
        muxer.close()
        muxer = None
        conn.send("ok")
    except BaseException as exc:  # reported to the parent, which raises it as a VJError
        if muxer is not None:
            muxer.abort()
        try:
            conn.send(f"{type(exc).__name__}: {exc}")
        except (OSError, ValueError):
            pass


@contextmanager
def encoding(output: Path, fps: float, size: tuple[int, int], audio: np.ndarray, sample_rate: int, crf: int):
    """An :class:`EncoderProcess` writing to a hidden temporary file beside ``output``; renamed to ``output`` when
    the block ends normally, so an interrupted or failed render leaves no broken file: on any exception the encoder
    is aborted and the temporary file removed, and the exception goes on.

    Yields:
        the :class:`EncoderProcess` (``write_frames``).

    Raises:
        VJError: the encoder failed (and whatever the block raised).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=".part" + output.suffix, dir=output.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    muxer = None
    try:
        muxer = EncoderProcess(tmp, fps, size, audio, sample_rate, crf)
        yield muxer
        muxer.close()
        muxer = None
        tmp.replace(output)
    except BaseException:
        if muxer is not None:
            muxer.abort()
        tmp.unlink(missing_ok=True)
        raise


class EncoderProcess:
    """Runs :class:`_Muxer` in a spawned process.

    Encoding apart from torch makes the output reproducible (see :class:`_Muxer`) and overlaps encoding with
    generation on another core. Same interface as :class:`_Muxer`: ``write_frames``, ``close``, ``abort``.
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int], audio: np.ndarray, sample_rate: int, crf: int):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_encoder_main, args=(child, str(path), fps, size, audio, sample_rate, crf),
                                 name="vj-encoder", daemon=True)
        self._proc.start()
        child.close()
        self._expect("ready")

    def _expect(self, what: str) -> None:
        try:
            msg = self._conn.recv()
        except EOFError:
            msg = f"the encoder process ended unexpectedly (exit code {self._proc.exitcode})"
        if msg != what:
            self.abort()
            raise VJError(f"video encoding failed: {msg}")

    def write_frames(self, frames: np.ndarray) -> None:
        frames = np.ascontiguousarray(frames, np.uint8)
        try:
            self._conn.send((frames.shape, frames.tobytes()))
        except (BrokenPipeError, EOFError, OSError):
            self._expect("(never)")

    def close(self) -> None:
        self._conn.send(None)
        self._expect("ok")
        self._proc.join(timeout=30)

    def abort(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(timeout=10)
        self._conn.close()


def render(opts: RenderOptions) -> Path:
    """Render ``opts.audio`` to ``opts.output``.

    Returns:
        The output path.

    Raises:
        VJError: bad input audio, unwritable output, invalid settings, missing weights, bad latents file.
    """
    from vj.audio.decode import load_audio

    from vj.models import resolve_device

    output = check_output_path(opts.output)
    fx_params = _fx_params(opts.sets) if opts.fx else None
    device = resolve_device(opts.device)
    settings = opts.settings
    settings.fps = opts.fps
    settings.validate()
    if opts.save_latents is not None:
        check_dir = Path(opts.save_latents).expanduser().resolve().parent
        if not check_dir.is_dir() or not os.access(check_dir, os.W_OK):
            raise VJError(f"cannot write latents: directory missing or not writable: {check_dir}")

    audio, sr = load_audio(opts.audio, mono=False, start_s=opts.start_s, duration_s=opts.duration_s)
    duration_s = audio.shape[0] / sr
    n_frames = max(1, int(round(duration_s * opts.fps)))
    frames = None

    if opts.load_latents is not None:
        track = LatentTrack.load(opts.load_latents)
        if abs(track.fps - opts.fps) > 1e-6:
            raise VJError(f"latents were made for {track.fps:g} fps; render with --fps {track.fps:g}")
        if len(track) < n_frames:
            log.info("latents cover %d of %d frames; the video is cut to them", len(track), n_frames)
            n_frames = len(track)
    else:
        from vj.audio.analysis import analyze_signal

        t0 = now_s()
        hops = analyze_signal(audio.mean(axis=1) if audio.ndim == 2 else audio, sr, opts.hop_size)
        log.debug("analysed %.1f s of audio in %.2f s", duration_s, now_s() - t0)
        frames = frame_features(hops, n_frames, opts.fps, sr, opts.hop_size)
        track = map_offline(frames, settings, seed=opts.seed, lookahead=opts.lookahead)
    if frames is None and fx_params is not None:  # loaded latents: the effects still follow the music
        from vj.audio.analysis import analyze_signal

        hops = analyze_signal(audio.mean(axis=1) if audio.ndim == 2 else audio, sr, opts.hop_size)
        frames = frame_features(hops, n_frames, opts.fps, sr, opts.hop_size)
    if opts.save_latents is not None:
        track.save(opts.save_latents)

    from vj.models.imagenet import class_names

    names = class_names()
    log.info("classes: %s", ", ".join(f"{names[c]} ({c})" for c in track.classes))

    import torch

    from vj.models import load_generator

    gen = load_generator(opts.model, weights=opts.weights, device=device, seed=opts.seed)
    gen = prepare_generator(gen, device, opts.precision, opts.device)
    if opts.model.lower() != "auto":  # "auto" says itself which generator it chose, and why
        log.info("generator: %s on %s", getattr(gen, "model_name", opts.model), device)
    size = opts.resolution or (gen.resolution, gen.resolution)

    bar = Progress(opts.progress, n_frames, "rendering")
    fx_pass = None
    try:
        if fx_params is not None:  # the show's effects, from the same features and parameters as live
            from vj.display.offline import OfflineFx, fx_timeline

            fx_frames = fx_timeline(np.arange(n_frames) / opts.fps, frames or [None] * n_frames,
                                    [fx_params] * n_frames)
            fx_pass = OfflineFx(size, (gen.resolution, gen.resolution))
        with encoding(output, opts.fps, size, audio[: int(round(n_frames / opts.fps * sr))], sr,
                      opts.crf) as muxer, torch.inference_mode():
            for first in range(0, n_frames, opts.batch_size):
                last = min(first + opts.batch_size, n_frames)
                noise = torch.from_numpy(track.noise[first:last]).to(device)
                cv = torch.from_numpy(track.class_vectors[first:last]).to(device)
                trunc = torch.from_numpy(track.truncation[first:last]).to(device)
                images = gen(noise, cv, trunc)
                if not torch.isfinite(images).all():
                    raise VJError("the generator produced NaN/inf pixels (corrupt weights?)")
                if fx_pass is not None:
                    from vj.display.offline import rgba_from_generator

                    rgba = rgba_from_generator(images)
                    muxer.write_frames(np.stack([fx_pass.frame(img, fx_frames[first + i])
                                                 for i, img in enumerate(rgba)]))
                else:
                    muxer.write_frames(_to_uint8_hwc(images, size))
                bar.advance(last - first)
    finally:
        bar.close()
        if fx_pass is not None:
            fx_pass.close()
    log.info("wrote %s (%d frames, %.2f s, %dx%d)", output, n_frames, n_frames / opts.fps, *size)
    return output


def _fx_params(sets) -> dict:
    """Registry values for the effects pass: the defaults with ``sets`` applied. Raises VJError on a bad name."""
    from vj.control.params import ParamRegistry

    reg = ParamRegistry()
    for name, value in sets:
        if name not in reg:
            raise VJError(f"--set: unknown parameter {name!r}")
        reg.set_now(name, value)
    return reg.snapshot()


def prepare_generator(gen, device, precision: str, device_arg: str = "auto"):
    """The fastest honest path for a render, with one log line naming device, precision and why.

    :func:`vj.models.fast.prepare_cpu` on the CPU (threads, NHWC, CPU attention), :func:`vj.models.fast.to_precision`
    on CUDA for a lower precision; the precision follows :func:`vj.engine.gpu.choose_precision` (the CPPN: fp32).
    """
    import torch

    from vj.engine.gpu import choose_precision
    from vj.models import fast, is_biggan

    dtype, why = choose_precision(precision, device, gen)
    if str(device_arg) == "auto":
        dev_why = "auto: CUDA is available" if device.type == "cuda" else "auto: no CUDA device"
    else:
        dev_why = f"--device {device_arg}"
    log.info("generator: %s, %s, batched eager — %s; %s", device, str(dtype).replace("torch.", ""), dev_why, why)
    if device.type == "cpu":
        return fast.prepare_cpu(gen, dtype=dtype)
    if is_biggan(gen) and dtype != torch.float32:
        return fast.to_precision(gen, dtype)
    return gen
