"""The brain's glue to ``copilot.validity``: the off-label monitor (vision alerts withheld
outside the validated domain) and the CVS policy (the surgeon's confirmation of the critical
view of safety). Times are media seconds.

A mixin of ``copilot.brain.Brain``.
"""

from __future__ import annotations

from copilot.alerts import FrameView, RaisedAlert
from copilot.messages import Finding, Message, Transcript
from copilot.validity import (
    OFF_LABEL_SPEECH,
    cvs_confirmation_answer,
    cvs_statement,
    cvs_surgeon_answer,
)
from kg_reasoning.reasoner import Answer as KGAnswer
from kg_reasoning.reasoner import Step, fmt_time


class ValidityGlue:
    """Off-label spans and the surgeon's CVS statements."""

    def _off_label_update(self, frame_id: int, t: float, findings: list[Finding],
                          fv: FrameView) -> list[Message]:
        """Feed the off-label monitor; log span starts / ends; speak the first start."""
        dom = next((f for f in findings if f.kind == "domain"), None)
        in_domain = off = None
        if dom is not None and self.use_in_domain:
            in_domain, off = float(dom.score), bool(dom.attrs.get("off_label", False))
        region, rscore = fv.region if fv.region else (None, 0.0)
        change = self.offlabel.update(t, in_domain, off, region, rscore)
        if change is None:
            return []
        span = self.offlabel.spans[-1]
        self._write("off_label", t, event=change, **span.to_dict())
        if change != "start":
            return []
        first, self._off_label_said = not self._off_label_said, True
        steps = [Step(f"From {fmt_time(span.start_s)}: {span.reason}.", True,
                      {"observations": [{"kind": "domain", "t_s": round(t, 3),
                                         "in_domain": in_domain, "region": region}]}),
                 Step("Vision-based alerts are withheld until the view is back in the "
                      "validated domain.", True, {})]
        a = RaisedAlert("off_label", OFF_LABEL_SPEECH, t, frame_id, steps, level="warning",
                        data={"reason": span.reason}, banner="OFF-LABEL: no alerts")
        msg = self._alert_message(a)
        msg.silent = msg.silent or not first  # the voice says it once
        return [msg]

    def _cvs_answer(self, intent: str, tr: Transcript, t: float) -> KGAnswer | None:
        """The surgeon states the critical view (confirmed / not): record it in the CVS
        policy and log it; or, when the surgeon decides, answer "is CVS reached?" from the
        policy (the vision's estimate advisory). None: the reasoner answers."""
        stated = cvs_statement(intent, {w.strip(",.?!").lower() for w in tr.text.split()})
        if stated is not None:
            self.cvs_policy.confirm(t, stated)
            self._write("cvs_confirmation", t, confirmed=stated, source=self.cvs_policy.source,
                        trace_id=tr.trace_id)
            return cvs_confirmation_answer(self.cvs_policy, t, stated)
        if intent == "cvs_status" and self.cvs_policy.surgeon:
            return cvs_surgeon_answer(self.cvs_policy, dict(self.engine.cvs_latest))
        return None
