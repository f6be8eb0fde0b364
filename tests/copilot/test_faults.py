"""copilot.faults: --inject-fault parsing, the InlineStage's retries, Guarded, FaultLog."""

from __future__ import annotations

import threading

import pytest

from copilot.clock import ManualClock
from copilot.errors import CopilotError
from copilot.faults import FaultLog, Guarded, InlineStage, parse_faults
from copilot.runtime import FaultSpec, InjectedFault
from copilot.tracing import Tracer


def _stage(fault: FaultSpec | None = None) -> InlineStage:
    clock = ManualClock(autoadvance=True)
    return InlineStage("overlay", Tracer(None, clock), clock, fault, 0, threading.Event())


def test_parse_faults_keys_by_stage_and_names_the_stages_on_a_bad_one():
    spec = FaultSpec("tts", "slow")
    got = parse_faults(["vision:hang:2.5", spec])
    assert got["vision"] == FaultSpec("vision", "hang", after_s=2.5)
    assert got["tts"] is spec
    with pytest.raises(CopilotError, match="STAGE must be one of decode, vision"):
        parse_faults(["camera:raise"])


def test_inline_stage_retries_an_injected_raise_and_counts_it():
    st = _stage(FaultSpec("overlay", "raise"))
    assert st.call(lambda: 7) == 7  # call 1 of every 20 fails once, then succeeds
    h = st.health
    assert (h.errors, h.restarts, h.processed, h.state) == (1, 1, 1, "ok")
    for _ in range(18):
        st.call(lambda: None)
    assert st.health.errors == 1  # calls 2..19 run clean
    st.call(lambda: None)
    assert st.health.errors == 1 and st.health.processed == 20
    st.call(lambda: None)  # call 21: fails on its first try again
    assert st.health.errors == 2


def test_inline_stage_gives_up_after_its_attempts():
    st = _stage()

    def boom() -> None:
        raise InjectedFault("x")

    with pytest.raises(InjectedFault):
        st.call(boom, attempts=3)
    assert st.health.errors == 3 and st.health.restarts == 2
    assert st.health.busy_since_ns is None  # not left looking hung


def test_guarded_runs_named_methods_under_the_stage_and_wraps_their_sessions():
    class Session:
        def feed(self, x: int) -> int:
            return x + 1

    class Asr:
        name = "fake"

        def start(self) -> Session:
            return Session()

    st = _stage()
    g = Guarded(Asr(), st, frozenset({"start"}), frozenset({"feed"}))
    assert g.name == "fake"  # other attributes pass through
    session = g.start()
    assert isinstance(session, Guarded)
    assert session.feed(1) == 2
    assert st.health.processed == 2  # start and feed ran under the stage
    assert st.tracer.keys() == ["overlay.feed", "overlay.start"]


def test_fault_log_writes_fault_events_up_to_its_cap_and_counts_all():
    written: list[tuple[str, dict]] = []
    flog = FaultLog(lambda kind, **rec: written.append((kind, rec)), lambda: 1.23456)
    flog.MAX_RECORDS = 2
    flog("vision", "start", {})  # not a fault event
    for _ in range(3):
        flog("vision", "hung", {"after_s": 2.0, "obj": object()})
    flog("asr", "error", {"error": "boom"})
    assert [r["event"] for _, r in written] == ["hung", "hung", "error"]
    assert written[0] == ("fault", {"media_t_s": 1.235, "stage": "vision", "event": "hung",
                                    "after_s": 2.0})  # only plain values are kept
    assert flog.summary() == {"asr.error": 1, "vision.hung": 3}
