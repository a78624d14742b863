"""The live engine's threads in-process (no window): audio front end, inference thread, frame function, recorder."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from vj.audio.features import Features
from vj.engine.audio import AudioFront
from vj.engine.inference import FrameFn, InferenceThread
from vj.engine.record import Recorder
from vj.engine.slots import FrameSlot, LatestSlot
from vj.errors import VJError
from vj.mapping import Mapper, MappingSettings


class FakeSource:
    """Delivers ``n`` hops of a sine from its own thread, like a FileSource at full speed."""

    sample_rate = 22050
    hop_size = 256

    def __init__(self, n: int, delay_s: float = 0.0):
        self.n, self.delay_s = n, delay_s
        self.stopped = False
        self._t = None

    def start(self, on_hop):
        def run():
            t = np.arange(self.hop_size) / self.sample_rate
            for i in range(self.n):
                if self.stopped:
                    return
                on_hop((0.3 * np.sin(2 * np.pi * 440 * (t + i * self.hop_size / self.sample_rate))).astype(
                    np.float32), 100.0 + i)
                if self.delay_s:
                    time.sleep(self.delay_s)

        self._t = threading.Thread(target=run)
        self._t.start()

    def stop(self):
        self.stopped = True
        if self._t:
            self._t.join()


class CountingAnalyzer:
    def __init__(self, sample_rate, hop_size, fail_every=0):
        self.i = 0
        self.fail_every = fail_every
        self.seen_rate = sample_rate

    def process(self, hop, capture_time_s):
        self.i += 1
        if self.fail_every and self.i % self.fail_every == 0:
            raise ValueError("bad hop")
        return Features(hop_index=self.i - 1, capture_time_s=capture_time_s, rms=float(np.sqrt(np.mean(hop ** 2))))


def test_audio_front_analyses_every_hop_in_order_and_survives_errors():
    slot = LatestSlot()
    got = []
    front = AudioFront(FakeSource(200, delay_s=0.0005), slot,
                       analyzer_factory=lambda sr, hop: CountingAnalyzer(sr, hop, fail_every=50),
                       on_audio=lambda hop, sr, t: got.append((hop.shape[0], sr)))
    front.start()
    deadline = time.monotonic() + 10
    while front.hops_analyzed + front.analysis_errors + front.skipped_hops < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert front.stop()
    assert (front.analysis_errors, front.hops_analyzed + front.skipped_hops) == (4, 196)
    seq, f = slot.get()
    assert seq == front.hops_analyzed and f.hop_index == 198 and f.capture_time_s == 100.0 + 198  # 200th failed
    assert got and got[0] == (256, 22050)


def test_audio_front_skips_when_analysis_lags_a_full_ring():
    slot = LatestSlot()

    class Slow(CountingAnalyzer):
        def process(self, hop, t):
            time.sleep(0.01)
            return super().process(hop, t)

    front = AudioFront(FakeSource(300), slot, analyzer_factory=Slow, ring_hops=16)
    front.start()
    time.sleep(0.5)
    front.stop()
    assert front.skipped_hops > 0  # the source never waited for the analysis


def _mapper():
    return Mapper(MappingSettings(classes=[1, 2, 3]), seed=3)


def test_inference_thread_publishes_frames_that_carry_the_hop():
    features = LatestSlot()
    features.put(Features(hop_index=41, capture_time_s=12.5, level=0.5, chroma=np.ones(12, np.float32)))
    frames = FrameSlot()
    calls = []

    def frame_fn(lat, out=None):
        calls.append(lat)
        img = np.full((8, 8, 4), len(calls), np.uint8)
        if out is not None:
            out[...] = img
            return out
        return img

    th = InferenceThread(frame_fn, _mapper(), features, frames, max_fps=200)
    th.start()
    deadline = time.monotonic() + 10
    while frames.published < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert th.stop()
    f = frames.take()
    assert f is not None and f.hop_index == 41 and f.capture_time_s == 12.5 and f.classes == (1, 2, 3)
    assert f.image.shape == (8, 8, 4) and int(f.image[0, 0, 0]) == f.frame_id
    assert f.t_done_s >= f.t_start_s > 0


def test_inference_step_survives_a_failing_generator_and_drifts_without_audio():
    features = LatestSlot()  # no audio at all yet
    frames = FrameSlot()

    def broken(lat, out=None):
        raise RuntimeError("CUDA hiccup")

    th = InferenceThread(broken, _mapper(), features, frames)
    assert th.step(0.0, 0.1) is False and th.errors == 1 and "hiccup" in th.last_error
    noise = []
    th.frame_fn = lambda lat, out=None: (noise.append(lat.noise.copy()), np.zeros((4, 4, 4), np.uint8))[1]
    assert th.step(0.1, 0.1) and frames.take().hop_index == -1 and th.drifting
    for i in range(30):
        th.step(0.2 + i / 10, 0.1)
    assert np.abs(noise[-1] - noise[0]).mean() > 0.01  # no audio yet: the picture drifts
    # audio arrives, then stops (input lost): the last state, still drifting after DRIFT_AFTER_S
    features.put(Features(hop_index=7, capture_time_s=3.0, level=0.6, chroma=np.ones(12, np.float32)))
    th.step(3.2, 0.1)
    assert not th.drifting and frames.take().hop_index == 7
    for i in range(40):
        th.step(3.3 + i / 10, 0.1)
    assert th.drifting and frames.take().hop_index == 7
    assert np.abs(noise[-1] - noise[-30]).mean() > 0.01


def test_pulse_lead_follows_the_measured_latency():
    """gan.pulse_lead_auto on: lead = measured latency + what the display's cross-fade adds (half the generator
    interval less one display interval), clamped to 0.3 s; off, or before anything is measured, the fader's
    value stands."""
    from vj.control.params import ParamRegistry

    reg = ParamRegistry()
    latency = [None]
    frames = FrameSlot()
    th = InferenceThread(lambda lat, out=None: np.zeros((4, 4, 4), np.uint8), _mapper(), LatestSlot(), frames,
                         registry=reg, latency_fn=lambda: latency[0])
    for i in range(5):
        th.step(i * 0.02, 0.02)
    assert th.pulse_lead_s == pytest.approx(reg.get("gan.pulse_lead_s"))  # unmeasured: the fader
    latency[0] = 0.031
    for i in range(5, 10):
        th.step(i * 0.02, 0.02)
    assert th.pulse_lead_s == pytest.approx(0.031 + 0.01) and th.mapper._pulse.lead_s == pytest.approx(0.041)
    display = [1 / 240]  # a 240 Hz display: the 20 ms frames fade in over 20 ms, seen 10 − 4.2 ms later
    th.display_interval_fn = lambda: display[0]
    th.step(0.2, 0.02)
    assert th.pulse_lead_s == pytest.approx(0.031 + 0.01 - 1 / 240)
    display[0] = 1 / 60  # a 60 Hz display shows each 50 fps frame unblended: the latency alone
    th.step(0.22, 0.02)
    assert th.pulse_lead_s == pytest.approx(0.031)
    latency[0] = 5.0
    th.step(0.3, 0.02)
    assert th.pulse_lead_s == pytest.approx(InferenceThread.MAX_LEAD_S)
    reg.set("gan.pulse_lead_auto", 0)
    reg.apply_pending()
    th.step(0.32, 0.02)
    assert th.pulse_lead_s == pytest.approx(reg.get("gan.pulse_lead_s"))


def test_frame_fn_falls_back_to_eager_when_the_runner_fails(monkeypatch):
    torch = pytest.importorskip("torch")

    class Gen(torch.nn.Module):
        resolution = 4

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, z, c, t):
            return torch.zeros(z.shape[0], 3, 4, 4) + 0.5 * self.w

    class BadRunner:
        def run(self, *a, **k):
            raise RuntimeError("graph broke")

        def close(self):
            pass

    import vj.engine.gpu as gpu

    monkeypatch.setattr(gpu, "make_runner", lambda *a, **k: BadRunner())
    fn = FrameFn(Gen(), "cpu")
    lat = _mapper().step(Features(), 0.1)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            fn(lat)
    img = fn(lat)  # third failure: switch to eager for good
    assert fn.kind == "eager" and img.shape == (4, 4, 4) and int(img[0, 0, 0]) == 191 and int(img[0, 0, 3]) == 255
    out = np.zeros((4, 4, 4), np.uint8)
    assert fn(lat, out=out) is out and int(out[1, 1, 1]) == 191


def test_eager_frames_use_the_one_rgba_conversion():
    torch = pytest.importorskip("torch")

    class Gen(torch.nn.Module):
        resolution = 1

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, z, c, t):
            x = torch.tensor([-1.0, 0.0, 1.0, float("nan")]).reshape(1, 1, 1, 4).expand(1, 3, 1, 4)
            return x * self.w

    img = FrameFn(Gen(), "cpu", use_runner=False)(_mapper().step(Features(), 0.1))
    assert img.shape == (1, 4, 4) and img[0, :, 0].tolist() == [0, 128, 255, 128] and (img[..., 3] == 255).all()


class _PipelinedFrames:
    """A frame function with the pipelined API: records the order of submits and takes."""

    pipelined = True

    def __init__(self):
        self.log = []
        self.n = 0

    def __call__(self, lat, out=None):  # the first frame (size unknown) is made synchronously
        self.log.append(("call", lat.hop_index))
        img = np.full((4, 4, 4), 200, np.uint8)
        if out is not None:
            out[...] = img
            return out
        return img

    def submit(self, lat):
        self.n += 1
        self.log.append(("submit", self.n))
        return (self.n, lat.hop_index)

    def take(self, ticket, out=None):
        self.log.append(("take", ticket[0]))
        img = np.full((4, 4, 4), ticket[0], np.uint8)
        if out is not None:
            out[...] = img
            return out
        return img


def test_pipelined_inference_submits_the_next_frame_before_taking_this_one():
    features = LatestSlot()
    frames = FrameSlot()
    fn = _PipelinedFrames()
    th = InferenceThread(fn, _mapper(), features, frames)
    hops = []
    for k in range(5):
        features.put(Features(hop_index=100 + k, capture_time_s=float(k), level=0.5,
                              chroma=np.ones(12, np.float32)))
        assert th.step(10.0 + k, 0.05)
        f = frames.take()
        hops.append(None if f is None else (f.hop_index, int(f.image[0, 0, 0]), f.t_start_s))
    assert fn.log[:4] == [("call", 100), ("submit", 1), ("submit", 2), ("take", 1)]
    assert fn.log[4:] == [("submit", 3), ("take", 2), ("submit", 4), ("take", 3)]
    # step 0 published synchronously; step 1 only submitted; from step 2 on, each publishes the previous step's
    # frame with that frame's own hop id and start time
    assert hops[0][0] == 100 and hops[1] is None
    assert hops[2:] == [(101, 1, 11.0), (102, 2, 12.0), (103, 3, 13.0)]
    th._drop_pending()
    assert fn.log[-1] == ("take", 4)


def test_recorder_writes_video_and_audio_and_drops_instead_of_waiting(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "rec.mp4"
    rec = Recorder(path, (64, 48), fps=10, t0_s=time.perf_counter(), queue_frames=4, audio_wait_s=1.0)
    for i in range(20):
        rec.push_audio(np.zeros(1024, np.float32) + 0.1 * np.sin(i), 16000)
    # not started yet: the queue fills and further frames are dropped, never waited for
    t = time.perf_counter()
    for i in range(10):
        rec.push_video(np.full((48, 64, 3), 20 * i, np.uint8), i / 10)
    assert time.perf_counter() - t < 0.5 and rec.dropped_video == 6
    rec.start()
    for i in range(10, 20):
        time.sleep(0.02)
        rec.push_video(np.full((48, 64, 3), 10 * i, np.uint8), i / 10)
    assert rec.close() and path.exists() and not list(tmp_path.glob(".*part*"))
    with av.open(str(path)) as c:
        assert sorted(s.type for s in c.streams) == ["audio", "video"]
        n = sum(1 for _ in c.decode(video=0))
    assert n == rec.frames_written >= 10


def test_recorder_places_audio_at_its_capture_time(tmp_path):
    """The audio track starts where its first hop was captured, not where it reached the recorder (the first
    hop is late: it builds the analyser)."""
    av = pytest.importorskip("av")
    path = tmp_path / "rec.mp4"
    t0 = time.perf_counter()
    rec = Recorder(path, (64, 48), fps=10, t0_s=t0, audio_wait_s=1.0)
    rec.start()
    for i in range(16):  # hop i's last sample captured at t0 + 0.5 s + (i + 1) hops
        rec.push_audio(np.full(1600, 0.1, np.float32), 16000, t0 + 0.5 + (i + 1) * 0.1)
    for i in range(20):
        rec.push_video(np.full((48, 64, 3), 10 * i, np.uint8), i / 10)
    assert rec.close()
    with av.open(str(path)) as c:  # where the sound starts in the decoded track (after the AAC priming)
        v = c.streams.video[0]
        frames = [(fr.time, fr.to_ndarray().mean(axis=0)) for fr in c.decode(audio=0)]
        loud = [t + int(np.argmax(np.abs(x) > 0.05)) / 16000 for t, x in frames if np.any(np.abs(x) > 0.05)]
        start = loud[0] - float(v.start_time * v.time_base)
    assert start == pytest.approx(0.5, abs=0.02)


def test_recorder_keeps_frames_at_their_show_time_after_a_catch_up(tmp_path):
    """A burst of frames after a stall (two in one slot) must not push the rest of the recording later: the
    extra frame is left out and every later frame keeps its own time (the earlier +1 bump drifted a frame per
    burst)."""
    av = pytest.importorskip("av")
    path = tmp_path / "rec.mp4"
    rec = Recorder(path, (64, 48), fps=10, t0_s=time.perf_counter(), audio_wait_s=0.0)
    rec.start()
    times = [0.0, 0.1, 0.2, 0.24, 0.3, 0.4, 0.5]
    for i, t in enumerate(times):
        rec.push_video(np.full((48, 64, 3), 30 * i, np.uint8), t)
        time.sleep(0.02)
    assert rec.close()
    with av.open(str(path)) as c:
        got = [(round(float(fr.time), 3), int(fr.to_ndarray(format="rgb24")[0, 0, 0])) for fr in c.decode(video=0)]
    assert [t for t, _ in got] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert abs(got[3][1] - 30 * 4) <= 6  # the slot at 0.3 s shows the frame pushed at 0.3 s
    assert rec.superseded_video == 1


def test_recorder_refuses_a_missing_folder(tmp_path):
    with pytest.raises(VJError, match="does not exist"):
        Recorder(tmp_path / "nope" / "x.mp4", (64, 48))


def test_overlay_text_says_when_input_is_lost_and_wraps_key_help():
    from vj.display.overlay import key_help, level_bar, overlay_text

    text = overlay_text({"source_state": "retrying", "source_error": "device unplugged", "input": "Scarlett",
                         "classes": ["jellyfish", "daisy"], "display_fps": 59.94, "gan_fps": 1.5,
                         "loudness_db": -30.0, "blackout": True}, width_chars=80)
    assert "INPUT LOST — retrying (device unplugged)" in text
    assert "jellyfish, daisy" in text and "59.9 fps" in text and "blackout ON" in text
    assert level_bar(-30.0, 20) == "#" * 10 + "-" * 10 and level_bar(float("nan"), 4) == "----"
    assert max(len(line) for line in text.splitlines() if line.startswith(("keys", " "))) <= 80
    assert all(k in text for k, _ in key_help())
    assert "running" in overlay_text({"source_state": "running"})


class _FakeSurface:
    overlay = None
    message = ""

    def __init__(self):
        self.should_close = False
        self.flips = 0
        self.ctx = type("Ctx", (), {"error": "GL_NO_ERROR"})()

    def poll(self, now):
        pass

    def screen_fbo(self):
        return None

    def framebuffer_size(self):
        return (0, 0)

    def flip(self):
        self.flips += 1


class _FlakyPipeline:
    def __init__(self, failures):
        self.failures = failures
        self.renders = 0
        self.uploads = 0

    def upload(self, image, levels=None):
        self.uploads += 1

    def render(self, t, sharpen, fx):
        self.renders += 1
        if self.renders <= self.failures:
            raise RuntimeError("driver hiccup")


def _show(pipeline, duration_s):
    from vj.control.params import ParamRegistry
    from vj.display.show import Show, ShowOptions
    from vj.engine.stats import StatsCollector

    frames = FrameSlot(4, 4)
    frames.write_buffer(4, 4)
    frames.publish(frame_id=1, hop_index=3, capture_time_s=time.perf_counter(), t_done_s=time.perf_counter())
    return Show(_FakeSurface(), pipeline, ParamRegistry(), LatestSlot(), frames,
                StatsCollector(None, time.perf_counter()), ShowOptions(duration_s=duration_s, fps_cap=200))


def test_show_survives_failing_frames():
    show = _show(_FlakyPipeline(failures=3), 0.4)
    show.run()
    assert show.frame_errors == 3 and show.swaps > 3 and show.frames_shown == 1


def test_show_stamps_a_recorded_frame_when_it_became_visible():
    """A recorded frame carries its swap's time (when the room saw it; what latency is measured to), not the
    start of the pass that drew it: with a swap that waits 20 ms for the display, the two differ by 20 ms."""
    from vj.control.params import ParamRegistry
    from vj.display.show import Show, ShowOptions
    from vj.engine.stats import StatsCollector

    class SlowSwap(_FakeSurface):
        def __init__(self):
            super().__init__()
            self.swaps_at = []

        def flip(self):
            time.sleep(0.02)  # a vsync'd swap blocks until the display takes the picture
            super().flip()
            self.swaps_at.append(time.perf_counter())

    class Readback(_FlakyPipeline):
        def start_readback(self):
            self.pending = np.zeros((4, 4, 3), np.uint8)

        def finish_readback(self):
            return self.pending

    class Rec:
        def __init__(self):
            self.pts = []

        def push_video(self, img, t_s):
            self.pts.append(t_s)

    frames = FrameSlot(4, 4)
    frames.write_buffer(4, 4)
    frames.publish(frame_id=1, hop_index=3, capture_time_s=time.perf_counter(), t_done_s=time.perf_counter())
    surface, rec = SlowSwap(), Rec()
    stats = StatsCollector(None, time.perf_counter())
    show = Show(surface, Readback(0), ParamRegistry(), LatestSlot(), frames, stats,
                ShowOptions(duration_s=0.5, fps_cap=200, record_fps=30), recorder=rec)
    show.run()
    assert len(rec.pts) >= 5
    swaps = np.array(surface.swaps_at) - stats.t0_s
    gaps = [np.abs(swaps - t).min() for t in rec.pts]
    assert max(gaps) < 0.01  # each pts is one swap's instant (a pass start would be ≥ 20 ms before it)


def test_show_gives_up_on_a_broken_context():
    show = _show(_FlakyPipeline(failures=10**9), 5.0)
    show.MAX_FAILED_FRAMES = 5
    with pytest.raises(RuntimeError, match="hiccup"):
        show.run()
    assert show.frame_errors == 5
