"""Hand-off slots between threads, event latches, rate meters and the stats file."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from vj.engine.slots import EventLatch, FrameSlot, LatestSlot
from vj.engine.stats import RateMeter, StatsCollector, percentile


def test_latest_slot_newest_wins_and_wait():
    s = LatestSlot()
    assert s.get() == (0, None)
    s.put("a")
    s.put("b")
    assert s.get() == (2, "b")
    assert not s.wait_newer(2, timeout_s=0.01)
    threading.Timer(0.02, s.put, args=("c",)).start()
    assert s.wait_newer(2, timeout_s=2.0) and s.get() == (3, "c")


def test_event_latch_counts_between_looks():
    latch = EventLatch()
    assert latch.update(5) == 0  # first look only records
    assert latch.update(5) == 0
    assert latch.update(8) == 3
    assert latch.update(2) == 0  # a new stream restarts the count
    assert latch.update(4) == 2 and latch.total == 5


def test_frame_slot_latest_wins_counts_overwritten():
    slot = FrameSlot(4, 4)
    assert slot.take() is None
    for i in (1, 2, 3):
        buf = slot.write_buffer(4, 4)
        buf[...] = i
        slot.publish(frame_id=i, hop_index=10 * i, capture_time_s=float(i))
    f = slot.take(0)
    assert f.frame_id == 3 and f.hop_index == 30 and int(f.image[0, 0, 0]) == 3
    assert slot.overwritten == 2 and slot.published == 3
    assert slot.take(3) is None  # nothing newer


def test_frame_slot_reader_buffer_is_never_written_concurrently():
    slot = FrameSlot(8, 8)
    stop = threading.Event()
    torn = []

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            buf = slot.write_buffer(8, 8)
            buf[...] = i % 251
            slot.publish(frame_id=i)

    t = threading.Thread(target=writer)
    t.start()
    last = 0
    try:
        for _ in range(3000):
            f = slot.take(last)
            if f is not None:
                last = f.frame_id
                v = f.image.copy()
                if not (v == v.flat[0]).all() or int(v.flat[0]) != f.frame_id % 251:
                    torn.append(f.frame_id)
    finally:
        stop.set()
        t.join()
    assert last > 0 and not torn


def test_frame_slot_resizes():
    slot = FrameSlot(4, 4)
    assert slot.write_buffer(6, 2).shape == (6, 2, 4)


def test_rate_meter_and_percentile():
    m = RateMeter(1.0)
    for i in range(61):
        m.tick(i / 60)
    assert abs(m.rate(1.0) - 60) < 1.5
    assert m.rate(5.0) == 0.0
    assert percentile([1, 2, 3, 4], 50) == 2.5 and np.isnan(percentile([], 50))


def test_stats_collector_writes_one_line_per_second(tmp_path):
    path = tmp_path / "s.jsonl"
    st = StatsCollector(path, t0_s=100.0)
    for i in range(1, 150):
        now = 100.0 + i / 60
        st.swap(now)
        if i % 20 == 0:
            st.frame_shown(now, capture_time_s=now - 0.2, generated_s=now - 0.01)
        if st.due(now):
            st.emit(now, source_state="running", dropped_frames=1)
    st.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 2
    rec = lines[0]
    for key in ("t_s", "display_fps", "gan_fps", "dropped_frames", "latency_ms_p50", "latency_ms_p95",
                "audio_overflows", "source_state"):
        assert key in rec
    assert abs(rec["latency_ms_p50"] - 200) < 1 and rec["source_state"] == "running"
    assert 55 < rec["display_fps"] < 65 and 2 < rec["gan_fps"] < 4
    assert st.display_interval_s() == pytest.approx(1 / 60)


def test_stats_display_interval_ignores_stalls():
    st = StatsCollector(None, t0_s=0.0)
    assert st.display_interval_s() is None
    t = 0.0
    for i in range(100):
        t += 1 / 120 if i % 2 else 1 / 40  # uneven swaps average 1/60
        st.swap(t)
    assert st.display_interval_s() == pytest.approx(1 / 60, rel=0.35)
    st.swap(t + 2.0)  # a two-second stall (a window drag, a GPU hiccup) is not the display's rate
    assert st.display_interval_s() == pytest.approx(1 / 60, rel=0.35)
