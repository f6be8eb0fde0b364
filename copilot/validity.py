"""What the copilot may claim: the stated procedure, off-label spans and who calls the CVS.

Three small pieces of state that sit between the vision stage and the alert engine:

- **The procedure is stated, not guessed** (``--procedure``; feeds carry it in their truth;
  ``DEFAULT_PROCEDURE`` otherwise). It fixes which alert rules run (``PROCEDURE_RULES``): the
  vision never switches the copilot into another procedure's rules mid-case.
- **Off-label spans** (:class:`OffLabelMonitor`): from the vision's per-frame in-domain
  score (``VisionResult.in_domain`` / ``off_label``) and a sustained mismatch between the
  stated procedure and the region the vision sees, with hysteresis (``enter`` of the last
  ``window`` analysed frames to start a span, at most ``leave`` of them to end it). While a
  span is open, vision alerts are withheld and vision answers say so.
- **The critical view of safety is the surgeon's call** (:class:`CvsPolicy`): unless the model
  card shows the CVS head at balanced accuracy >= ``CVS_MIN_BALANCED_ACC`` on every criterion
  of held-out real patients, "CVS reached" comes only from the surgeon ("copilot, critical
  view confirmed"); the vision's estimate is advisory. On the synthetic feeds (where the
  model was validated: F1 0.99 on held-out seeds) the vision decides, as before.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vision.labels import SEGMENTS

PROCEDURES: tuple[str, ...] = ("cholecystectomy", "bowel-survey")
#: Procedure assumed when neither --procedure nor the feed's truth states one.
DEFAULT_PROCEDURE = "cholecystectomy"
#: Alert rules that run for each procedure (``copilot.alerts`` rule names).
PROCEDURE_RULES: dict[str, frozenset[str]] = {
    "cholecystectomy": frozenset({"clip_before_cvs", "cvs_confirm_prompt", "bleeding",
                                  "large_vessel", "phase_skipped"}),
    "bowel-survey": frozenset({"bleeding", "large_vessel", "segment_missed"}),
}
#: Rules resting on outputs that no real label has taught, with that output: withheld on real
#: video, where they were never validated. Endoscapes labels only the cystic plate, the
#: hepatocystic triangle, the cystic artery and duct, the gallbladder and "tool" (any
#: instrument); it has no phase, blood, large-vessel or instrument-type labels. Measured on the
#: 9 real clips (none shows a clip applier): the real-frame model's clip-applier class was on
#: in 39-44 of 45 analysed frames per clip at scores just under the rule's threshold, and the
#: fine-tuned model's (shipped since) crossed it (docs/real_video.md): neither detects a clip
#: applier.
_INSTRUMENT_TYPE = ("the instrument type (clip applier) has never seen a real label: real "
                    "frames are labelled only 'tool'")
SYNTHETIC_ONLY_RULES: dict[str, str] = {
    "phase_skipped": "the phase head has never seen a real phase label",
    "bleeding": "the blood class has never seen a real frame labelled blood",
    "large_vessel": "the large-vessel class has never seen a real label",
    "cvs_confirm_prompt": _INSTRUMENT_TYPE,
    "clip_before_cvs": _INSTRUMENT_TYPE,
}
#: Intents whose answers rest on such heads (they say so on real video).
SYNTHETIC_ONLY_INTENTS = frozenset({"current_phase", "skipped_step"})


def procedure_rules(procedure: str | None, real_video: bool = False) -> frozenset[str] | None:
    """The alert rules that run: the procedure's (None: every rule, no procedure stated),
    less ``SYNTHETIC_ONLY_RULES`` on real video."""
    rules = PROCEDURE_RULES.get(procedure or "")
    if rules is None:
        return None
    return rules - frozenset(SYNTHETIC_ONLY_RULES) if real_video else rules


def withheld_rules(procedure: str | None, real_video: bool) -> dict[str, str]:
    """The procedure's alert rules that do not run on this video, each with why (empty on
    the project's synthetic feeds, where every output was validated)."""
    rules = PROCEDURE_RULES.get(procedure or "")
    if not real_video or rules is None:  # None: no procedure stated, every rule runs
        return {}
    return {r: why for r, why in SYNTHETIC_ONLY_RULES.items() if r in rules}


#: Regions of the vision's region head that do not belong to each procedure.
FOREIGN_REGIONS: dict[str, frozenset[str]] = {
    "cholecystectomy": frozenset({*SEGMENTS, "out_of_body"}),
    "bowel-survey": frozenset({"abdominal_cavity", "out_of_body"}),
}
#: Intents whose answers rest on what the vision sees.
VISION_INTENTS = frozenset({"identify_structure", "locate_structure", "current_phase",
                            "cvs_status", "missed_segments", "outline_structure",
                            "skipped_step"})
#: Intents about one structure (its ``structure`` slot).
STRUCTURE_INTENTS = frozenset({"identify_structure", "locate_structure", "outline_structure"})
#: Balanced accuracy on held-out real patients that every CVS criterion needs before the
#: vision may assert "CVS reached" on real video.
CVS_MIN_BALANCED_ACC = 0.80
OFF_LABEL_SPEECH = "This view is outside what I was validated on; I am not giving alerts."
SYNTHETIC_ONLY = "validated on synthetic video only"


def resolve_procedure(stated: str | None, feed_scenario: str | None) -> str:
    """The procedure of a run: stated > the feed's truth > ``DEFAULT_PROCEDURE``.

    Raises ValueError (one line) for an unknown name.
    """
    for name in (stated, feed_scenario):
        if name:
            key = name.strip().lower().replace("_", "-")
            if key in ("laparoscopic-cholecystectomy", "chole"):
                key = "cholecystectomy"
            if key not in PROCEDURES:
                raise ValueError(f"unknown procedure {name!r}: use one of "
                                 f"{', '.join(PROCEDURES)}")
            return key
    return DEFAULT_PROCEDURE


@dataclass
class OffLabelConfig:
    """Hysteresis over analysed frames; times in media seconds."""

    window: int = 10  # analysed frames looked at
    enter: int = 6  # off-label frames among them that open a span
    leave: int = 2  # a span closes when at most this many of them are off-label
    mismatch_s: float = 6.0  # a foreign region held this long is an off-label sign
    mismatch_score: float = 0.6  # ... when the region head gives it at least this


@dataclass
class OffLabelSpan:
    """One off-label span: media seconds, and why it started."""

    start_s: float
    reason: str
    end_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Session-log form."""
        return {"start_s": round(self.start_s, 3), "reason": self.reason,
                "end_s": None if self.end_s is None else round(self.end_s, 3)}


@dataclass
class OffLabelMonitor:
    """Per-frame off-label decision with hysteresis; not thread-safe (the brain locks)."""

    procedure: str = DEFAULT_PROCEDURE
    cfg: OffLabelConfig = field(default_factory=OffLabelConfig)
    spans: list[OffLabelSpan] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._recent: deque[bool] = deque(maxlen=self.cfg.window)
        self._foreign_since: float | None = None
        self._reasons: deque[str] = deque(maxlen=self.cfg.window)

    @property
    def off_label(self) -> bool:
        """Is a span open now?"""
        return bool(self.spans) and self.spans[-1].end_s is None

    @property
    def reason(self) -> str:
        """Why the open span started ("" when none is open)."""
        return self.spans[-1].reason if self.off_label else ""

    def update(self, t_s: float, in_domain: float | None, off_label: bool | None,
               region: str | None = None, region_score: float = 0.0) -> str | None:
        """One analysed frame. Returns "start" or "end" when a span opens or closes."""
        foreign = (region is not None and region_score >= self.cfg.mismatch_score
                   and region in FOREIGN_REGIONS.get(self.procedure, frozenset()))
        if foreign:
            if self._foreign_since is None:
                self._foreign_since = t_s
        else:
            self._foreign_since = None
        mismatch = (self._foreign_since is not None
                    and t_s - self._foreign_since >= self.cfg.mismatch_s)
        bad_domain = bool(off_label) if off_label is not None else False
        self._recent.append(bad_domain or mismatch)
        if bad_domain:
            self._reasons.append("the picture is unlike the frames I was validated on"
                                 + (f" (in-domain score {in_domain:.2f})"
                                    if in_domain is not None else ""))
        elif mismatch:
            self._reasons.append(f"the view looks like {str(region).replace('_', ' ')}, "
                                 f"not a {self.procedure.replace('-', ' ')}")
        n_bad = sum(self._recent)
        if not self.off_label and n_bad >= self.cfg.enter:
            self.spans.append(OffLabelSpan(t_s, self._reasons[-1] if self._reasons else
                                           "outside the validated domain"))
            return "start"
        if self.off_label and n_bad <= self.cfg.leave:
            self.spans[-1].end_s = t_s
            return "end"
        return None

    def close(self, t_s: float) -> None:
        """End of the feed: close an open span."""
        if self.off_label:
            self.spans[-1].end_s = t_s


@dataclass
class CvsPolicy:
    """Who may assert the critical view of safety: ``"vision"`` or ``"surgeon"``.

    ``accuracy`` holds the vision CVS head's measured balanced accuracy per criterion (held-out
    real patients) when known, shown with the advisory estimate.
    """

    source: str = "vision"
    accuracy: dict[str, float] = field(default_factory=dict)
    why: str = ""
    confirmations: list[tuple[float, bool]] = field(default_factory=list)

    @property
    def surgeon(self) -> bool:
        """True when only the surgeon's word counts."""
        return self.source == "surgeon"

    def confirm(self, t_s: float, confirmed: bool) -> None:
        """Record "CVS confirmed" (True) or "not confirmed" (False) at media time ``t_s``."""
        self.confirmations.append((float(t_s), bool(confirmed)))

    @property
    def state(self) -> bool | None:
        """The surgeon's latest statement: True, False, or None (nothing said yet)."""
        return self.confirmations[-1][1] if self.confirmations else None

    @property
    def stated_at(self) -> float | None:
        """Media time of the latest statement."""
        return self.confirmations[-1][0] if self.confirmations else None

    def advisory(self) -> str:
        """How good the vision's estimate is, for answers ("balanced accuracy 0.55-0.62")."""
        if not self.accuracy:
            return "its accuracy on real patients is not measured"
        lo, hi = min(self.accuracy.values()), max(self.accuracy.values())
        rng = f"{lo:.2f}" if abs(hi - lo) < 0.005 else f"{lo:.2f}-{hi:.2f}"
        return f"balanced accuracy {rng} per criterion on held-out real patients"


def cvs_policy(mode: str, synthetic_feed: bool, model_dir: Path | str | None) -> CvsPolicy:
    """The CVS policy of a run. ``mode``: "auto" | "vision" | "surgeon".

    auto: the vision decides on the project's synthetic feeds (its validated domain); on any
    other source only when the model's config records a CVS balanced accuracy >=
    ``CVS_MIN_BALANCED_ACC`` for every criterion on held-out real patients.
    """
    acc = model_cvs_accuracy(model_dir)
    if mode not in ("auto", "vision", "surgeon"):
        raise ValueError(f"unknown --cvs {mode!r}: auto, vision or surgeon")
    if mode != "auto":
        return CvsPolicy(mode, acc, f"--cvs {mode}")
    if synthetic_feed:
        return CvsPolicy("vision", acc, "synthetic feed: the vision's validated domain")
    if model_cvs_claim_allowed(model_dir) is False:
        return CvsPolicy("surgeon", acc, "the model card does not allow CVS claims (balanced "
                         f"accuracy below {CVS_MIN_BALANCED_ACC} on held-out real patients)")
    if acc and min(acc.values()) >= CVS_MIN_BALANCED_ACC:
        return CvsPolicy("vision", acc, f"CVS head >= {CVS_MIN_BALANCED_ACC} balanced "
                                        "accuracy on held-out real patients")
    why = ("the CVS head is below "
           f"{CVS_MIN_BALANCED_ACC} balanced accuracy on held-out real patients"
           if acc else "the model records no CVS accuracy on real patients")
    return CvsPolicy("surgeon", acc, why)


def model_cvs_accuracy(model_dir: Path | str | None) -> dict[str, float]:
    """Per-criterion CVS balanced accuracy on real held-out patients from the model's
    config.json / metrics.json (keys tried: ``cvs_val`` / ``real_val`` ``cvs`` blocks with
    ``balanced_accuracy``); {} when the model records none."""
    if model_dir is None:
        from vision.modelio import DEFAULT_MODEL_DIR

        model_dir = DEFAULT_MODEL_DIR
    out: dict[str, float] = {}
    for name in ("config.json", "metrics.json"):
        p = Path(model_dir) / name
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        out = _find_balanced(d)
        if out:
            break
    return out


def model_cvs_claim_allowed(model_dir: Path | str | None) -> bool | None:
    """The model card's own verdict (config.json ``extra.cvs_validation.claim_allowed``,
    written by ``benchmarks.bench_vision_real``); None when it records none."""
    if model_dir is None:
        from vision.modelio import DEFAULT_MODEL_DIR

        model_dir = DEFAULT_MODEL_DIR
    try:
        d = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    v = (d.get("extra") or {}).get("cvs_validation") or d.get("cvs_validation") or {}
    allowed = v.get("claim_allowed") if isinstance(v, dict) else None
    return allowed if isinstance(allowed, bool) else None


def _find_balanced(d: Any, depth: int = 0) -> dict[str, float]:
    """The first ``{criterion: balanced accuracy}`` found under a key containing "cvs"."""
    if not isinstance(d, dict) or depth > 4:
        return {}
    for k, v in d.items():
        if "cvs" in str(k).lower() and isinstance(v, dict):
            ba = v.get("balanced_accuracy")
            if isinstance(ba, dict) and ba and all(isinstance(x, int | float)
                                                    for x in ba.values()):
                return {str(c): float(x) for c, x in ba.items()}
        if isinstance(v, dict):
            found = _find_balanced(v, depth + 1)
            if found:
                return found
    return {}


NEGATIONS = frozenset({"not", "no", "isn't", "isnt", "never", "unconfirmed"})


def cvs_statement(intent: str, words: set[str]) -> bool | None:
    """True / False for a CVS confirmation intent ("confirm_cvs" / "deny_cvs"), None for
    any other intent. A negation word anywhere makes it a denial, whatever the parse said:
    mistaking "not confirmed" for "confirmed" is the error that must not happen."""
    if intent not in ("confirm_cvs", "deny_cvs"):
        return None
    return intent == "confirm_cvs" and not (words & NEGATIONS)


def cvs_confirmation_answer(policy: CvsPolicy, t_s: float, confirmed: bool) -> Any:
    """The reply to "copilot, critical view (not) confirmed" (already recorded in policy)."""
    from kg_reasoning.reasoner import Answer, Step, fmt_time

    said = "confirmed" if confirmed else "not confirmed"
    steps = [Step(f"You said the critical view of safety is {said} at {fmt_time(t_s)}.", True,
                  {"observations": [{"kind": "cvs_confirmation", "confirmed": confirmed,
                                     "t_s": round(t_s, 3)}]})]
    if not policy.surgeon:
        steps.append(Step("Recorded; on this feed my visual assessment also counts "
                          f"({policy.why}).", True, {}))
    text = (f"Noted: critical view of safety {said} at {fmt_time(t_s)}."
            + ("" if confirmed else " I will warn if clipping starts."))
    return Answer(text, steps, 1.0, intent="confirm_cvs" if confirmed else "deny_cvs")


def cvs_surgeon_answer(policy: CvsPolicy, estimate: dict[str, float]) -> Any:
    """"Is the critical view reached?" when the surgeon decides: their statement, and the
    vision's estimate as advisory with its measured accuracy."""
    from kg_reasoning.reasoner import Answer, Step, fmt_time

    est = ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in estimate.items())
    steps = [Step(f"The critical view of safety is your call here: {policy.why}.", True,
                  {"rule": "CVS from the surgeon's confirmation"})]
    if policy.state is None:
        text = ("You have not confirmed the critical view of safety. Say: copilot, critical "
                "view confirmed.")
    else:
        said = "confirmed" if policy.state else "said it is not confirmed"
        text = f"You {said} the critical view of safety at {fmt_time(policy.stated_at or 0)}."
        steps.append(Step(text, True, {"observations": [
            {"kind": "cvs_confirmation", "confirmed": policy.state,
             "t_s": policy.stated_at}]}))
    steps.append(Step("My visual estimate is advisory only (" + policy.advisory() + ")"
                      + (f": {est}." if est else ": no estimate yet."), True,
                      {"scores": {k: round(v, 3) for k, v in estimate.items()}}))
    return Answer(text, steps, 1.0 if policy.state is not None else 0.9, intent="cvs_status")


def off_label_answer(ans: Any, intent: str, monitor: OffLabelMonitor, procedure: str,
                     real_video: bool = False, structure: str | None = None,
                     real_view: Any | None = None) -> Any:
    """Mark an answer that rests on the vision: off-label now, bowel-segment recognition
    (validated on synthetic video only), or on real video the phase head (synthetic only) or
    a ``structure`` no real label taught (``real_view``, a ``copilot.real_view.RealView``).
    Returns ``ans`` changed in place."""
    from kg_reasoning.reasoner import Step, fmt_time

    if ans.abstained or intent not in VISION_INTENTS:
        return ans
    if monitor.off_label:
        span = monitor.spans[-1]
        ans.answer = ("This view is outside what I was validated on, so this may be wrong. "
                      + ans.answer)
        ans.confidence = min(ans.confidence, 0.3)
        ans.steps.insert(0, Step(f"The view has been off-label since {fmt_time(span.start_s)}:"
                                 f" {span.reason}.", True, {"rule": "off-label span"}))
    if procedure == "bowel-survey" and intent == "missed_segments":
        ans.steps.append(Step("The bowel-segment recognition is " + SYNTHETIC_ONLY
                              + "; it has never seen real bowel.", True,
                              {"rule": "model card"}))
        ans.answer = ans.answer.rstrip() + f" (Segment recognition {SYNTHETIC_ONLY}.)"
    if real_video and intent in SYNTHETIC_ONLY_INTENTS:
        ans.steps.append(Step("The phase recognition is " + SYNTHETIC_ONLY + "; it has "
                              "never seen a real phase label.", True, {"rule": "model card"}))
        ans.answer = ans.answer.rstrip() + f" (Phase recognition {SYNTHETIC_ONLY}.)"
        ans.confidence = min(ans.confidence, 0.5)
    if real_video and real_view is not None and intent in STRUCTURE_INTENTS:
        note = real_view.untaught_note(structure)
        if note:
            ans.steps.append(Step(note, True, {"rule": "model card"}))
            ans.answer = ans.answer.rstrip() + f" ({note})"
            ans.confidence = min(ans.confidence, 0.3)
    return ans


def model_for_source(model_dir: Path | None, synthetic_feed: bool
                     ) -> tuple[Path | None, str | None]:
    """The vision model for a run and why, when the copilot chose it: a model the user named
    always; on the project's synthetic feeds the synthetic-validated model (held-out seeds:
    anatomy mIoU 0.83; the real-frame default scores 0.55 there); else the shipped default
    (pretrained backbone trained on real Endoscapes frames)."""
    if model_dir is not None or not synthetic_feed:
        return model_dir, None
    from vision.modelio import SYNTHETIC_MODEL_DIR

    if not (SYNTHETIC_MODEL_DIR / "config.json").is_file():
        return None, None
    return SYNTHETIC_MODEL_DIR, ("synthetic feed: the model validated on synthetic scenes "
                                 "(vision/weights/synthetic)")
