"""Presence alert rules: ``bleeding`` (the blood class over an area of the view) and
``large_vessel`` (with the reasoner's ranked hypothesis of what it is). Each has hysteresis
(``*_frames`` to raise, absence for ``*_clear_s`` seconds to re-arm).

A mixin of ``copilot.alerts.AlertEngine``: the host provides ``cfg``, ``order``,
``hypothesis`` and the ``_may_fire`` / ``_fire`` / ``_event`` / ``_say`` helpers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from copilot.alert_rules import (
    AlertConfig,
    FrameRun,
    FrameView,
    Hysteresis,
    RaisedAlert,
    bleeding_spoken,
)
from kg_reasoning.reasoner import Step, fmt_time, position_words


class PresenceRules:
    """The bleeding and large-vessel rules."""

    cfg: AlertConfig
    order: list[str]
    hypothesis: Callable[[float], Any] | None

    def _init_presence(self) -> None:
        """Reset the rule state (runs empty, armed)."""
        self.bleed = Hysteresis()
        self.vessel = Hysteresis()

    @property
    def bleed_run(self) -> FrameRun:
        """Frames of the current bleeding run."""
        return self.bleed.run

    @property
    def vessel_run(self) -> FrameRun:
        """Frames of the current large-vessel run."""
        return self.vessel.run

    def _presence_fires(self, fv: FrameView, structure: str, h: Hysteresis, area_min: float,
                        frames: int, clear_s: float, rule: str, rearm_below: float
                        ) -> dict[str, Any] | None:
        """Track ``structure`` covering >= ``area_min`` of the view with ``h``; re-arm after
        ``clear_s`` s under ``rearm_below``. Returns the structure's findings ({} when not in
        view) when ``rule`` fires now (``h`` disarmed), else None."""
        s = fv.structures.get(structure)
        area = float(s["area"]) if s else 0.0
        if area < area_min:
            h.absent(fv.t_s, clear_s, rearm=area < rearm_below)
            return None
        h.present(fv)
        if not h.ready(frames) or not self._may_fire(rule, "", fv.t_s):
            return None
        h.armed = False
        return s or {}

    def _bleeding(self, fv: FrameView) -> list[RaisedAlert]:
        cfg = self.cfg
        b = self._presence_fires(fv, "blood", self.bleed, cfg.bleed_area, cfg.bleed_frames,
                                 cfg.bleed_clear_s, "bleeding", cfg.bleed_area / 2)
        if b is None:
            return []
        where = position_words(b.get("centroid")) if b else "in view"
        areas = [round(float(f.structures["blood"]["area"]), 4) for f in self.bleed.run]
        region = fv.region[0] if fv.region else ""
        seg = f" in the {self._say(region)}" if region in self.order else ""
        steps = [
            Step(f"Blood detected {where}{seg} in {self.bleed.run.n} frames from "
                 f"{fmt_time(self.bleed.run[0].t_s)} (area {areas[0] * 100:.1f}% to "
                 f"{areas[-1] * 100:.1f}% of the view).", True,
                 {"observations": [f.obs("structure", "blood") for f in self.bleed.run],
                  "scores": {"area": areas[-1]}}),
            Step(f"Rule: blood over {cfg.bleed_area * 100:.1f}% of the view for "
                 f"{cfg.bleed_frames} frames is a bleeding onset.", True,
                 {"rule": "bleeding onset"}),
        ]
        self._event(fv.t_s, fv.frame_id, "bleeding_onset", location=where)
        return [self._fire(RaisedAlert("bleeding", f"Bleeding {where}{seg}.", fv.t_s,
                                       fv.frame_id, steps, data={"structure": "blood"},
                                       banner="BLEEDING",
                                       spoken=bleeding_spoken(where)
                                       ))]

    def _vessel(self, fv: FrameView) -> list[RaisedAlert]:
        cfg = self.cfg
        v = self._presence_fires(fv, "large_vessel", self.vessel, cfg.vessel_area,
                                 cfg.vessel_frames, cfg.vessel_clear_s, "large_vessel",
                                 cfg.vessel_area)
        if v is None:
            return []
        where = position_words(v.get("centroid")) if v else "in view"
        steps = [Step(f"A large vessel is detected {where} in {self.vessel.run.n} frames "
                      f"from {fmt_time(self.vessel.run[0].t_s)}.", True,
                      {"observations": [f.obs("structure", "large_vessel")
                                        for f in self.vessel.run]})]
        text = f"Caution: unexpected large vessel {where}."
        data: dict[str, Any] = {"structure": "large_vessel"}
        ans = None
        if self.hypothesis is not None:
            try:
                ans = self.hypothesis(fv.t_s)
            except Exception as exc:  # noqa: BLE001 - the alert goes out without it
                steps.append(Step(f"The reasoner failed: {exc}", False, {}))
        if ans is not None:
            steps.extend(ans.steps)
            data["hypotheses"] = ans.data.get("hypotheses", [])
            if not ans.abstained and ans.data.get("hypotheses"):
                top = ans.data["hypotheses"][0]
                text += f" Most likely {top.get('article', '')}{top['label']}."
            else:
                text += " I am not sure what it is."
        self._event(fv.t_s, fv.frame_id, "large_vessel")
        top = (data.get("hypotheses") or [{}])[0].get("label", "") \
            if "Most likely" in text else ""
        # spoken short: an answer asked right after it must not wait long behind it
        spoken = f"Caution: large vessel {where.replace(' of the image', '')}."
        return [self._fire(RaisedAlert("large_vessel", text, fv.t_s, fv.frame_id, steps,
                                       data=data, banner="LARGE VESSEL" + (
                                           f": {top}" if top else ""), spoken=spoken))]
