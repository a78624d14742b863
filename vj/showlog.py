"""The show log: everything the generator's input depended on during a ``vj live`` show, for an aftermovie.

``vj live --show-log FILE`` appends, while the show runs, the analysis features of every hop (and, with
``--show-log-audio``, the input audio itself), every parameter change as the registry applied it (OSC, MIDI, keys,
``--set``/``--at``, preset crossfades, tempo taps all end there), the beat clock's beats, the seed, the model and its
weights' identity and vj's version. ``vj render --replay FILE`` (:mod:`vj.replay`) renders it again; :mod:`vj.showlog_reader` reads it.

File format ``vj-showlog-1`` (little-endian)::

    magic  b"VJSHOWLG" + uint16 version (1)
    chunk* b"CHNK" + uint32 payload length + uint32 CRC-32 of the payload + payload
           payload = zstd(msgpack(dict)), dict["kind"] in {"header", "meta", "batch", "end"}

* ``header`` (first chunk, written before the show starts): format, vj version, UTC start, model, seed, classes,
  input, the full parameter snapshot and palette at show start, whether audio is logged.
* ``meta``: facts found after start (the weights' SHA-256, computed on the writer thread).
* ``batch`` (about once a second): ``hops`` — one column per :class:`~vj.audio.features.Features` field as raw
  little-endian bytes (``chroma`` float32 [n, 12]) plus ``show_s`` (capture instant on the show clock);
  ``events`` — ``["p", show_s, {name: value}]`` parameter changes as applied, ``["c", show_s, source, target,
  mix]`` palette (crossfade) changes, ``["b", show_s, count]`` beat-clock beats; ``audio`` (optional) — int16 PCM
  hops with their hop indices.
* ``end``: why the log ended and its health figures (dropped records, writer CPU time).

The show clock is ``time.perf_counter() - t0`` with ``t0`` the instant ``vj live`` started its show (the clock
``--at`` uses). A chunk is one ``write`` followed by a flush, so a kill loses at most the batch being collected;
a torn tail (a partial chunk, or a bad CRC with nothing valid after it) is *truncation* and ignored with a
warning; a bad chunk followed by a valid one, a bad magic or a missing header is *corruption*
(:class:`ShowLogError`).

Libraries: msgpack (serialisation) and zstandard (compression), both well kept; the framing is ours, 12 bytes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import queue
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from vj.audio.features import Features
from vj.errors import VJError
from vj.engine.slots import LatestSlot

log = logging.getLogger("vj")

MAGIC = b"VJSHOWLG"
VERSION = 1
FORMAT = "vj-showlog-1"
CHUNK_HEADER = struct.Struct("<4sII")
CHUNK_TAG = b"CHNK"
#: chunk header: tag, payload length, CRC-32 of the payload
#: largest payload a writer produces is far below this; anything bigger is a corrupt length field
MAX_CHUNK_BYTES = 256 * 1024 * 1024

#: Features fields stored per hop, with their column dtype (chroma is float32 [n, 12])
HOP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("hop_index", "<i8"), ("time_s", "<f8"), ("show_s", "<f8"), ("rms", "<f4"), ("loudness_db", "<f4"),
    ("level", "<f4"), ("bass", "<f4"), ("mid", "<f4"), ("high", "<f4"), ("onset", "u1"),
    ("onset_strength", "<f4"), ("onset_count", "<i8"), ("beat", "u1"), ("beat_count", "<i8"), ("bpm", "<f4"),
    ("beat_phase", "<f4"), ("pitch_midi", "<f4"), ("pitch_confidence", "<f4"), ("silent", "u1"), ("gain", "<f4"),
    ("meter", "u1"), ("beat_in_bar", "<i2"), ("downbeat", "u1"), ("downbeat_count", "<i8"), ("bar_phase", "<f4"),
    ("bar_count", "<i8"), ("phrase_pos", "<f4"), ("event_confidence", "<f4"), ("event_count", "<i8"),
)


class ShowLogError(VJError):
    """A show log that cannot be read: not a show log, or corrupt (a truncated tail is not an error)."""


def _pack(obj: dict) -> bytes:
    import msgpack
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(msgpack.packb(obj, use_bin_type=True))


def _chunk(obj: dict) -> bytes:
    payload = _pack(obj)
    return CHUNK_HEADER.pack(CHUNK_TAG, len(payload), zlib.crc32(payload) & 0xFFFFFFFF) + payload


def weights_identity(model_name: str, weights: str | os.PathLike | None = None) -> dict:
    """Where the generator's weights came from, without reading them (see :func:`sha256_file` for the hash).

    Args:
        model_name: the generator's ``model_name`` ("cppn", "biggan-deep-128", ...).
        weights: the ``--weights`` path, or None (the Hugging Face cache).

    Returns:
        ``{"model": name, "weights_path": str | None}``; the CPPN has no weights file (its seed makes it).
    """
    if not model_name.startswith("biggan"):
        return {"model": model_name, "weights_path": None}
    try:
        from vj.models import weights as W

        loc = W.find_local(model_name, weights)
        return {"model": model_name, "weights_path": str(loc.weights_path) if loc else None}
    except Exception:  # noqa: BLE001 — the identity is a record, not a reason to stop the show
        return {"model": model_name, "weights_path": None}


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """SHA-256 of a file as hex (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(block)
            if not b:
                return h.hexdigest()
            h.update(b)


class ShowLogWriter:
    """Appends a show log from a writer thread fed by bounded, non-blocking hand-offs.

    The producers (:meth:`hop` on the analysis thread, :meth:`audio` likewise, :meth:`params` and :meth:`beat` on
    the main thread) only do a ``put_nowait`` into a bounded queue; when it is full the record is dropped and
    counted (:attr:`dropped`), never waited for. The writer thread batches records and writes one chunk about every
    ``flush_every_s``. A write that fails (disk full, the disk gone) stops the log with one warning line; the show
    goes on and the producers keep returning at once.

    Args:
        path: the log file (created or truncated).
        header: JSON-like dict for the header chunk (see the module docstring).
        t0_s: the show clock's zero on ``time.perf_counter()`` [s].
        flush_every_s: batch period [s].
        queue_size: records the hand-off holds before dropping.
        weights_path: a weights file to hash on the writer thread (its SHA-256 goes into a ``meta`` chunk).

    Raises:
        VJError: the file cannot be created or its header cannot be written.
    """

    def __init__(self, path: str | os.PathLike, header: dict, t0_s: float, flush_every_s: float = 1.0,
                 queue_size: int = 16384, weights_path: str | None = None):
        self.path = Path(path)
        self.t0_s = float(t0_s)
        self.flush_every_s = float(flush_every_s)
        self._q: queue.Queue = queue.Queue(maxsize=int(queue_size))
        self._weights_path = weights_path
        self.dropped = 0  #: records dropped because the hand-off was full
        self.stopped = False  #: True once a write failed (the log ends there)
        self.error: str | None = None
        self.bytes_written = 0
        self.chunks = 0
        self.hops = self.events = self.audio_hops = 0
        self.cpu_s = 0.0  #: CPU time of the writer thread [s]
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._t_open = time.perf_counter()
        hdr = {"kind": "header", "format": FORMAT, **header}
        try:
            self._fh = open(self.path, "wb")
            self._write(MAGIC + struct.pack("<H", VERSION) + _chunk(hdr), sync=True)
        except OSError as exc:
            raise VJError(f"--show-log {self.path}: {exc.strerror or exc}") from None

    # -- producers (any thread; never block) -------------------------------------------------------------------
    def _put(self, item) -> None:
        if self.stopped:
            return
        try:
            self._q.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def hop(self, f: Features) -> None:
        """Hand over one hop's features (the record is kept by reference: do not mutate it afterwards)."""
        self._put(("h", f))

    def audio(self, hop: np.ndarray, sample_rate: int) -> None:
        """Hand over one hop of input audio (float32 [hop_size], kept by reference: do not mutate it)."""
        self._put(("a", hop, int(sample_rate)))

    def params(self, changed: dict, palette=None) -> None:
        """Hand over parameter changes as applied (``{name: value}``) and, if it changed, the palette."""
        self._put(("p", time.perf_counter(), dict(changed), palette))

    def beat(self, count: int) -> None:
        """Hand over a beat of the show's beat clock (its cumulative count)."""
        self._put(("b", time.perf_counter(), int(count)))

    # -- writer thread ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name="vj-showlog", daemon=True)
        self._thread.start()

    def _write(self, data: bytes, sync: bool = False) -> None:
        self._fh.write(data)
        self._fh.flush()
        if sync:
            os.fsync(self._fh.fileno())
        self.bytes_written += len(data)

    def _fail(self, exc: BaseException) -> None:
        self.stopped = True
        self.error = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        log.warning("show log %s stopped (%s); the show goes on, the log is readable up to here",
                    self.path, self.error)
        try:
            self._fh.close()
        except OSError:
            pass

    def _run(self) -> None:
        c0 = time.thread_time()
        if self._weights_path:
            try:
                self._emit({"kind": "meta", "weights_sha256": sha256_file(self._weights_path)})
            except OSError as exc:
                log.warning("show log: cannot hash the weights (%s)", exc)
        hops: list[Features] = []
        hop_show: list[float] = []
        events: list = []
        audio: list[np.ndarray] = []
        audio_idx: list[int] = []
        audio_rate = 0
        last_hop_index = -1
        next_flush = time.perf_counter() + self.flush_every_s
        while True:
            timeout = max(next_flush - time.perf_counter(), 0.0)
            try:
                item = self._q.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is not None and not self.stopped:
                kind = item[0]
                if kind == "h":
                    f = item[1]
                    hops.append(f)
                    hop_show.append(f.capture_time_s - self.t0_s)
                    last_hop_index = f.hop_index
                elif kind == "a":
                    audio.append(np.clip(np.asarray(item[1], np.float32) * 32767.0, -32767, 32767).astype("<i2"))
                    audio_idx.append(last_hop_index)
                    audio_rate = item[2]
                elif kind == "p":
                    _, t, changed, palette = item
                    if changed:
                        events.append(["p", t - self.t0_s, {k: float(v) for k, v in changed.items()}])
                    if palette is not None:
                        events.append(["c", t - self.t0_s, list(palette.source), list(palette.target),
                                       float(palette.mix)])
                else:
                    events.append(["b", item[1] - self.t0_s, item[2]])
            now = time.perf_counter()
            closing = self._closing.is_set() and self._q.empty()
            if now >= next_flush or closing:
                next_flush = now + self.flush_every_s
                if (hops or events or audio) and not self.stopped:
                    batch = {"kind": "batch", "n_hops": len(hops), "hops": _columns(hops, hop_show),
                             "events": events}
                    if audio:
                        batch["audio"] = {"rate": audio_rate, "hop_index": np.asarray(audio_idx, "<i8").tobytes(),
                                          "hop_size": int(audio[0].shape[0]),
                                          "pcm": np.concatenate(audio).tobytes()}
                    self._emit(batch)
                    self.hops += len(hops)
                    self.events += len(events)
                    self.audio_hops += len(audio)
                hops, hop_show, events, audio, audio_idx = [], [], [], [], []
                self.cpu_s = time.thread_time() - c0
            if closing:
                break

    def _emit(self, obj: dict) -> None:
        if self.stopped:
            return
        try:
            self._write(_chunk(obj))
            self.chunks += 1
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def close(self, reason: str = "end of show", timeout_s: float = 10.0) -> None:
        """Write what is queued and an ``end`` chunk, then close the file (call once, after the show)."""
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        wall = time.perf_counter() - self._t_open
        if not self.stopped:
            self._emit({"kind": "end", "reason": reason, "hops": self.hops, "events": self.events,
                        "dropped": self.dropped, "writer_cpu_s": self.cpu_s, "wall_s": wall})
            try:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()
            except OSError as exc:
                self._fail(exc)
        log.info("show log %s: %d hops, %d events, %.2f MB, writer %.3f s CPU in %.0f s (%.3f %% of a core), "
                 "%d dropped", self.path, self.hops, self.events, self.bytes_written / 1e6, self.cpu_s, wall,
                 100.0 * self.cpu_s / max(wall, 1e-9), self.dropped)


def _columns(hops: list[Features], show_s: list[float]) -> dict:
    out = {}
    for name, dt in HOP_COLUMNS:
        if name == "show_s":
            vals = show_s
        else:
            vals = [getattr(f, name) for f in hops]
        out[name] = np.asarray(vals, dtype=dt).tobytes()
    chroma = np.zeros((len(hops), 12), "<f4")
    for i, f in enumerate(hops):
        chroma[i] = f.chroma
    out["chroma"] = chroma.tobytes()
    return out


class LoggedFeatureSlot(LatestSlot):
    """A :class:`~vj.engine.slots.LatestSlot` of Features that also hands every put to a show log."""

    def __init__(self, writer: ShowLogWriter, initial=None):
        super().__init__(initial)
        self._writer = writer

    def put(self, value) -> int:
        self._writer.hop(value)
        return super().put(value)


class BeatTap:
    """Wraps the show's beat source (``fn() -> cumulative beat count``) and logs each change of its count."""

    def __init__(self, source: Callable[[], int], writer: ShowLogWriter):
        self._source = source
        self._writer = writer
        self._last: int | None = None

    def __call__(self) -> int:
        n = self._source()
        if n != self._last:
            self._last = n
            self._writer.beat(n)
        return n


def registry_hook(writer: ShowLogWriter) -> Callable:
    """The callback for :attr:`vj.control.params.ParamRegistry.on_applied`: ``fn(changed, palette_or_None)``."""
    return writer.params


def write_offline(path: str | os.PathLike, header: dict, hops: list[Features], events: list | None = None,
                  audio: np.ndarray | None = None, sample_rate: int = 0, hops_per_chunk: int = 86,
                  end: bool = True) -> int:
    """Write a show log of a show that was not played live (tests, benchmarks, scripted shows).

    Args:
        path: the log file.
        header: header fields (see the module docstring; ``format`` and ``kind`` are added).
        hops: one :class:`Features` per hop; their ``capture_time_s`` is taken as the show-clock time.
        events: ``[kind, show_s, *payload]`` rows (see the module docstring), in time order.
        audio: float32 [hops × hop_size] mono input audio to log, or None.
        sample_rate: its rate [Hz].
        hops_per_chunk: hops per batch chunk (86 ≈ one second at 44.1 kHz / 512).
        end: write the ``end`` chunk (False = a log whose show was cut off between chunks).

    Returns:
        Bytes written.
    """
    events = list(events or [])
    hop_size = len(audio) // max(len(hops), 1) if audio is not None else 0
    with open(path, "wb") as fh:
        fh.write(MAGIC + struct.pack("<H", VERSION))
        fh.write(_chunk({"kind": "header", "format": FORMAT, **header}))
        e = 0
        for a in range(0, max(len(hops), 1), hops_per_chunk):
            part = hops[a:a + hops_per_chunk]
            t_end = part[-1].capture_time_s if part and a + hops_per_chunk < len(hops) else math.inf
            ev = []
            while e < len(events) and events[e][1] <= t_end:
                ev.append(list(events[e]))
                e += 1
            batch = {"kind": "batch", "n_hops": len(part),
                     "hops": _columns(part, [f.capture_time_s for f in part]), "events": ev}
            if audio is not None and part:
                pcm = np.clip(audio[a * hop_size:(a + len(part)) * hop_size] * 32767.0, -32767, 32767)
                batch["audio"] = {"rate": int(sample_rate), "hop_size": hop_size,
                                  "hop_index": np.asarray([f.hop_index for f in part], "<i8").tobytes(),
                                  "pcm": pcm.astype("<i2").tobytes()}
            fh.write(_chunk(batch))
        if end:
            fh.write(_chunk({"kind": "end", "reason": "written offline", "hops": len(hops), "events": len(events),
                             "dropped": 0}))
        return fh.tell()
