"""The one event-matching rule shared by ``copilot bench`` and the brain benchmark
(benchmarks/copilot_bench/scoring.py), including a rule that names no event kind."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmarks.copilot_bench.scoring import (
    ALERT_KINDS,
    BRAIN_WINDOW_S,
    match_alerts,
    match_brain_alerts,
    rule_fits,
    scripted_alert_events,
)
from copilot.alerts import RULE_EVENTS


def test_a_rule_fits_exactly_the_kinds_it_declares() -> None:
    for rule, kinds in RULE_EVENTS.items():
        for kind in ALERT_KINDS:
            assert rule_fits(rule, kind) == (kind in kinds), (rule, kind)
    # a name that shares words with another kind does not fit it
    assert not rule_fits("phase_skipped", "segment_missed")


@pytest.mark.parametrize("rule", ["cvs_confirm_prompt", "", None, "unknown_rule"])
def test_a_rule_naming_no_kind_fits_no_event(rule: str | None) -> None:
    assert not any(rule_fits(rule, kind) for kind in ALERT_KINDS)


def test_copilot_bench_counts_a_no_kind_alert_as_unscripted() -> None:
    events = [{"kind": "clip_applied", "time_s": 10.0}]
    alerts = [{"rule": "cvs_confirm_prompt", "media_t_s": 10.5},
              {"rule": "clip_before_cvs", "media_t_s": 11.0}]
    m = match_alerts(events, alerts, fps=25.0)
    assert m["matched"] == 1 and m["pairs"][0][1]["rule"] == "clip_before_cvs"
    assert m["unscripted_fraction"] == 0.5
    only_prompt = match_alerts(events, alerts[:1], fps=25.0)
    assert only_prompt["matched"] == 0 and only_prompt["recall"] == 0.0


def _alert(rule: str, t: float, text: str = "") -> SimpleNamespace:
    return SimpleNamespace(rule=rule, media_t_s=t, text=text)


def test_brain_benchmark_uses_the_same_rule_and_its_window() -> None:
    truth = {"events": [{"kind": "clip_applied", "time_s": 20.0, "cvs_reached": False},
                        {"kind": "bleeding_onset", "time_s": 40.0}]}
    events = scripted_alert_events(truth)
    alerts = [_alert("cvs_confirm_prompt", 20.5),
              _alert("clip_before_cvs", 20.0 + BRAIN_WINDOW_S[0]),
              _alert("bleeding", 40.0 + BRAIN_WINDOW_S[1] + 0.01)]
    used = match_brain_alerts(events, alerts)
    assert used == {1}
    assert events[0]["alert"]["delay_s"] == BRAIN_WINDOW_S[0]
    assert events[1]["alert"] is None
