import numpy as np
import pytest
import soundfile as sf

from vj.audio import demo

SR = demo.SAMPLE_RATE


@pytest.fixture(scope="module")
def bundled() -> np.ndarray:
    y, sr = sf.read(str(demo.demo_path()), dtype="float64")
    assert sr == SR
    return y


@pytest.fixture(scope="module")
def synthesized() -> np.ndarray:
    return demo.synthesize()


@pytest.fixture(scope="module")
def stems() -> dict:
    return demo.synthesize_stems()


def test_constants():
    assert demo.BPM == 128.0
    assert demo.DURATION_S == pytest.approx(30.0)
    assert len(demo.BEAT_TIMES_S) == 64 and demo.BEAT_TIMES_S[1] == pytest.approx(60 / 128)
    assert [c for _, _, c in demo.CHORDS] == ["Am", "F", "C", "G"] * 2
    assert demo.CHORDS[-1][1] == pytest.approx(demo.DURATION_S)
    # breakdown (bars 8-9 = 15.0 .. 18.75 s) has no drums, everything else has kicks on every beat
    assert len(demo.KICK_TIMES_S) == 56
    assert not [t for t in demo.KICK_TIMES_S + demo.SNARE_TIMES_S + demo.HAT_TIMES_S if 15.0 <= t < 18.75]
    assert len(demo.SNARE_TIMES_S) == 28 and len(demo.HAT_TIMES_S) == 112
    roll = demo.SNARE_ROLL_TIMES_S
    assert all(18.75 <= t < 22.5 for t in roll) and list(roll) == sorted(set(roll)) and len(roll) == 28


def test_bundled_file_is_what_synthesize_makes(bundled, synthesized):
    info = sf.info(str(demo.demo_path()))
    assert info.format == "FLAC" and info.subtype == "PCM_16"
    assert demo.demo_path().stat().st_size < 1_600_000
    assert synthesized.dtype == np.float32 and synthesized.ndim == 1
    assert bundled.shape == synthesized.shape == (round(30.0 * SR),)
    # 16-bit quantisation: within one step everywhere
    assert np.max(np.abs(bundled - synthesized)) <= 1.0 / 32768
    assert np.max(np.abs(synthesized)) == pytest.approx(10 ** (-1 / 20), abs=1e-6)  # peak -1 dBFS
    assert np.max(np.abs(bundled)) < 1.0


def test_rejects_bad_sample_rate():
    with pytest.raises(ValueError):
        demo.synthesize(sample_rate=100)


def _band(y: np.ndarray, lo_hz: float, hi_hz: float) -> np.ndarray:
    spec = np.fft.rfft(y)
    f = np.fft.rfftfreq(len(y), 1 / SR)
    spec[(f < lo_hz) | (f > hi_hz)] = 0
    return np.fft.irfft(spec, len(y))


def test_stems_sum_to_the_mix(stems, synthesized):
    assert set(stems) == {"kick", "snare", "hats", "bass", "pad", "arp", "fx"}
    assert np.max(np.abs(sum(s.astype(np.float64) for s in stems.values()) - synthesized)) < 1e-5


def test_snare_onsets_are_the_listed_ones(stems):
    snare = stems["snare"].astype(np.float64)
    listed = np.array(sorted(set(demo.SNARE_TIMES_S) | set(demo.SNARE_ROLL_TIMES_S)))
    loud = np.mean(snare[round(listed[0] * SR) :][: round(0.01 * SR)] ** 2)
    for t in listed:  # every listed hit sounds
        a = round(t * SR)
        assert np.mean(snare[a : a + round(0.01 * SR)] ** 2) > 0.01 * loud, t
    # and every start of sound after silence is a listed hit (within 1 ms)
    sounding = np.abs(snare) > 1e-4
    gaps = np.diff(np.flatnonzero(sounding), prepend=-SR)  # samples since the previous sounding sample
    starts = np.flatnonzero(sounding)[gaps > 0.01 * SR]  # sound after >= 10 ms of silence
    assert len(starts) >= 20
    for i in starts:
        assert np.min(np.abs(listed - i / SR)) < 0.001, i / SR


def test_kick_energy_peaks_at_beat_times(bundled, stems):
    kick = stems["kick"].astype(np.float64)
    hop = 64
    energy = np.add.reduceat(kick**2, np.arange(0, len(kick), hop))
    for t in demo.KICK_TIMES_S:
        i = round(t * SR) // hop  # the frame holding the onset sample
        lo = max(0, i - 60)
        peak = lo + int(np.argmax(energy[lo : i + 60]))  # strongest kick energy within +-87 ms of the beat
        assert 0 <= (peak - i) * hop / SR <= 0.03, t
        if i > 0:
            assert energy[i - 3 : i].sum() < 1e-3 * energy[peak]  # silent just before: the onset is the beat
    # in the mix, low-band energy jumps at every kick, and far more than at the off-beats (where the bass is)
    low = _band(bundled, 30, 200)

    def rise(t):
        a, b = round(t * SR), round(0.06 * SR)
        return np.mean(low[a : a + b] ** 2) / np.mean(low[a - b : a] ** 2)

    on = [rise(t) for t in demo.KICK_TIMES_S if t > 0]
    off = [rise(t + demo.BEAT_S / 2) for t in demo.KICK_TIMES_S]
    assert min(on) > 3
    assert np.median(on) > 5 * np.median(off)


def test_chroma_of_each_chord_section(bundled):
    names = "C C# D D# E F F# G G# A A# B".split()
    for start, end, chord in demo.CHORDS:
        seg = bundled[round(start * SR) : round(end * SR)]
        power = np.abs(np.fft.rfft(seg * np.hanning(len(seg)))) ** 2
        f = np.fft.rfftfreq(len(seg), 1 / SR)
        keep = (f > 60) & (f < 2000)
        pitch_class = (np.round(12 * np.log2(f[keep] / 440)) + 69).astype(int) % 12
        chroma = np.bincount(pitch_class, weights=power[keep], minlength=12)
        top = list(np.argsort(chroma)[::-1])
        assert top[0] == demo.CHORD_ROOT_PC[chord], (start, chord, [names[i] for i in top[:3]])
        chord_pcs = {p % 12 for p in demo.CHORD_NOTES[chord]}
        assert set(top[:3]) == chord_pcs, (start, chord, [names[i] for i in top[:3]])


def test_loudness_follows_the_sections(bundled):
    def rms_db(bars):
        a, b = bars
        seg = bundled[round(a * demo.BAR_S * SR) : round(b * demo.BAR_S * SR)]
        return 10 * np.log10(np.mean(seg**2))

    sec = {name: (a, b) for name, a, b in demo.SECTIONS}
    intro, groove, breakdown, drop = (rms_db(sec[k]) for k in ("intro", "groove", "breakdown", "drop"))
    build_start, build_end = rms_db((10, 10.5)), rms_db((11.5, 12))
    assert breakdown < intro - 3 and breakdown < drop - 6
    assert intro < groove < drop
    assert build_end > build_start + 3


def test_main_writes_a_file(tmp_path, monkeypatch):
    out = tmp_path / "x.wav"
    monkeypatch.setattr(demo, "synthesize", lambda sample_rate=SR, seed=0: np.zeros(SR, np.float32))
    assert demo.main([str(out)]) == 0
    y, sr = sf.read(str(out))
    assert sr == SR and len(y) == SR
    assert demo.main([]) == 2
