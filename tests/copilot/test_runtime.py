"""Runtime logic with a fake clock: queue policies, drop counting, restart, watchdog."""

from __future__ import annotations

import threading
import time

import pytest

from copilot.errors import CopilotError
from copilot.messages import Message, Priority, VideoFrame
from copilot.queues import Closed, EdgeQueue, LatestSlot, Policy
from copilot.runtime import (
    FaultSpec,
    FaultyStage,
    RestartPolicy,
    Stage,
    StageRunner,
    Watchdog,
    take_from,
)
from copilot.tracing import Tracer, read_trace
from tests.fakes import FakeClock


def _msg(i: int) -> Message:
    return Message(t_ns=i, trace_id=f"m{i}", media_t_s=i / 30)


def _wait(cond, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    return False


def test_latest_edge_drops_oldest_and_counts():
    q: EdgeQueue[int] = EdgeQueue("video", Policy.LATEST, 2)
    for i in range(5):
        assert q.put(i)
    assert q.stats.dropped == 3 and len(q) == 2
    assert [q.get(0), q.get(0)] == [3, 4]
    with pytest.raises(TimeoutError):
        q.get(0.01)
    q.close()
    with pytest.raises(Closed):
        q.get(0.01)
    assert not q.put(9)


def test_lossless_edge_alarms_and_waits_for_room():
    q: EdgeQueue[int] = EdgeQueue("audio", Policy.LOSSLESS, 2)
    assert q.put(1) and q.put(2)
    assert not q.put(3, timeout=0.01)  # full: the producer would wait; nothing dropped
    assert q.stats.alarms == 1 and q.stats.dropped == 0
    done = threading.Event()

    def producer() -> None:
        q.put(3)
        done.set()

    threading.Thread(target=producer, daemon=True).start()
    assert not done.wait(0.05)
    assert q.get(0) == 1
    assert done.wait(2)
    assert [q.get(0), q.get(0)] == [2, 3]
    assert q.snapshot()["max_depth"] == 2


def test_priority_edge_serves_safety_first_and_drops_least_urgent():
    q: EdgeQueue[str] = EdgeQueue("control", Policy.PRIORITY, 3)
    q.put("info", Priority.INFO)
    q.put("answer", Priority.ANSWER)
    q.put("info2", Priority.INFO)
    assert q.put("alert", Priority.SAFETY)  # full: the oldest least urgent goes
    assert q.stats.dropped == 1
    assert q.put("info3", Priority.INFO)  # same level: the older information goes
    assert q.stats.dropped == 2
    assert [q.get(0) for _ in range(3)] == ["alert", "answer", "info3"]
    for i in range(3):
        q.put(f"alert{i}", Priority.SAFETY)
    assert not q.put("late info", Priority.INFO)  # less urgent than everything queued
    assert [q.get(0) for _ in range(3)] == ["alert0", "alert1", "alert2"]


def test_latest_slot_counts_frames_nobody_took():
    slot: LatestSlot[int] = LatestSlot()
    take = take_from(slot)
    slot.put(1)
    slot.put(2)
    assert take(0.01) == 2
    assert slot.dropped == 1
    with pytest.raises(TimeoutError):
        take(0.01)  # nothing newer
    slot.put(3)
    assert take(0.01) == 3
    slot.close()
    with pytest.raises(Closed):
        take(0.01)


def test_fault_spec_parse():
    assert FaultSpec.parse("vision:hang:2.5") == FaultSpec("vision", "hang", 2.5)
    assert FaultSpec.parse("speech:raise").after_s == 0.0
    for bad in ("vision", "vision:explode", "vision:slow:soon", ":raise", "a:raise:-1"):
        with pytest.raises(CopilotError):
            FaultSpec.parse(bad)


class Echo(Stage):
    name = "echo"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def setup(self) -> None:
        self.log.append("setup")

    def process(self, msg: Message) -> Message:
        return msg


def test_restart_with_backoff_on_the_manual_clock(tmp_path):
    clock = FakeClock()
    stop = threading.Event()
    q: EdgeQueue[Message] = EdgeQueue("in", Policy.LOSSLESS, 16)
    out: list[Message] = []
    log: list[str] = []
    spec = FaultSpec("echo", "raise", after_s=1.0)
    tracer = Tracer(tmp_path / "t.jsonl", clock)
    runner = StageRunner(
        "echo", lambda: FaultyStage(Echo(log), spec, clock, 0, stop), q.get, out.append, tracer,
        clock, restart=RestartPolicy(base_s=0.5, cap_s=4.0), stop_event=stop,
    )
    runner.start()
    q.put(_msg(0))
    assert _wait(lambda: len(out) == 1)  # before AFTER_SECONDS the stage works
    clock.advance(1.0)
    q.put(_msg(1))
    assert _wait(lambda: runner.health.errors == 1)
    assert runner.health.state == "restarting"
    assert _wait(lambda: clock.sleepers == 1)  # the runner waits on the clock
    assert runner.health.restarts == 0  # waiting 0.5 s of *clock* time, which has not passed
    clock.advance(0.5)
    assert _wait(lambda: runner.health.restarts == 1 and log.count("setup") == 2)
    q.put(_msg(2))  # still armed: the restarted stage fails again, next backoff is 1.0 s
    assert _wait(lambda: runner.health.errors == 2)
    assert _wait(lambda: clock.sleepers == 1)
    n = clock.sleeps
    clock.advance(0.6)
    assert _wait(lambda: clock.sleeps > n)  # it saw the new time and sleeps on
    assert runner.health.restarts == 1
    clock.advance(0.5)
    assert _wait(lambda: runner.health.restarts == 2)
    assert RestartPolicy(0.5, 4.0).delay(10) == 4.0
    stop.set()
    runner.stop()
    tracer.close()
    names = [r["name"] for r in read_trace(tmp_path / "t.jsonl")]
    assert names.count("error") == 2 and names.count("restart") == 2


def test_restart_policy_gives_up_after_max_restarts():
    clock = FakeClock(autoadvance=True)
    stop = threading.Event()
    q: EdgeQueue[Message] = EdgeQueue("in", Policy.LOSSLESS, 16)
    spec = FaultSpec("echo", "raise")
    runner = StageRunner(
        "echo", lambda: FaultyStage(Echo([]), spec, clock, 0, stop), q.get, lambda m: None,
        Tracer(None, clock), clock, restart=RestartPolicy(max_restarts=2), stop_event=stop,
    )
    runner.start()
    for i in range(5):
        q.put(_msg(i))
    assert _wait(lambda: runner.health.state == "failed")
    assert runner.health.restarts == 2 and runner.health.errors == 3
    runner.stop()


def test_watchdog_marks_hung_stage_and_replaces_the_worker():
    clock = FakeClock()
    stop = threading.Event()
    slot: LatestSlot[Message] = LatestSlot()
    out: list[Message] = []
    calls = []

    class HangOnce(Stage):
        name = "vision"

        def process(self, msg: Message) -> Message:
            calls.append(msg.trace_id)
            if len(calls) == 1:
                stop.wait()  # the first call never returns
            return msg

    tracer = Tracer(None, clock)
    runner = StageRunner("vision", HangOnce, take_from(slot), out.append, tracer, clock,
                         stop_event=stop)
    dog = Watchdog([runner], tracer, clock, hang_s=2.0)
    runner.start()
    slot.put(_msg(0))
    assert _wait(lambda: runner.health.busy_since_ns is not None)
    clock.advance(1.0)
    assert dog.check() == []  # not yet
    clock.advance(1.5)
    assert dog.check() == ["vision"]
    assert runner.health.state == "hung" and runner.health.hangs == 1
    slot.put(_msg(1))  # the fresh worker takes the next frame
    assert _wait(lambda: [m.trace_id for m in out] == ["m1"])
    assert runner.health.state == "ok"
    stop.set()
    runner.stop(0.5)
    assert runner.health.state == "stopped"  # the live worker finished; the old one is gone


def test_stop_marks_a_worker_that_does_not_finish_as_hung():
    clock = FakeClock()
    stop = threading.Event()
    release = threading.Event()
    slot: LatestSlot[Message] = LatestSlot()

    class Stuck(Stage):
        name = "vision"

        def process(self, msg: Message) -> Message:
            release.wait(10)  # ignores the stop request
            return msg

    tracer = Tracer(None, clock)
    runner = StageRunner("vision", Stuck, take_from(slot), lambda m: None, tracer, clock,
                         stop_event=stop)
    runner.start()
    slot.put(_msg(0))
    assert _wait(lambda: runner.health.busy_since_ns is not None)
    runner.stop(0.2)
    assert runner.health.state == "hung" and runner.health.hangs == 1
    assert tracer.keys() == ["vision.hung"]
    release.set()


def test_slow_fault_sleeps_on_the_clock():
    clock = FakeClock(autoadvance=True)
    stage = FaultyStage(Echo([]), FaultSpec("echo", "slow"), clock, 0, threading.Event())
    frame = VideoFrame(t_ns=0, trace_id="f0", frame_id=0, image=None, fps=30.0)  # type: ignore[arg-type]
    assert stage.process(frame) is frame
    assert clock.now_ns() == int(0.25 * 1e9)


def test_tracer_percentiles_and_jsonl(tmp_path):
    clock = FakeClock()
    tr = Tracer(tmp_path / "trace.jsonl", clock)
    for i in range(100):
        tr.span("decode", "frame", f"f{i}", i * 1_000_000, i * 1_000_000 + (i + 1) * 100_000,
                frame_id=i)
    tr.event("vision", "hung")
    tr.close()
    p = tr.percentiles("decode.frame")
    assert p["n"] == 100 and 4.9 < p["p50"] < 5.2 and p["p99"] == pytest.approx(9.9, abs=0.02)
    recs = read_trace(tmp_path / "trace.jsonl")
    assert len(recs) == 101 and recs[0]["frame_id"] == 0 and recs[-1]["name"] == "hung"
    with open(tmp_path / "trace.jsonl", "a") as fh:
        fh.write('{"cut by a cra')  # a crash mid-line is tolerated
    assert len(read_trace(tmp_path / "trace.jsonl")) == 101


def test_spoken_text_is_the_short_form_of_an_answer():
    from copilot.app import spoken_text
    from copilot.messages import Alert, Answer

    def ans(text: str, spoken: str = "") -> Answer:
        return Answer(t_ns=0, trace_id="u1", media_t_s=0.0, question="q", text=text,
                      confidence=1.0, spoken=spoken)

    assert spoken_text(ans("We are in the calot triangle dissection phase, since 0:02. Next "
                           "expected: clipping and cutting.")) == (
        "We are in the calot triangle dissection phase, since 0:02.")
    long_cvs = ("No, the critical view of safety is not reached: hepatocystic triangle cleared "
                "of fat and fibrous tissue and lower third of the gallbladder not yet.")
    assert spoken_text(ans(long_cvs)) == "No, the critical view of safety is not reached."
    assert spoken_text(ans("Caution: bleeding.")) == "Caution: bleeding."  # short: as is
    unsure = ("I am not sure: I see a large vessel next to the duodenum and the pancreas, the "
              "aorta and the jejunum; it could be the superior mesenteric vein or the inferior "
              "vena cava.")
    assert spoken_text(ans(unsure)) == (
        "I am not sure; it could be the superior mesenteric vein or the inferior vena cava.")
    assert spoken_text(ans(long_cvs, spoken="Not yet.")) == "Not yet."
    alert = Alert(t_ns=0, trace_id="a1", media_t_s=0.0, rule="clip_before_cvs",
                  text="Caution: clipping before the critical view of safety. Lower third of "
                       "the gallbladder separated from the liver bed not met.")
    assert spoken_text(alert) == "Caution: clipping before the critical view of safety."
    seg = Alert(t_ns=0, trace_id="a2", media_t_s=0.0, rule="segment_not_seen",
                text="Bowel segment not seen: the second part of the duodenum (seen only 0.1 s "
                     "of the 2 s needed) between the first and the third part, skipped.")
    assert spoken_text(seg) == seg.text  # an alert keeps what follows its colon
