"""The alert engine's dedup and mute state (copilot.alert_gate) and its frame runs
(copilot.alert_rules.FrameRun)."""

from __future__ import annotations

from copilot.alert_gate import HISTORY_MAX, AlertGate
from copilot.alert_rules import AlertConfig, FrameRun, Hysteresis, RaisedAlert


def _alert(rule: str, t: float, key: str = "") -> RaisedAlert:
    return RaisedAlert(rule, "text", t, 0, [], key=key)


def test_cooldown_is_per_rule_and_key() -> None:
    gate = AlertGate(AlertConfig(cooldown_s={"bleeding": 60.0}))
    assert gate.may_fire("bleeding", "", 0.0)
    gate.fire(_alert("bleeding", 10.0))
    assert not gate.may_fire("bleeding", "", 69.9)
    assert gate.may_fire("bleeding", "", 70.0)
    assert gate.may_fire("bleeding", "other", 11.0)  # another key: its own cooldown
    gate.fire(_alert("phase_skipped", 10.0, "a"))
    assert gate.may_fire("phase_skipped", "a", 10.0)  # no cooldown configured for the rule


def test_acknowledged_alert_stays_quiet_for_ack_quiet_s() -> None:
    gate = AlertGate(AlertConfig(cooldown_s={}, ack_quiet_s=300.0))
    a = gate.fire(_alert("large_vessel", 5.0))
    gate.acknowledge(a, 20.0)
    assert not gate.may_fire("large_vessel", "", 319.0)
    assert gate.may_fire("large_vessel", "", 320.0)


def test_fire_sets_the_level_from_the_rule_table_and_keeps_the_newest() -> None:
    gate = AlertGate(AlertConfig())
    assert gate.fire(_alert("segment_missed", 1.0)).level == "warning"
    assert gate.fire(_alert("bleeding", 2.0)).level == "alert"
    assert gate.fire(_alert("no_such_rule", 3.0)).level == "alert"
    for i in range(HISTORY_MAX + 5):
        gate.fire(_alert("phase_skipped", 10.0 + i, str(i)))
    assert len(gate.history) == HISTORY_MAX
    assert gate.history[-1].key == str(HISTORY_MAX + 4)


def test_frame_run_counts_all_and_keeps_the_first_and_newest() -> None:
    run = FrameRun()
    for i in range(100):
        run.append(i)
    assert run.n == 100
    assert len(run) == FrameRun.keep
    assert run[0] == 0 and run[-1] == 99 and run[1] == 100 - FrameRun.keep + 1


class _F:
    def __init__(self, t_s: float) -> None:
        self.t_s = t_s


def test_hysteresis_raises_after_a_run_and_rearms_after_clear_s() -> None:
    h = Hysteresis()
    h.present(_F(0.0))
    assert not h.ready(2)
    h.present(_F(0.2))
    assert h.ready(2)
    h.armed = False  # the rule fired
    h.absent(5.0, clear_s=10.0)
    assert h.run.n == 0 and not h.armed  # absent, but not for long enough
    h.absent(10.3, clear_s=10.0, rearm=False)
    assert not h.armed  # e.g. still above the re-arm level
    h.absent(10.3, clear_s=10.0)
    assert h.armed
