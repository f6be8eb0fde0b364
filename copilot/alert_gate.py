"""Dedup and mute state of the alert engine: the cooldown per (rule, key), the surgeon's
acknowledgements and the newest alerts raised (times in media seconds)."""

from __future__ import annotations

from collections import deque

from copilot.alert_rules import LEVELS, AlertConfig, RaisedAlert

#: Alerts kept in ``AlertEngine.history`` (the session log has them all).
HISTORY_MAX = 256


class AlertGate:
    """Whether a (rule, key) may fire now; records what fired and what was acknowledged."""

    def __init__(self, cfg: AlertConfig) -> None:
        self.cfg = cfg
        self.history: deque[RaisedAlert] = deque(maxlen=HISTORY_MAX)  # newest alerts
        self._last: dict[tuple[str, str], float] = {}
        self._acked: dict[tuple[str, str], float] = {}

    def may_fire(self, rule: str, key: str, t: float) -> bool:
        """False within the rule's cooldown of its last alert, or ``ack_quiet_s`` of an
        acknowledgement, for the same key."""
        last = self._last.get((rule, key))
        if last is not None and t - last < self.cfg.cooldown_s.get(rule, 0.0):
            return False
        ack = self._acked.get((rule, key))
        return not (ack is not None and t - ack < self.cfg.ack_quiet_s)

    def fire(self, a: RaisedAlert) -> RaisedAlert:
        """Set ``a``'s level from the rule table and record it as fired."""
        a.level = LEVELS.get(a.rule, "alert")
        self._last[(a.rule, a.key)] = a.t_s
        self.history.append(a)
        return a

    def acknowledge(self, alert: RaisedAlert, t_s: float) -> None:
        """The surgeon acknowledged ``alert``: that rule + key stays quiet for a while."""
        self._acked[(alert.rule, alert.key)] = t_s
