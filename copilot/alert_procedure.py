"""Alert rules of the cholecystectomy procedure: the critical view of safety (CVS, latched
or the surgeon's confirmation), ``clip_before_cvs`` and ``phase_skipped`` (procedure model
of the knowledge graph). Times are media seconds, scores probabilities 0-1.

A mixin of ``copilot.alerts.AlertEngine``: the host provides ``kg``, ``cfg``, ``rules``,
``cvs_policy`` and the ``_may_fire`` / ``_fire`` / ``_event`` bookkeeping.
"""

from __future__ import annotations

from typing import Any

from copilot.alert_rules import AlertConfig, FrameView, Hysteresis, RaisedAlert
from kg_reasoning.graph import KnowledgeGraph
from kg_reasoning.reasoner import Step, fmt_time, join_words


class ProcedureRules:
    """CVS state, the clip-before-CVS rule and the phase-order rule."""

    kg: KnowledgeGraph
    cfg: AlertConfig
    rules: frozenset[str] | None
    cvs_policy: Any | None

    def _init_procedure(self, kg: KnowledgeGraph) -> None:
        """Read the procedure model and the CVS criteria from ``kg``; reset the rule state."""
        proc = kg.procedures.get("laparoscopic_cholecystectomy", {})
        self.phases = [p["name"] for p in proc.get("phases", [])]
        self.optional = {p["name"] for p in proc.get("phases", []) if p.get("optional")}
        self.rule_text = (proc.get("rules") or [{}])[0].get(
            "text", "no clipping or cutting before the critical view of safety is reached")
        self.rule_src = (proc.get("rules") or [{}])[0].get("src", "")
        cvs = kg.cvs
        self.cvs_names = [c["name"] for c in cvs.get("criteria", [])]
        self.cvs_spoken = {c["name"]: c.get("spoken", c["name"]) for c in cvs.get("criteria", [])}
        self.cvs_thr = float(cvs.get("threshold", 0.5))
        # rule state
        self.cvs_run = 0
        self.cvs_reached_t: float | None = None
        self.cvs_latest: dict[str, float] = {}
        self.clip = Hysteresis()  # the clip applier in view
        self.clip_seen = False
        self.clip_struct_run = 0
        self.phase_run: tuple[str, int, float] = ("", 0, 0.0)
        self.entered: dict[str, float] = {}
        self.max_phase_idx = -1

    @property
    def cvs_by_surgeon(self) -> bool:
        """True when only the surgeon's confirmation counts as CVS (``CvsPolicy``)."""
        return self.cvs_policy is not None and self.cvs_policy.surgeon

    @property
    def cvs_reached(self) -> bool:
        """Has the critical view of safety been reached (latched; or, when the surgeon
        decides, is the surgeon's latest statement "confirmed")?"""
        if self.cvs_by_surgeon:
            return self.cvs_policy.state is True
        return self.cvs_reached_t is not None

    def _cvs(self, fv: FrameView) -> None:
        if not fv.cvs:
            return
        self.cvs_latest = dict(fv.cvs)
        met = all(fv.cvs.get(n, 0.0) >= self.cvs_thr for n in self.cvs_names)
        self.cvs_run = self.cvs_run + 1 if met else 0
        if self.cvs_by_surgeon:  # the vision's estimate is advisory only
            return
        if self.cvs_run >= self.cfg.cvs_frames and self.cvs_reached_t is None:
            self.cvs_reached_t = fv.t_s
            self._event(fv.t_s, fv.frame_id, "cvs_reached")

    def _clip(self, fv: FrameView) -> list[RaisedAlert]:
        cfg = self.cfg
        # a clip on a structure: the "clip_applied" event for the reasoner
        if "clip" in fv.structures:
            self.clip_struct_run += 1
            if self.clip_struct_run == 2 and not self.clip_seen:
                self.clip_seen = True
                self._event(fv.t_s, fv.frame_id, "clip_applied")
        else:
            self.clip_struct_run = 0
        present = "clip_applier" in fv.instruments or "Clipper" in fv.instruments
        if not present:
            self.clip.absent(fv.t_s, cfg.clip_clear_s)
            return []
        self.clip.present(fv)
        if not self.clip.ready(cfg.clip_frames) or self.cvs_reached:
            return []
        if self.cvs_by_surgeon:
            return self._clip_unconfirmed(fv)
        if not fv.cvs and not self.cvs_latest:  # no CVS assessment at all (not laparoscopic)
            return []
        if not self._may_fire("clip_before_cvs", "", fv.t_s):
            return []
        self.clip.armed = False
        unmet = [n for n in self.cvs_names if self.cvs_latest.get(n, 0.0) < self.cvs_thr]
        spoken = join_words([self.cvs_spoken[n] for n in unmet])
        first = self.clip.run[0]
        what = "clip applier" if "clip_applier" in fv.instruments else "clipper"
        steps = [
            Step(f"The {what} is in view in {self.clip.run.n} frames from "
                 f"{fmt_time(first.t_s)}.", True,
                 {"observations": [f.obs("instrument", n) for f in self.clip.run
                                   for n in ("clip_applier", "Clipper") if n in f.instruments]}),
            Step(f"The critical view of safety has not been reached: {spoken} not met.", True,
                 {"scores": {n: round(self.cvs_latest.get(n, 0.0), 3) for n in self.cvs_names},
                  "rule": f"CVS = all criteria >= {self.cvs_thr} for {cfg.cvs_frames} frames"}),
            Step(f"Rule: {self.rule_text}.", True,
                 {"rule": self.rule_text, "source": self.kg.sources.get(self.rule_src,
                                                                        self.rule_src)}),
        ]
        text = (f"Caution: clipping before the critical view of safety. {spoken.capitalize()} "
                f"not met.")
        return [self._fire(RaisedAlert("clip_before_cvs", text, fv.t_s, fv.frame_id, steps,
                                       data={"unmet": unmet}, banner="CLIP BEFORE CVS"))]

    def _clip_unconfirmed(self, fv: FrameView) -> list[RaisedAlert]:
        """The clip applier is in view and the surgeon has not confirmed the CVS: ask for
        the confirmation ("cvs_confirm_prompt"), or alert when they said "not confirmed"."""
        pol = self.cvs_policy
        rule = "cvs_confirm_prompt" if pol.state is None else "clip_before_cvs"
        if (self.rules is not None and rule not in self.rules) or \
                not self._may_fire(rule, "", fv.t_s):
            return []
        self.clip.armed = False
        first = self.clip.run[0]
        what = "clip applier" if "clip_applier" in fv.instruments else "clipper"
        est = {n: round(self.cvs_latest.get(n, 0.0), 3) for n in self.cvs_names}
        steps = [
            Step(f"The {what} is in view in {self.clip.run.n} frames from "
                 f"{fmt_time(first.t_s)}.", True,
                 {"observations": [f.obs("instrument", n) for f in self.clip.run
                                   for n in ("clip_applier", "Clipper") if n in f.instruments]}),
            Step("The critical view of safety is the surgeon's call here: " + pol.why + ".",
                 True, {"rule": "CVS from the surgeon's confirmation"}),
            Step("My visual estimate is advisory only (" + pol.advisory() + ").", True,
                 {"scores": est}),
        ]
        if pol.state is None:
            text = "Before clipping: confirm the critical view of safety."
            banner = "CONFIRM CVS BEFORE CLIPPING"
        else:
            steps.insert(1, Step(f"You said the critical view is not confirmed at "
                                 f"{fmt_time(pol.stated_at or 0.0)}.", True,
                                 {"observations": [{"kind": "cvs_confirmation",
                                                    "confirmed": False,
                                                    "t_s": pol.stated_at}]}))
            text = "Caution: clipping while the critical view of safety is not confirmed."
            banner = "CLIP BEFORE CVS"
        return [self._fire(RaisedAlert(rule, text, fv.t_s, fv.frame_id, steps,
                                       data={"cvs_source": "surgeon", "estimate": est},
                                       banner=banner))]

    def _phase(self, fv: FrameView) -> list[RaisedAlert]:
        cfg = self.cfg
        if fv.phase is None or fv.phase[1] < cfg.phase_min_score:
            self.phase_run = ("", 0, 0.0)
            return []
        name, _ = fv.phase
        run_name, n, t0 = self.phase_run
        self.phase_run = (name, n + 1, t0) if run_name == name else (name, 1, fv.t_s)
        if self.phase_run[1] != cfg.phase_frames or name in self.entered:
            return []
        self.entered[name] = self.phase_run[2]
        if name not in self.phases:
            return []
        idx = self.phases.index(name)
        prev = self.max_phase_idx
        self.max_phase_idx = max(prev, idx)
        if prev < 0 or idx <= prev + 1:
            return []
        skipped = [p for p in self.phases[prev + 1:idx]
                   if p not in self.entered and p not in self.optional]
        if not skipped or not self._may_fire("phase_skipped", ",".join(skipped), fv.t_s):
            return []
        spoken = [self.kg.phase_spoken(p) for p in skipped]
        steps = [
            Step(f"The {self.kg.phase_spoken(name)} phase started at "
                 f"{fmt_time(self.entered[name])} ({cfg.phase_frames} frames with score >= "
                 f"{cfg.phase_min_score}).", True,
                 {"observations": [{"t_s": round(fv.t_s, 3), "frame_id": fv.frame_id,
                                    "kind": "phase", "name": name,
                                    "score": round(fv.phase[1], 4)}]}),
            Step("Phases entered before: " + join_words(
                [f"{self.kg.phase_spoken(p)} from {fmt_time(t)}" for p, t in self.entered.items()
                 if p != name]) + ".", True, {}),
            Step(f"In the procedure model, {join_words(spoken)} comes before the "
                 f"{self.kg.phase_spoken(name)} phase.", True,
                 {"rule": "laparoscopic cholecystectomy phase order",
                  "triples": [{"s": a, "p": "precedes", "o": b}
                              for a, b in zip(self.phases, self.phases[1:], strict=False)]}),
        ]
        text = f"Expected step skipped: the {join_words(spoken)} phase."
        return [self._fire(RaisedAlert("phase_skipped", text, fv.t_s, fv.frame_id, steps,
                                       key=",".join(skipped), data={"skipped": skipped},
                                       banner="SKIPPED: " + ", ".join(spoken)))]
