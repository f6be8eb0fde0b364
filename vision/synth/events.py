"""Scripted scene events (what ``--event`` asks for) shared by both scenes."""

from __future__ import annotations

from dataclasses import dataclass

#: Event kinds a script may ask for, with their argument form.
EVENT_KINDS: dict[str, str] = {
    "bleeding": "bleeding@SECONDS: bleeding starts at that time and spreads",
    "clip_before_cvs": "clip_before_cvs@SECONDS: the first clip is applied at that time, "
                       "before the critical view of safety is reached (cholecystectomy)",
    "large_vessel": "large_vessel@SECONDS: an unexpected large pulsatile vessel comes into view",
    "skip_phase": "skip_phase:PHASE: that Cholec80 phase is left out (cholecystectomy)",
    "skip_segment": "skip_segment:SEGMENT: that bowel segment is never viewed (bowel-survey)",
    "brief_segment": "brief_segment:SEGMENT: that bowel segment is viewed for under a second",
}


@dataclass(frozen=True)
class SceneEvent:
    """A requested event: ``kind`` from EVENT_KINDS, a time in seconds or a name argument."""

    kind: str
    time_s: float | None = None
    arg: str | None = None

    def spec(self) -> str:
        """The ``--event`` string that gives this event back."""
        if self.time_s is not None:
            return f"{self.kind}@{self.time_s:g}"
        return f"{self.kind}:{self.arg}"
