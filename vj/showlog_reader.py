"""Reading a show log back (the format is described in :mod:`vj.showlog`, which writes it).

:func:`read_show_log` returns a :class:`ShowLog`: the header, every hop's features as columns, the events and the
optional audio. A torn tail (the show was killed mid-write) is truncation: everything before it is returned and one
warning says so. A bad chunk followed by a valid one, a bad magic or a missing header is corruption
(:class:`vj.showlog.ShowLogError`, one line).
"""

from __future__ import annotations

import logging
import math
import os
import struct
import zlib
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from vj.audio.features import Features
from vj.showlog import CHUNK_HEADER, CHUNK_TAG, HOP_COLUMNS, MAGIC, MAX_CHUNK_BYTES, VERSION, ShowLogError

log = logging.getLogger("vj")


@dataclass
class ShowLog:
    """A show log read back.

    Attributes:
        header: the header dict merged with every ``meta`` chunk.
        hops: column name → np.ndarray [n] (``chroma``: float32 [n, 12]); hop order as logged.
        events: ``(kind, show_s, payload)`` in log order; kind "p" (payload {name: value}), "c" (source, target,
            mix), "b" (beat count).
        audio_hop_index, audio_pcm, audio_rate: logged audio (int64 [m], int16 [m, hop_size], Hz) or None.
        end: the ``end`` chunk, or None when the show was killed (the log is truncated).
        truncated: a torn tail was found and ignored.
        path: where it was read from.
    """

    header: dict
    hops: dict
    events: list
    audio_hop_index: np.ndarray | None = None
    audio_pcm: np.ndarray | None = None
    audio_rate: int = 0
    end: dict | None = None
    truncated: bool = False
    path: str = ""
    n_hops: int = field(default=0)

    def features(self, i: int) -> Features:
        """Hop ``i`` as a :class:`Features` (``capture_time_s`` = its show-clock time)."""
        h = self.hops
        kw = {}
        for f in fields(Features):
            if f.name == "chroma":
                kw["chroma"] = h["chroma"][i].astype(np.float32)
            elif f.name == "capture_time_s":
                kw[f.name] = float(h["show_s"][i])
            elif f.name in h:
                v = h[f.name][i]
                kw[f.name] = bool(v) if f.name in ("onset", "beat", "silent") else (
                    int(v) if f.name.endswith(("_index", "_count")) else float(v))
        return Features(**kw)


def _scan_valid_chunk(data: memoryview, start: int) -> bool:
    """Is there a CRC-valid chunk anywhere after ``start``? (tells corruption from a torn tail)"""
    pos = bytes(data[start:]).find(CHUNK_TAG)
    while pos >= 0:
        at = start + pos
        if at + CHUNK_HEADER.size <= len(data):
            tag, n, crc = CHUNK_HEADER.unpack_from(data, at)
            end = at + CHUNK_HEADER.size + n
            if n <= MAX_CHUNK_BYTES and end <= len(data) and zlib.crc32(data[at + CHUNK_HEADER.size:end]) & 0xFFFFFFFF == crc:
                return True
        nxt = bytes(data[at + 1:]).find(CHUNK_TAG)
        pos = -1 if nxt < 0 else (at + 1 + nxt) - start
    return False


def read_show_log(path: str | os.PathLike) -> ShowLog:
    """Read a show log written by :class:`ShowLogWriter`.

    Returns:
        The :class:`ShowLog`; a torn tail (kill mid-write) is dropped and ``truncated`` set (one warning line).

    Raises:
        ShowLogError: missing file, not a vj show log, no header, or a corrupt chunk before the end.
    """
    import msgpack
    import zstandard

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ShowLogError(f"show log {path}: {exc.strerror or exc}") from None
    if len(raw) < len(MAGIC) + 2 or raw[: len(MAGIC)] != MAGIC:
        raise ShowLogError(f"{path} is not a vj show log (bad magic)")
    (version,) = struct.unpack_from("<H", raw, len(MAGIC))
    if version != VERSION:
        raise ShowLogError(f"{path}: show log version {version} is not supported (this vj reads {VERSION})")
    data = memoryview(raw)
    pos = len(MAGIC) + 2
    dctx = zstandard.ZstdDecompressor()
    header = None
    cols: dict[str, list[bytes]] = {}
    events: list = []
    a_idx, a_pcm = [], []
    a_rate = a_hop = 0
    end = None
    truncated = False
    n_chunk = 0
    while pos < len(data):
        bad = None
        if pos + CHUNK_HEADER.size > len(data):
            bad = "a partial chunk header"
        else:
            tag, n, crc = CHUNK_HEADER.unpack_from(data, pos)
            body_end = pos + CHUNK_HEADER.size + n
            if tag != CHUNK_TAG or n > MAX_CHUNK_BYTES:
                bad = "a bad chunk header"
            elif body_end > len(data):
                bad = "a partial chunk"
            elif zlib.crc32(data[pos + CHUNK_HEADER.size:body_end]) & 0xFFFFFFFF != crc:
                bad = "a chunk with a bad checksum"
        if bad is not None:
            if _scan_valid_chunk(data, pos + 1) or header is None:
                raise ShowLogError(f"{path} is corrupt: {bad} at byte {pos}" +
                                   ("" if header is not None else " (no readable header)"))
            truncated = True
            log.warning("show log %s is truncated at byte %d (%s; the show was cut off): replaying up to its "
                        "last complete record", path, pos, bad)
            break
        try:
            obj = msgpack.unpackb(dctx.decompress(bytes(data[pos + CHUNK_HEADER.size:body_end])), raw=False,
                                  strict_map_key=False)
            kind = obj["kind"]
        except Exception as exc:  # noqa: BLE001 — a CRC-valid chunk that does not decode: written wrong
            raise ShowLogError(f"{path} is corrupt: chunk {n_chunk} does not decode ({exc})") from None
        if n_chunk == 0 and kind != "header":
            raise ShowLogError(f"{path} is corrupt: the first chunk is not a header")
        if kind == "header":
            header = obj
        elif kind == "meta":
            header.update({k: v for k, v in obj.items() if k != "kind"})
        elif kind == "batch":
            for name, b in obj["hops"].items():
                cols.setdefault(name, []).append(b)
            events.extend(obj.get("events", ()))
            au = obj.get("audio")
            if au:
                a_rate, a_hop = int(au["rate"]), int(au["hop_size"])
                a_idx.append(np.frombuffer(au["hop_index"], "<i8"))
                a_pcm.append(np.frombuffer(au["pcm"], "<i2").reshape(-1, a_hop))
        elif kind == "end":
            end = obj
        n_chunk += 1
        pos = body_end
    if header is None:
        raise ShowLogError(f"{path} is corrupt: no header")
    if end is None and not truncated:
        truncated = True
        log.warning("show log %s has no end record (the show was cut off): replaying up to its last complete "
                    "record", path)
    dtypes = dict(HOP_COLUMNS)
    hops = {name: np.frombuffer(b"".join(cols.get(name, [])), dt) for name, dt in HOP_COLUMNS}
    hops["chroma"] = np.frombuffer(b"".join(cols.get("chroma", [])), "<f4").reshape(-1, 12)
    n = len(hops["hop_index"])
    if any(len(v) != n for v in hops.values()):
        raise ShowLogError(f"{path} is corrupt: hop columns of different lengths")
    del dtypes
    ev = [(e[0], float(e[1]), e[2:]) for e in events]
    if any(not math.isfinite(t) for _, t, _ in ev):
        raise ShowLogError(f"{path} is corrupt: an event time is not finite")
    return ShowLog(header=header, hops=hops, events=ev,
                   audio_hop_index=np.concatenate(a_idx) if a_idx else None,
                   audio_pcm=np.concatenate(a_pcm) if a_pcm else None, audio_rate=a_rate, end=end,
                   truncated=truncated, path=str(path), n_hops=n)
