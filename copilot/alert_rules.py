"""The alert rule table: rule levels, the truth events each rule answers, the thresholds
(``AlertConfig``), the alert as raised (``RaisedAlert``) and one frame's findings as the rules
read them (``FrameView``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kg_reasoning.reasoner import Step, position_words

#: Alert levels: "alert" (red banner) for safety rules, "warning" (amber) for the others.
LEVELS = {"clip_before_cvs": "alert", "bleeding": "alert", "large_vessel": "alert",
          "phase_skipped": "warning", "segment_missed": "warning",
          "cvs_confirm_prompt": "warning"}
#: Truth event kinds (feed truth.json) that each rule answers.
RULE_EVENTS = {"clip_before_cvs": ("clip_applied",), "bleeding": ("bleeding_onset",),
               "large_vessel": ("large_vessel",), "phase_skipped": ("phase_skipped",),
               "segment_missed": ("segment_missed", "segment_brief")}


class FrameRun(list):
    """Frames of a rule's current run: ``n`` counts them all, the list keeps the first one
    and the newest ``keep - 1`` (a condition that lasts an hour must not grow memory)."""

    keep = 24

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def append(self, fv: Any) -> None:
        """Add a frame; trim the middle beyond ``keep``."""
        super().append(fv)
        self.n += 1
        if len(self) > self.keep:
            del self[1:len(self) - self.keep + 1]



def bleeding_spoken(where: str) -> str:
    """What the voice says for a bleeding alert at ``where`` (``position_words``)."""
    return f"Bleeding {where.replace(' of the image', '')}."


#: The fixed first pieces (speech.tts.stream_pieces) of what alerts say: the voice renders
#: them ahead of time (``TTS.warm``), so an alert starts without waiting for synthesis.
#: tests/copilot/test_voice_default.py checks that the alerts of a run start with one.
SPOKEN_OPENINGS: tuple[str, ...] = (
    "Caution:", "Before clipping:", "Expected step skipped:", "Bowel segment not seen:",
    bleeding_spoken("in view"),
    *(bleeding_spoken(position_words((x, y))) for x in (0.1, 0.5, 0.9) for y in (0.1, 0.5, 0.9)),
)


class Hysteresis:
    """A rule's run of frames with its condition present: it may raise once the run is
    long enough and it is armed; it re-arms once the condition has been absent for a while
    (times in media seconds)."""

    def __init__(self) -> None:
        self.run = FrameRun()
        self.armed = True
        self.last_t = -1e9  # when the condition was last present

    def absent(self, t_s: float, clear_s: float, rearm: bool = True) -> None:
        """The condition is absent at ``t_s``: the run ends; re-armed (when ``rearm``) once
        ``clear_s`` seconds have passed since it was last present."""
        self.run = FrameRun()
        if rearm and t_s - self.last_t >= clear_s:
            self.armed = True

    def present(self, fv: Any) -> None:
        """The condition is present in frame ``fv``."""
        self.last_t = fv.t_s
        self.run.append(fv)

    def ready(self, frames: int) -> bool:
        """Armed, with a run of at least ``frames`` frames."""
        return self.run.n >= frames and self.armed


@dataclass
class AlertConfig:
    """Thresholds: scores are probabilities, areas fractions of the view, times seconds."""

    min_score: float = 0.5
    clip_frames: int = 2
    clip_clear_s: float = 30.0
    cvs_frames: int = 3
    bleed_area: float = 0.002
    bleed_frames: int = 2
    bleed_clear_s: float = 5.0
    vessel_area: float = 0.003
    vessel_frames: int = 3
    vessel_clear_s: float = 10.0
    phase_min_score: float = 0.6
    phase_frames: int = 5
    segment_frames: int = 3
    # a segment the region filter is sure of (score >= segment_sure) is stable after
    # segment_sure_frames frames: the filter has already confirmed it (its confident route
    # step needs a run of confident frames), and 3 more frames delay a skipped-segment alert
    segment_sure: float = 0.9
    segment_sure_frames: int = 1
    segment_seen_s: float = 1.0
    segment_max_dt_s: float = 0.5
    # a jump over >= segment_jump unseen segments at once is more often a confusion between
    # similar-looking segments than a survey miss: it is alerted once the camera moves on
    # forward from there or stays segment_confirm_s, and dropped if it comes back before it
    segment_jump: int = 2
    segment_confirm_s: float = 4.0
    # gaps are counted from the furthest segment reached (moving within the surveyed part
    # raises nothing); False: from the segment just left
    segment_frontier: bool = True
    cooldown_s: dict[str, float] = field(default_factory=lambda: {
        "clip_before_cvs": 120.0, "bleeding": 60.0, "large_vessel": 120.0,
        "phase_skipped": 0.0, "segment_missed": 0.0})
    ack_quiet_s: float = 300.0


@dataclass
class RaisedAlert:
    """An alert as the engine raised it (the brain turns it into a message)."""

    rule: str
    text: str
    t_s: float
    frame_id: int
    steps: list[Step]
    level: str = "alert"
    key: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    banner: str = ""  # short text for the overlay banner (default: ``text``)
    spoken: str = ""  # what the voice says (default: the first sentence of ``text``)

    def steps_dicts(self) -> list[dict[str, Any]]:
        """The steps as JSON-friendly dicts."""
        return [s.to_dict() for s in self.steps]


@dataclass
class FrameView:
    """One analysed frame's findings, summarised for the rules."""

    frame_id: int
    t_s: float
    structures: dict[str, dict[str, Any]]  # name -> {score, area, centroid, bbox}
    instruments: dict[str, float]  # name -> score (segmentation classes and tool head)
    region: tuple[str, float] | None
    phase: tuple[str, float] | None
    cvs: dict[str, float]

    @classmethod
    def of(cls, frame_id: int, t_s: float, findings: list[Any], min_score: float) -> FrameView:
        """Summarise ``copilot.messages.Finding``s (or Observations) of one frame."""
        st: dict[str, dict[str, Any]] = {}
        inst: dict[str, float] = {}
        region = phase = None
        cvs: dict[str, float] = {}
        for f in findings:
            if f.kind == "structure" and f.score >= min_score:
                st[f.name] = {"score": f.score, **{k: v for k, v in f.attrs.items()
                                                   if k != "polygons"}}
            elif f.kind == "instrument" and f.score >= min_score:
                inst[f.name] = max(inst.get(f.name, 0.0), f.score)
            elif f.kind == "region":
                region = (f.name, f.score)
            elif f.kind == "phase":
                phase = (f.name, f.score)
            elif f.kind == "cvs":
                cvs[f.name] = f.score
        return cls(frame_id, t_s, st, inst, region, phase, cvs)

    def obs(self, kind: str, name: str) -> dict[str, Any]:
        """Evidence dict of one finding (kg_reasoning observation form)."""
        src = self.structures.get(name, {}) if kind == "structure" else {}
        score = src.get("score", self.instruments.get(name, 0.0))
        d = {"t_s": round(self.t_s, 3), "frame_id": self.frame_id, "kind": kind, "name": name,
             "score": round(float(score), 4)}
        if "area" in src:
            d["attrs"] = {"area": src["area"], "centroid": src.get("centroid")}
        return d
