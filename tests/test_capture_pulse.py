"""Real capture: a recording played into a PulseAudio null sink, captured through PortAudio by LiveInputSource.

The path is the one a club's line input takes (PortAudio → ALSA → device), with PulseAudio's null sink standing
in for the sound card: ``paplay`` → null sink → its monitor → ALSA ``pulse`` plug-in → PortAudio →
:class:`~vj.audio.sources.LiveInputSource`. Onsets detected in the captured audio must match the recording's
hand annotations once the capture offset is found by cross-correlation. Killing the daemon mid-stream stands in
for an unplugged interface: the source must report it and come back by itself when the daemon returns.

These tests FAIL (not skip) when PulseAudio cannot start: CI installs it (``python3 -m vj.bootstrap --test``).
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from pulse import PulseError, PulseServer
from vj.audio.sources import (
    LiveInputSource,
    SourceState,
    hung_stream_closes,
    list_input_devices,
    refresh_devices,
)

HOP = 512


@pytest.fixture(scope="module")
def pulse(tmp_path_factory):
    """A PulseAudio daemon with a null sink; this process's PortAudio is re-initialised to see it."""
    server = PulseServer(tmp_path_factory.mktemp("pulse"))
    try:
        server.start()
    except PulseError as exc:
        pytest.fail(f"PulseAudio could not start, so real capture cannot be tested: {exc}")
    saved = {k: os.environ.get(k) for k in ("PULSE_SERVER", "PULSE_CLIENTCONFIG")}
    os.environ.update(PULSE_SERVER=server.server, PULSE_CLIENTCONFIG=str(server.client_conf))
    refresh_devices()
    try:
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        refresh_devices()


class Recorder:
    """on_hop that copies hops into a preallocated buffer (as a real consumer should) and keeps capture times."""

    def __init__(self, max_hops: int):
        self.buf = np.zeros((max_hops, HOP), np.float32)
        self.times = np.zeros(max_hops)
        self.arrivals = np.zeros(max_hops)
        self.n = 0

    def __call__(self, hop, capture_time_s):
        if self.n < len(self.buf):
            self.buf[self.n] = hop
            self.times[self.n] = capture_time_s
            self.arrivals[self.n] = time.perf_counter()
            self.n += 1

    def audio(self) -> np.ndarray:
        return self.buf[: self.n].reshape(-1)


def _wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _offset_samples(captured: np.ndarray, ref: np.ndarray) -> tuple[int, float]:
    """Where ``ref`` starts inside ``captured`` [samples], by FFT cross-correlation; and the normalised peak."""
    n = len(captured) + len(ref)
    corr = np.fft.irfft(np.fft.rfft(captured, n) * np.conj(np.fft.rfft(ref, n)), n)
    lag = int(np.argmax(corr))
    if lag > n // 2:
        lag -= n
    return lag, float(corr[lag] / np.dot(ref, ref))


def _window_matches(captured: np.ndarray, ref: np.ndarray, lag: int, sr: int, win_s=0.25, search_s=0.05):
    """Cosine similarity of each ``win_s`` window of ``ref`` with ``captured`` around ``lag``, re-aligned locally
    within ±``search_s`` — so one late buffer (an underrun under load) spoils one window, while audio re-cut every
    buffer spoils them all. Returns one score per window whose reference is not silent."""
    win, search = int(win_s * sr), int(search_s * sr)
    scores = []
    for start in range(0, len(ref) - win + 1, win):
        r = ref[start : start + win]
        if np.sqrt(np.mean(r * r)) < 1e-3:
            continue
        lo = max(0, lag + start - search)
        seg = captured[lo : lag + start + win + search]
        if len(seg) < win:
            break
        frames = np.lib.stride_tricks.sliding_window_view(seg, win)
        scores.append(float(np.max(frames @ r / (np.linalg.norm(frames, axis=1) * np.linalg.norm(r) + 1e-12))))
    return np.array(scores)


def _onsets_s(x: np.ndarray, sr: int) -> np.ndarray:
    import aubio

    det = aubio.onset("specflux", 1024, HOP, sr)
    x = np.concatenate([x, np.zeros(1024 + (-len(x)) % HOP, np.float32)]).astype(np.float32)
    out = []
    for i in range(0, len(x), HOP):
        if det(x[i : i + HOP])[0]:
            out.append(det.get_last_s())
    return np.array(out)


def test_pulse_input_is_listed(pulse, capsys):
    import json

    from vj.cli import main

    names = [d["name"] for d in list_input_devices()]
    assert "pulse" in names, names
    assert main(["devices", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["audio_inputs"]
    assert "pulse" in [d["name"] for d in listed]


def test_capture_detects_the_demo_grooves_onsets(pulse, mono_wav):
    """The demo's groove from bar 4: its drum hits are known exactly (every eighth note has a hat, kick or snare)."""
    from vj.audio import demo

    start = 4 * demo.BAR_S
    hits = np.array(sorted(set(demo.KICK_TIMES_S) | set(demo.SNARE_TIMES_S) | set(demo.HAT_TIMES_S)))
    duration = sf.info(str(mono_wav)).duration
    _capture_and_score_onsets(pulse, mono_wav, hits[(hits >= start) & (hits < start + duration)] - start)


def test_capture_detects_annotated_onsets(pulse, testdata):
    """The madmom sample (a real recording) with its hand-annotated onsets."""
    path = testdata / "madmom" / "sample.wav"
    _capture_and_score_onsets(pulse, path, np.loadtxt(testdata / "madmom" / "sample.onsets", comments="#"))


def _capture_and_score_onsets(pulse, path, annotated):
    import mir_eval

    ref, sr_file = sf.read(str(path), dtype="float32")
    rec = Recorder(max_hops=1200)  # ~14 s at 44.1 kHz
    src = LiveInputSource("pulse", hop_size=HOP, sample_rate=sr_file)
    src.start(rec)
    try:
        assert _wait_for(lambda: src.state is SourceState.RUNNING, 5.0), src.status_line()
        assert src.device_name == "pulse" and src.sample_rate == sr_file
        player = pulse.play(path)
        assert player.wait(15) == 0, player.stderr.read().decode(errors="replace")
        n_after = rec.n
        _wait_for(lambda: rec.n >= n_after + int(0.3 * sr_file / HOP), 3.0)  # let the tail through
        assert src.state is SourceState.RUNNING, src.status_line()
    finally:
        src.stop()
    assert src.state is SourceState.CLOSED
    captured = rec.audio()

    # The recording arrives intact (16-bit through the sink), at a measurable offset.
    lag, peak = _offset_samples(captured, ref)
    assert 0 <= lag and lag + len(ref) <= len(captured), (lag, len(captured))
    assert peak > 0.95, peak
    aligned = captured[lag : lag + len(ref)]
    assert np.corrcoef(aligned, ref)[0, 1] > 0.99

    # Onsets in what was captured match the hand annotations once shifted by the capture offset.
    detected = _onsets_s(captured, sr_file) - lag / sr_file
    detected = detected[(detected > -0.05) & (detected < len(ref) / sr_file + 0.05)]
    f, precision, recall = mir_eval.onset.f_measure(annotated, np.clip(detected, 0, None), window=0.05)
    assert f >= 0.8, (f, precision, recall, detected.round(3).tolist())

    # vj's own analysis, fed the captured hops as the live engine feeds them, finds the same onsets.
    from vj.audio.analysis import StreamingAnalyzer

    analyzer = StreamingAnalyzer(sr_file, hop_size=HOP)
    feats = [analyzer.process(rec.buf[i], rec.times[i]) for i in range(rec.n)]
    assert [f.capture_time_s for f in feats] == list(rec.times[: rec.n])
    vj_onsets = np.array([f.time_s for f in feats if f.onset]) - lag / sr_file
    vj_onsets = vj_onsets[(vj_onsets > -0.05) & (vj_onsets < len(ref) / sr_file + 0.05)]
    f_vj = mir_eval.onset.f_measure(annotated, np.clip(vj_onsets, 0, None), window=0.05)[0]
    assert f_vj >= 0.8, (f_vj, vj_onsets.round(3).tolist())

    # Capture times: hop-spaced on average, never in the future, and recent (low-latency capture).
    times, arrivals = rec.times[: rec.n], rec.arrivals[: rec.n]
    spacing = (times[-1] - times[0]) / (rec.n - 1)
    assert spacing == pytest.approx(HOP / sr_file, rel=0.02)
    assert np.all(arrivals >= times)
    assert np.median(arrivals - times) < 1.0
    assert src.callback_errors == 0


def test_daemon_killed_mid_stream_then_back(pulse):
    rec = Recorder(max_hops=100000)
    src = LiveInputSource("pulse", hop_size=HOP, retry_interval_s=0.5, stall_restart_s=1.0)
    errors: list[BaseException] = []
    seen_states: set[SourceState] = set()
    stop_watch = threading.Event()

    def watch():  # the overlay's view: poll the state, never raises
        while not stop_watch.is_set():
            seen_states.add(src.state)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        src.start(rec)
        assert _wait_for(lambda: src.state is SourceState.RUNNING, 5.0), src.status_line()
        pulse.kill()  # the "sound card" vanishes
        assert _wait_for(lambda: src.state in (SourceState.ERROR, SourceState.RETRYING), 3.0), src.status_line()
        message = src.last_error
        assert message and "\n" not in message
        time.sleep(0.7)  # at least one failed retry while it is gone
        assert src.state in (SourceState.ERROR, SourceState.RETRYING), src.status_line()
        n_gone = rec.n
        try:
            pulse.start()
        except PulseError as exc:
            pytest.fail(f"PulseAudio could not be restarted: {exc}")
        assert _wait_for(lambda: src.state is SourceState.RUNNING, 6.0), src.status_line()
        assert _wait_for(lambda: rec.n > n_gone + 20, 3.0)
        assert src.opens >= 2
    except BaseException as exc:  # pragma: no cover - reported below
        errors.append(exc)
        raise
    finally:
        src.stop()
        stop_watch.set()
        watcher.join()
    assert src.state is SourceState.CLOSED
    assert {SourceState.RUNNING, SourceState.RETRYING} <= seen_states
    assert hung_stream_closes() == 0  # the dead stream was closed, not abandoned


def test_file_monitor_is_heard_in_step_with_its_hops(pulse, mono_wav):
    """FileSource(monitor=True) plays to the default output (the null sink) when its hops say it is due."""
    from vj.audio.sources import FileSource

    path = mono_wav
    ref, sr = sf.read(str(path), dtype="float32")
    rec = Recorder(max_hops=1000)
    live = LiveInputSource("pulse", hop_size=HOP, sample_rate=sr)
    live.start(rec)
    file_times: list[float] = []
    try:
        assert _wait_for(lambda: live.state is SourceState.RUNNING, 5.0), live.status_line()
        with FileSource(path, realtime=True, hop_size=HOP, monitor=True) as src:
            src.start(lambda hop, t: file_times.append(t))
            assert src.wait(6.0)
            assert src.last_error is None, src.last_error  # the monitor stream opened
            n_end = rec.n
            _wait_for(lambda: rec.n >= n_end + int(0.5 * sr / HOP), 3.0)
    finally:
        live.stop()
    captured = rec.audio()
    lag, peak = _offset_samples(captured, ref)
    scores = _window_matches(captured, ref, lag, sr)
    # heard intact: played continuously, not re-cut per buffer (one glitch from an overloaded machine is allowed)
    assert len(scores) >= 8 and np.median(scores) > 0.9, (np.round(scores, 3), peak, src.monitor_resyncs)
    # perf_counter time at which the file's first sample was captured back from the sink ...
    hops = np.arange(rec.n)
    slope, intercept = np.polyfit(hops, rec.times[: rec.n], 1)
    heard_s = intercept + slope * ((lag + 1) / HOP - 1)
    # ... and when the file source said it was due
    due_s = file_times[0] - HOP / sr
    print(f"monitor heard {1000 * (heard_s - due_s):+.1f} ms after due, peak {peak:.3f}, {src.monitor_resyncs} resyncs")
    assert abs(heard_s - due_s) < 0.15, heard_s - due_s
