"""copilot.media_clock: the audio's release times and where the copilot's replies start on
the feed's time line."""

from __future__ import annotations

from copilot.clock import ManualClock
from copilot.media_clock import MediaClock
from copilot.tracing import Tracer


def _mc(realtime: bool, live: bool = False, speed: float = 1.0) -> MediaClock:
    clock = ManualClock(start_ns=10_000_000_000)
    return MediaClock(clock, Tracer(None, clock), realtime, live, speed)


def test_audio_clock_is_known_only_when_paced_and_started():
    mc = _mc(realtime=True, speed=2.0)
    assert mc.audio_clock_ns(1.0) is None  # the audio has not started
    mc.audio_t0_ns = 5_000_000_000
    assert mc.audio_clock_ns(1.0) == 5_500_000_000  # 1 media s at 2x speed
    fast = _mc(realtime=False)
    fast.audio_t0_ns = 0
    assert fast.audio_clock_ns(1.0) is None  # fast mode: media time is not clock time
    live = _mc(realtime=False, live=True)
    live.audio_t0_ns = 0
    assert live.audio_clock_ns(0.25) == 250_000_000


def test_a_reply_starts_after_its_trigger_by_the_time_it_took():
    mc = _mc(realtime=False)
    mc.note_trigger("u1", (4.0, 9_000_000_000))  # triggered 1 s of clock ago at media 4 s
    assert mc.speech_start("u1", media_now_s=30.0) == 5.0
    assert mc.speech_start("other", media_now_s=30.0) == 30.0  # no trigger: now
    assert mc.tracer.keys() == ["tts.first_audio"]


def test_realtime_replies_start_at_the_newest_frame():
    mc = _mc(realtime=True)
    mc.note_trigger("u1", (4.0, 9_000_000_000))
    assert mc.speech_start("u1", media_now_s=7.5) == 7.5
    assert mc.speech_start("u1", media_now_s=-1.0) == 0.0
