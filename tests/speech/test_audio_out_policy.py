"""The voice's queue policy for a busy operating room: answers superseded by newer ones,
stale answers expired, and the hold for a person speaking bounded per message. Real
espeak-ng speech into a paced null sink (the policy is the runtime's own logic)."""

from __future__ import annotations

import time

import pytest

from speech.audio_out import AudioOut, NullSink, Priority
from speech.tts import EspeakTTS
from tests.fakes import FakeClock, wait_until


def _wait_history(out: AudioOut, n: int, timeout_s: float = 20.0) -> None:
    end = time.monotonic() + timeout_s
    while len(out.history) < n and time.monotonic() < end:
        time.sleep(0.02)


def test_a_new_answer_supersedes_the_one_being_spoken_and_older_queued_ones():
    sink = NullSink(speed=1.0)
    out = AudioOut(EspeakTTS(speed=160), sink, supersede=True)
    try:
        out.say("the first answer is a rather long sentence about the calot triangle",
                Priority.ANSWER)
        wait_until(lambda: sink.samples > 0, 20.0, what="the first answer to play")
        out.say("warning bleeding", Priority.ALERT)  # alerts are never superseded
        out.say("second answer", Priority.ANSWER)
        out.say("third answer", Priority.ANSWER)  # drops the queued second one
        assert out.wait_idle(30)
        got = [(p.text, p.outcome) for p in out.history]
        assert got[0][1] == "preempted" or got[0][1] == "superseded", got
        assert ("second answer", "superseded") in got
        assert ("warning bleeding", "done") in got and ("third answer", "done") in got
        assert got[-1] == ("third answer", "done")
        assert not any(t.startswith("the first") and o == "done" for t, o in got)
    finally:
        out.close()


@pytest.mark.timeout(120)  # wait_idle times out on the fake clock, which stands still
def test_answers_not_started_within_the_ttl_expire_but_alerts_do_not():
    clock = FakeClock()  # the queue's time: the TTL is measured on it
    out = AudioOut(EspeakTTS(speed=300), NullSink(speed=4.0), clock=clock.monotonic, ttl_s=0.3)
    try:
        out.user_speaking(True)  # unbounded hold: nothing but alerts may start
        out.say("an answer that waits too long", Priority.ANSWER)
        out.say("some information", Priority.INFO)
        clock.advance(0.5)
        out.say("warning bleeding", Priority.ALERT)
        _wait_history(out, 1)
        out.user_speaking(False)
        assert out.wait_idle(20)
        got = {p.text: p.outcome for p in out.history}
        assert got == {"warning bleeding": "done", "an answer that waits too long": "expired",
                       "some information": "expired"}
        assert out.expired == 2 and out.last_spoken.text == "warning bleeding"
    finally:
        out.close()


@pytest.mark.timeout(120)  # a hold that is not bounded leaves the fake clock unadvanced
def test_hold_for_a_person_speaking_is_bounded_per_message():
    """Staff chatter that never stops delays a message by at most max_hold_s in all: before
    it starts (counted from when it was queued) and again while it plays. The queue's clock
    is a FakeClock that only the chatter below moves, so the bounds are exact."""
    clock = FakeClock()
    hold_s, step_s = 0.5, 0.02  # AudioOut's hold loop pauses 0.02 s at a time
    out = AudioOut(EspeakTTS(speed=200), NullSink(speed=4.0), clock=clock.monotonic,
                   sleep=clock.sleep, max_hold_s=hold_s)
    try:
        out.user_speaking(True)
        out.say("copilot answer during chatter", Priority.ANSWER)
        for _ in range(5):  # a new utterance every 0.1 s: the per-utterance hold restarts
            clock.advance(0.1)
            out.user_speaking(True)
        # time stands still at 0.5 s, a person still speaking: only the per-message bound
        # lets it start (an unbounded hold never does, and this wait fails)
        wait_until(lambda: out.current is not None or out.history, 20.0,
                   what="the message to start after max_hold_s of chatter")
        # playing: the chatter goes on (a new utterance every 0.1 s); the clock moves one
        # pause at a time, as the player pauses, for at most 3 s
        seen, steps = 0, 0
        while not out.history and steps < 150:
            wait_until(lambda s=seen: clock.sleeps > s or out.history, 20.0,
                       what="the player to pause or finish")
            if clock.sleeps > seen:
                seen = clock.sleeps
                clock.advance(step_s)
                steps += 1
                if steps % 5 == 0:
                    out.user_speaking(True)
        assert out.history, f"still held after {steps * step_s:.2f} s of chatter while playing"
        p = out.history[0]
        assert p.outcome == "done"
        assert p.t_start == pytest.approx(hold_s, abs=1e-9), p  # held exactly max_hold_s
        spoken_s = p.t_end - p.t_start  # the clock moved only while the player paused
        assert hold_s - 1e-9 <= spoken_s <= hold_s + step_s + 1e-9, (p, spoken_s)
    finally:
        out.user_speaking(False)
        clock.advance(60.0)  # release a player still paused on the clock
        out.close()
