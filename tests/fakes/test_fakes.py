"""Each fake is the real interface: an instance of its base class (or the protocol's members
with the same parameters), the same call shapes, built by the same registry."""

from __future__ import annotations

import inspect
import threading
import time

import numpy as np
import pytest

from tests.fakes import FakeClock, wait_until


def _same_parameters(fake: type, real: type, names: list[str]) -> None:
    for n in names:
        got = list(inspect.signature(getattr(fake, n)).parameters)
        want = list(inspect.signature(getattr(real, n)).parameters)
        assert got == want, (fake.__name__, n, got, want)


# ---------------------------------------------------------------- clock
def test_fake_clock_is_a_clock_that_moves_only_when_told():
    from copilot.clock import Clock, ManualClock

    members = [n for n in vars(Clock) if not n.startswith("_")]
    assert sorted(members) == ["now_ns", "sleep"]
    _same_parameters(FakeClock, Clock, members)
    clock = FakeClock(start_s=2.0)
    assert isinstance(clock, ManualClock)
    assert clock.now_ns() == 2_000_000_000 and clock.monotonic() == clock.perf_counter() == 2.0
    clock.advance(0.25)
    assert clock.monotonic_ns() == 2_250_000_000 and clock.time() == 2.25
    auto = FakeClock(autoadvance=True)
    auto.sleep(1.5)
    assert auto.monotonic() == 1.5 and auto.slept_s == 1.5 and auto.sleeps == 1


def test_fake_clock_counts_sleepers_and_wakes_them_when_advanced():
    clock = FakeClock()
    woke = threading.Event()
    th = threading.Thread(target=lambda: (clock.sleep(1.0), woke.set()))
    th.start()
    wait_until(lambda: clock.sleepers == 1, 10.0, what="the thread to sleep on the clock")
    clock.advance(0.5)
    assert not woke.wait(0.1) and clock.sleepers == 1  # half way: still asleep
    assert clock.sleeps == 1  # one call, not a new one per advance
    clock.advance(0.5)
    th.join(10.0)
    assert woke.is_set() and clock.sleepers == 0


def test_fake_clock_lockstep_one_advance_per_sleep_is_never_lost():
    """A test that advances once per sleep it sees drives a sleeping loop in lockstep: a
    counted sleep's wake-up time is fixed before the advance can run (else one advance
    could land before the sleeper reads the time, and both would wait for ever)."""
    clock = FakeClock()
    rounds = 200
    th = threading.Thread(target=lambda: [clock.sleep(0.02) for _ in range(rounds)])
    th.start()
    for n in range(1, rounds + 1):
        wait_until(lambda n=n: clock.sleeps == n, 10.0, what=f"sleep {n}")
        clock.advance(0.02)
    th.join(10.0)
    assert not th.is_alive() and clock.slept == [0.02] * rounds
    assert clock.now_ns() == rounds * 20_000_000 and clock.sleepers == 0


def test_fake_clock_stands_in_for_one_modules_time(monkeypatch):
    from speech import tts

    clock = FakeClock(start_s=100.0).install(monkeypatch, tts, ["perf_counter"])
    assert tts.time.perf_counter() == 100.0
    assert tts.time.monotonic() != 100.0 and tts.time.strftime("%Y")  # the rest is real
    assert time.perf_counter() != 100.0  # other modules keep the real clock
    clock.advance(1.0)
    assert tts.time.perf_counter() == 101.0
    with pytest.raises(ValueError, match="gmtime"):
        clock.time_module(["gmtime"])


def test_wait_until_polls_and_fails_with_what_it_waited_for():
    hits: list[int] = []
    threading.Timer(0.05, lambda: hits.append(1)).start()
    wait_until(lambda: hits, 10.0)
    with pytest.raises(AssertionError, match="the impossible"):
        wait_until(lambda: False, 0.05, what="the impossible")


# ---------------------------------------------------------------- ASR
def test_fake_asr_is_an_asr_backend(monkeypatch):
    from speech.asr import ASR, ASR_BACKENDS, Transcript, Utterance, create_asr
    from tests.fakes.speech import FakeASR, FakeUtterance, register

    _same_parameters(FakeASR, ASR, ["start", "transcribe"])
    _same_parameters(FakeUtterance, Utterance, ["feed", "finish", "partial"])
    register(monkeypatch, ASR_BACKENDS, "fake", FakeASR)
    asr = create_asr("fake", texts=["copilot what phase are we in"])
    assert isinstance(asr, ASR) and asr.name == "fake"
    u = asr.start(1.0)
    assert isinstance(u, Utterance) and u.partial() is None
    u.feed(np.zeros(8000, np.float32))
    assert u.partial() == ("copilot what phase are we in", 0.0)
    t = u.finish()
    assert isinstance(t, Transcript) and t.accepted and t.backend == "fake"
    assert (t.text, t.start_s, t.end_s, t.confidence) == ("copilot what phase are we in",
                                                          1.0, 1.5, 0.9)
    rest = asr.transcribe(np.zeros(16000, np.float32), start_s=3.0)  # the base class's path
    assert not rest.accepted and rest.reason == "no speech" and rest.duration_s == 1.0
    assert asr.start().finish().reason == "no audio"
    assert asr.finished == [(1.0, 8000), (3.0, 16000), (0.0, 0)]
    monkeypatch.undo()
    assert "fake" not in ASR_BACKENDS.names()  # registered for one test only


# ---------------------------------------------------------------- TTS and sink
def test_fake_tts_is_a_tts_backend_with_exact_latency(monkeypatch):
    from speech import tts as tts_mod
    from speech.tts import TTS, TTS_BACKENDS, Speech, create_tts
    from tests.fakes.speech import FakeTTS, register

    _same_parameters(FakeTTS, TTS, ["stream", "synthesize"])
    clock = FakeClock().install(monkeypatch, tts_mod, ["perf_counter"])
    register(monkeypatch, TTS_BACKENDS, "fake", FakeTTS)
    tts = create_tts("fake", chunks=4, chunk_s=0.1, rate=22050, clock=clock, chunk_cost_s=0.02)
    assert isinstance(tts, TTS) and tts.name == "fake"
    sp = tts.synthesize("  the cystic   duct ")
    assert isinstance(sp, Speech) and sp.text == "the cystic duct" == tts.texts[-1]
    assert sp.rate == 22050 and len(sp.audio) == 4 * 2205 and sp.audio.dtype == np.float32
    assert sp.first_audio_s == pytest.approx(0.02) and sp.total_s == pytest.approx(0.08)
    assert tts.finished.is_set() and tts.closed.is_set() and tts.produced == 4


def test_fake_tts_pauses_mid_stream_until_released():
    from tests.fakes.speech import FakeTTS

    tts = FakeTTS(chunks=3, pause_after=1)
    stream = tts.stream("hello")
    next(stream)
    got: list[np.ndarray] = []
    th = threading.Thread(target=lambda: got.extend(stream))
    th.start()
    assert not tts.finished.wait(0.1) and tts.produced == 1
    tts.release()
    th.join(10.0)
    assert len(got) == 2 and tts.finished.is_set()
    cut = tts.stream("again")
    next(cut)
    cut.close()
    assert tts.closed.is_set() and not tts.finished.is_set()


def test_fake_sink_is_a_sink():
    from speech.audio_out import Sink
    from tests.fakes.speech import FakeSink

    _same_parameters(FakeSink, Sink, ["write", "close"])
    seen: list[int] = []
    sink = FakeSink(on_write=lambda b: seen.append(len(b)))
    assert isinstance(sink, Sink)
    sink.write(np.zeros(800, np.float32), 16000)
    sink.write(np.zeros(80, np.float32), 16000)
    sink.close()
    assert sink.writes == [(800, 16000), (80, 16000)] and sink.samples == 880 == sum(seen)
    assert sink.closed


# ---------------------------------------------------------------- vision runtime
def test_fake_runtime_is_an_encoder_runtime_with_the_real_output_shapes(monkeypatch):
    from tests.fakes.vision import FakeEncoderRuntime, register
    from vision.models import OUTPUT_NAMES
    from vision.runtimes import EncoderRuntime, create_runtime

    _same_parameters(FakeEncoderRuntime, EncoderRuntime, ["run", "describe"])
    register(monkeypatch)
    fake = create_runtime("fake", None, threads=2)  # the shipped model's config.json
    real = create_runtime("onnxruntime", None, threads=1)
    assert isinstance(fake, FakeEncoderRuntime) and isinstance(fake, EncoderRuntime)
    assert fake.input_size == real.input_size and fake.describe() == "fake (fake, threads=2)"
    w, h = fake.input_size
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, h, w)).astype(np.float32)
    got, want = fake.run(x), real.run(x)
    assert list(got) == list(OUTPUT_NAMES) and set(want) == set(OUTPUT_NAMES)
    for name in OUTPUT_NAMES:
        g, r = got[name], want[name]
        assert g.dtype == r.dtype, name
        same = g.shape if name != "features" else g.shape[:1] + g.shape[2:]
        assert same == (r.shape if name != "features" else r.shape[:1] + r.shape[2:]), name
    assert fake.calls == 1
    with pytest.raises(Exception, match="expected float32"):
        fake.run(x[:, :, :-1])


def test_fake_runtime_drives_the_real_vision_pipeline():
    from tests.fakes.vision import FakeEncoderRuntime
    from vision.pipeline import VisionPipeline

    rt = FakeEncoderRuntime(seg_class="gallbladder", phase=2, region=3, tools=["Grasper"])
    pipe = VisionPipeline(rt)
    rgb = np.full((120, 160, 3), 128, np.uint8)
    r = pipe.process(rgb, frame_id=7, timestamp_s=0.0)
    assert r.frame_id == 7 and rt.calls == 1
    assert [f.name for f in r.findings] == ["gallbladder"]
    assert r.findings[0].area_fraction == pytest.approx(0.25)
    assert max(r.phase_frame, key=r.phase_frame.get) == r.phase_names[2]
    assert max(r.region_frame, key=r.region_frame.get) == r.region_names[3]
    assert r.tools["Grasper"] == pytest.approx(0.9) and r.tools["Hook"] < 0.5
    with pytest.raises(Exception, match="unknown tools"):
        FakeEncoderRuntime(tools=["scalpel"])
