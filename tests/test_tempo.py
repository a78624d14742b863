import math
import random
import threading

import pytest

from vj.control.tempo import PPQN, TempoClock


def on_beat(phase):
    return min(phase, 1.0 - phase) < 1e-6


def make(bpm=120.0):
    return TempoClock(bpm=bpm, clock=lambda: 0.0)


def test_tap_sequence_sets_bpm_within_one_percent_and_puts_last_tap_on_a_beat():
    rng = random.Random(1)
    clock = make(90.0)
    t = 10.0
    result = clock.tap(t)
    assert result is None  # one tap: phase only
    for _ in range(7):
        t += 60.0 / 128.0 + rng.uniform(-0.01, 0.01)  # a human's jitter
        result = clock.tap(t)
    assert abs(result - 128.0) / 128.0 < 0.01
    assert abs(clock.bpm - 128.0) / 128.0 < 0.01
    assert clock.phase(t) == pytest.approx(0.0, abs=1e-9)


def test_tap_pause_starts_a_new_sequence():
    clock = make()
    for t in (0.0, 0.5, 1.0):  # 120 bpm
        clock.tap(t)
    assert clock.bpm == pytest.approx(120.0)
    assert clock.tap(10.0) is None  # after a pause: a new sequence, tempo kept
    assert clock.bpm == pytest.approx(120.0)
    clock.tap(10.4)
    assert clock.bpm == pytest.approx(150.0)


def test_double_half_and_clamps():
    clock = make(128.0)
    clock.double(1.0)
    assert clock.bpm == pytest.approx(256.0)
    clock.double(1.0)
    assert clock.bpm == 300.0
    clock.set_bpm(100.0, 1.0)
    clock.half(1.0)
    assert clock.bpm == pytest.approx(50.0)
    assert not clock.set_bpm(math.nan)
    assert clock.bpm == pytest.approx(50.0)


def test_phase_bar_phase_next_beat_and_continuity():
    clock = make(120.0)  # beat every 0.5 s from t = 0
    assert clock.phase(0.25) == pytest.approx(0.5)
    assert clock.beat_count(1.26) == 2
    assert clock.bar_phase(1.0) == pytest.approx(0.5)
    assert clock.next_beat_time(0.1) == pytest.approx(0.5)
    assert clock.next_beat_time(0.5) == pytest.approx(1.0)
    assert clock.next_bar_time(0.1) == pytest.approx(2.0)
    before = clock.position(1.1)
    clock.set_bpm(60.0, 1.1)  # tempo change keeps the position continuous
    assert clock.position(1.1) == pytest.approx(before)
    assert clock.position(2.1) == pytest.approx(before + 1.0)


def test_resync_puts_a_downbeat_at_now():
    clock = make(120.0)
    clock.resync(3.3)
    assert clock.phase(3.3) == pytest.approx(0.0, abs=1e-9)
    assert clock.bar_phase(3.3) == pytest.approx(0.0, abs=1e-9)
    assert clock.next_beat_time(3.3) == pytest.approx(3.8)


def test_follow_mode_snaps_to_tracker_beats_and_adopts_bpm():
    clock = make(120.0)
    clock.beat(0.62, bpm=100.0)
    assert clock.phase(0.62) == pytest.approx(0.0, abs=1e-9)
    assert clock.bpm == pytest.approx(100.0)
    clock.follow = False
    clock.beat(0.9, bpm=140.0)
    assert clock.bpm == pytest.approx(100.0)


def test_midi_clock_24_ppqn_at_128_bpm():
    clock = make(90.0)
    clock.midi_start(0.0)
    dt = 60.0 / (128.0 * PPQN)
    t = 1.0
    for i in range(PPQN * 8):
        clock.midi_clock(t + i * dt)
    last = t + (PPQN * 8 - 1) * dt
    assert abs(clock.bpm - 128.0) <= 1.0
    # every 24th pulse after Start is a beat; the first is a downbeat
    assert on_beat(clock.phase(t + PPQN * 4 * dt))
    assert not on_beat(clock.phase(t + PPQN * 4 * dt + 5 * dt))
    assert on_beat(clock.bar_phase(t))
    # the tracker is ignored while a MIDI clock runs
    clock.beat(last + 0.01, bpm=70.0)
    assert abs(clock.bpm - 128.0) <= 1.0
    clock.midi_stop(last)
    clock.beat(last + 0.02, bpm=70.0)
    assert clock.bpm == pytest.approx(70.0)


def test_threads_do_not_corrupt_state():
    clock = TempoClock(120.0)

    def worker():
        for _ in range(300):
            clock.tap()
            clock.phase()
            clock.set_bpm(125.0)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert 20.0 <= clock.bpm <= 300.0
    assert 0.0 <= clock.phase() < 1.0
