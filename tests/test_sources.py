"""Audio sources with real recordings: FileSource content, pacing and end; open_source; device resolution."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from vj.audio.sources import (
    FileSource,
    LiveInputSource,
    SourceState,
    list_input_devices,
    open_source,
    resolve_input_device,
)
from vj.errors import VJError


class Collector:
    """on_hop that copies each hop (the array is only valid during the call) and its capture time."""

    def __init__(self):
        self.hops: list[np.ndarray] = []
        self.times: list[float] = []
        self.arrivals: list[float] = []
        self.thread_names: set[str] = set()

    def __call__(self, hop, capture_time_s):
        self.hops.append(np.array(hop, copy=True))
        self.times.append(capture_time_s)
        self.arrivals.append(time.perf_counter())
        self.thread_names.add(threading.current_thread().name)


def _reference(path, hop):
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1).astype(np.float32)
    padded = np.zeros(math.ceil(len(mono) / hop) * hop, np.float32)
    padded[: len(mono)] = mono
    return padded, sr


@pytest.mark.parametrize("name,hop", [("mono.wav", 512), ("stereo.wav", 441)])
def test_file_source_fast_delivers_every_hop_in_order(generated_audio, name, hop):
    path = generated_audio / name
    ref, sr = _reference(path, hop)
    got = Collector()
    src = FileSource(path, realtime=False, hop_size=hop)
    assert src.sample_rate == sr and src.hop_size == hop and src.state is SourceState.CLOSED
    t0 = time.perf_counter()
    with src:
        src.start(got)
        assert src.wait(10.0)
        assert src.state is SourceState.ENDED
    elapsed = time.perf_counter() - t0
    n_hops = math.ceil(sf.info(str(path)).frames / hop)
    assert len(got.hops) == n_hops == src.n_hops
    assert all(h.dtype == np.float32 and h.shape == (hop,) for h in got.hops)
    np.testing.assert_allclose(np.concatenate(got.hops), ref, atol=1e-6)
    assert got.thread_names and threading.current_thread().name not in got.thread_names
    assert elapsed < 0.5 * src.duration_s  # fast mode is much faster than real time
    assert np.all(np.diff(got.times) >= 0)
    assert src.state is SourceState.CLOSED  # after close


def test_file_source_realtime_pace(mono_wav):
    """1.0 s of a real recording takes 1.0 s, and capture times follow the sample clock without drift."""
    path = mono_wav
    data, sr = sf.read(str(path), dtype="float32")
    hop = 441  # 10 ms at 44.1 kHz: 100 hops = 1.0 s
    got = Collector()
    done = threading.Event()

    def on_hop(h, t):
        got(h, t)
        if len(got.hops) == 100:
            done.set()

    src = FileSource(path, realtime=True, hop_size=hop)
    t0 = time.perf_counter()
    src.start(on_hop)
    assert done.wait(5.0)
    elapsed = time.perf_counter() - t0
    src.stop()
    assert src.state is SourceState.CLOSED
    assert 0.95 <= elapsed <= 1.15, elapsed
    times = np.array(got.times[:100])
    # scheduled capture times are exactly hop-spaced (drift-free), and hops arrive close to them
    np.testing.assert_allclose(np.diff(times), hop / sr, atol=1e-9)
    lateness = np.array(got.arrivals[:100]) - times
    assert np.median(lateness) < 0.02 and lateness.min() > -0.001
    np.testing.assert_allclose(np.concatenate(got.hops[:100]), data[: 100 * hop], atol=1e-6)


def test_file_source_loop_wraps_content(mono_wav):
    path = mono_wav
    hop = 2048
    ref, _ = _reference(path, hop)
    n = len(ref) // hop
    got = []
    enough = threading.Event()

    def on_hop(h, t):
        got.append(h.copy())
        if len(got) >= 2 * n + 3:
            enough.set()

    with FileSource(path, realtime=False, hop_size=hop, loop=True) as src:
        src.start(on_hop)
        assert enough.wait(10.0)
        assert src.state is SourceState.RUNNING
    assert src.state is SourceState.CLOSED
    np.testing.assert_array_equal(got[n], got[0])
    np.testing.assert_array_equal(got[2 * n + 1], got[1])


def test_file_source_consumer_exception_is_counted(mono_wav):
    def bad(h, t):
        raise ValueError("consumer bug")

    with FileSource(mono_wav, realtime=False, hop_size=4096) as src:
        src.start(bad)
        assert src.wait(5.0)
        assert src.state is SourceState.ENDED
        assert src.callback_errors == src.n_hops
        assert isinstance(src.callback_exception, ValueError)


def test_file_source_monitor_without_output_is_a_notice(mono_wav, monkeypatch):
    import sounddevice as sd

    def no_output(*a, **k):
        raise sd.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sd, "OutputStream", no_output)
    got = Collector()
    with FileSource(mono_wav, realtime=True, hop_size=4096, monitor=True) as src:
        src.start(got)
        time.sleep(0.3)
        assert src.state is SourceState.RUNNING
        assert src.last_error and "monitor" in src.last_error
    assert got.hops


def test_missing_file_is_a_vj_error(tmp_path):
    with pytest.raises(VJError, match="not found"):
        FileSource(tmp_path / "nope.wav")
    with pytest.raises(VJError, match="not found"):
        open_source(f"file:{tmp_path / 'nope.wav'}")
    with pytest.raises(VJError):
        FileSource(tmp_path, realtime=False)  # a directory


def test_bad_options_are_vj_errors(mono_wav):
    with pytest.raises(VJError, match="hop size"):
        FileSource(mono_wav, hop_size=0)
    with pytest.raises(VJError, match="channel"):
        LiveInputSource(channels="left")
    with pytest.raises(VJError, match="sample rate"):
        LiveInputSource(sample_rate=5)
    with pytest.raises(VJError):
        open_source(3.5)


def test_open_source_spellings(mono_wav):
    src = open_source(f"file:{mono_wav}", realtime=False, hop_size=256)
    assert isinstance(src, FileSource) and src.hop_size == 256 and not src.realtime
    assert isinstance(open_source("default"), LiveInputSource)
    live = open_source("3")
    assert isinstance(live, LiveInputSource) and live.device == "3"
    assert open_source("USB Audio").device == "USB Audio"
    assert open_source(None).device is None


def test_list_input_devices_shape():
    for d in list_input_devices():
        assert set(d) == {"index", "name", "channels", "default_samplerate", "hostapi", "is_default"}
        assert d["channels"] > 0


def test_unknown_device_name_lists_inputs():
    with pytest.raises(VJError, match="no audio input matching 'no-such-card-xyz'"):
        resolve_input_device("no-such-card-xyz")
    with pytest.raises(VJError):
        LiveInputSource("no-such-card-xyz", strict=True)


def test_missing_device_retries_without_raising():
    """A device that is not there: start() returns, the source reports it and keeps retrying until stopped."""
    got = Collector()
    src = LiveInputSource("no-such-card-xyz", retry_interval_s=0.2)
    src.start(got)  # must not raise
    assert src.state in (SourceState.ERROR, SourceState.RETRYING)
    assert "no audio input matching 'no-such-card-xyz'" in src.last_error and "\n" not in src.last_error
    time.sleep(0.6)  # a few retries
    assert src.state is SourceState.RETRYING and src.opens == 0
    assert "retrying: no audio input" in src.status_line()
    src.stop()
    assert src.state is SourceState.CLOSED and not got.hops
    src.stop()  # idempotent


def test_live_source_rate_is_known_before_start():
    src = LiveInputSource("no-such-card-xyz", sample_rate=44100)
    assert src.sample_rate == 44100 and src.state is SourceState.CLOSED
    assert LiveInputSource("no-such-card-xyz").sample_rate == 48000  # absent device: documented fallback


class _Time:
    def __init__(self, adc, now):
        self.inputBufferAdcTime, self.currentTime = adc, now


class _Status:
    def __init__(self, overflow):
        self.input_overflow = overflow

    def __bool__(self):
        return True


class _FakeClock:
    """Stands in for vj.clock.now_s inside vj.audio.live_input: calling it returns ``now``."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.mark.parametrize("channels,expect", [("mix", lambda x: x[:, :2].mean(axis=1)), (2, lambda x: x[:, 2]),
                                             ([1, 2], lambda x: x[:, 1:3].mean(axis=1))])
@pytest.mark.parametrize("with_adc", [True, False])
def test_live_callback_reblocks_odd_blocks_into_exact_hops(stereo_wav, monkeypatch, channels, expect, with_adc):
    """PortAudio may deliver any block size: the callback re-blocks into exact hops, in order, channel-mixed,
    with capture times on the sample clock (from the ADC time, or bounded by arrival when there is none)."""
    import vj.audio.live_input as live_input

    stereo, sr = sf.read(str(stereo_wav), dtype="float32")
    x = np.ascontiguousarray(np.column_stack([stereo, stereo[:, 0] * 0.5 - stereo[:, 1]]))  # 3 channels
    hop = 256
    src = LiveInputSource("no-such-card-xyz", sample_rate=sr, hop_size=hop, channels=channels)
    cols = src._columns_for({"name": "fake", "channels": 3})
    hops, times = [], []
    src._on_hop = lambda h, t: (hops.append(h.copy()), times.append(t))
    src._prepare(cols)
    clock = _FakeClock(500.0)  # perf_counter epoch; the stream clock's epoch is 9000 s
    monkeypatch.setattr(live_input, "now_s", clock)
    rng = np.random.default_rng(0)
    pos, arrivals = 0, []
    while pos < len(x):
        n = int(min(rng.integers(1, 3 * hop), len(x) - pos))
        end_s = (pos + n) / sr  # true capture time of the block's end, from stream start
        clock.now = 500.0 + end_s + rng.uniform(0.001, 0.004)  # arrives 1-4 ms later
        stream_now = 9000.0 + clock.now - 500.0
        adc = 9000.0 + pos / sr if with_adc else 0.0
        src._callback(x[pos : pos + n, : max(cols) + 1], n, _Time(adc, stream_now), None)
        arrivals += [clock.now] * (len(times) - len(arrivals))
        pos += n
    n_hops = len(x) // hop
    assert len(hops) == n_hops == src.hops_delivered
    want = expect(x)[: n_hops * hop].reshape(n_hops, hop)
    np.testing.assert_allclose(np.stack(hops), want, atol=1e-6)
    true_end = 500.0 + (np.arange(n_hops) + 1) * hop / sr
    err = np.array(times) - true_end
    assert np.all(np.array(times) <= np.array(arrivals))
    if with_adc:
        np.testing.assert_allclose(err, 0.0, atol=1e-6)
    else:  # earliest arrival bounds it: within the arrival jitter, hop-spaced
        assert np.all(err >= 0) and np.all(err <= 0.004)
        # the anchor only steps to an earlier arrival (jitter) or creeps by the drift allowance
        np.testing.assert_allclose(np.diff(times), hop / sr, atol=1e-3)
        assert (times[-1] - times[0]) / (n_hops - 1) == pytest.approx(hop / sr, rel=1e-3)
    src._callback(x[:hop, : max(cols) + 1], hop, _Time(0, 0), _Status(True))
    assert src.overflows == 1


def test_open_source_demo_is_real_time_file():
    src = open_source("demo", hop_size=512)
    assert isinstance(src, FileSource) and src.realtime and src.state is SourceState.CLOSED
    assert src.duration_s > 1.0 and src.n_hops == math.ceil(src.n_samples / 512)


def test_unsupported_rate_is_reported_and_retried(monkeypatch):
    """A device that cannot capture at the asked rate: ERROR/RETRYING with a one-line reason, never a raise."""
    import sounddevice as sd

    import vj.audio.live_input as live_input

    fake = {"index": 7, "name": "Fake Card", "channels": 2, "default_samplerate": 48000.0, "hostapi": "ALSA",
            "is_default": True}
    monkeypatch.setattr(live_input, "resolve_input_device", lambda device, refresh=False: fake)

    def check(**kw):
        raise sd.PortAudioError("Invalid sample rate [PaErrorCode -9997]")

    monkeypatch.setattr(sd, "check_input_settings", check)
    src = LiveInputSource("fake", sample_rate=12345, retry_interval_s=0.1)
    assert src.sample_rate == 12345 and src.channels == 2
    src.start(Collector())
    try:
        assert src.state in (SourceState.ERROR, SourceState.RETRYING)
        assert src.last_error == "'Fake Card' cannot capture 2 channel(s) at 12345 Hz (Invalid sample rate " \
                                 "[PaErrorCode -9997])"
        time.sleep(0.35)
        assert src.state is SourceState.RETRYING and src.opens == 0
    finally:
        src.stop()
    assert src.state is SourceState.CLOSED
    with pytest.raises(VJError, match="cannot capture 2 channel"):
        LiveInputSource("fake", sample_rate=12345, strict=True)
