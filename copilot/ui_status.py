"""The web UI's status side (a mixin of ``copilot.ui.UIController``): the engineering
strip's numbers, what the copilot assumes (procedure, the model's validation, off-label,
vision backend, mute) and unmute."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class StatusMixin:
    """Status methods; the controller provides copilot, state, running, runs, _seq,
    frame_rate, error, consent, voice_print, voice, hf_seconds."""

    copilot: Any
    state: Any
    runs: int
    _seq: int
    error: str
    consent: bool
    voice_print: Path | None
    voice: Any
    hf_seconds: float
    _model_validation: str | None
    running: bool

    def frame_rate(self, window_s: float = 2.0) -> float:  # provided by the controller
        raise NotImplementedError

    # -- status ----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """fps, latency, frame counts, stage health and the overlay's status line."""
        app = self.copilot
        out: dict[str, Any] = {
            "running": self.running, "runs": self.runs, "seq": self._seq,
            "page_fps": round(self.frame_rate(), 2), "error": self.error,
            "consent": self.consent, "voice_print": str(self.voice_print or ""),
            "voice_error": self.voice.error, "hands_free_s": round(self.hf_seconds, 1),
        }
        if app is None:
            return out
        st = None
        fn = getattr(app, "status", None) or getattr(app, "_status", None)
        if fn is not None:
            try:
                st = fn()
            except Exception:  # noqa: BLE001 - status is best effort
                st = None
        health = {}
        try:
            health = app.health()
        except Exception:  # noqa: BLE001
            pass
        out.update({
            "media_t_s": round(float(app.media_t_s or 0.0), 2),
            "frames_in": app.frames_in, "frames_out": app.frames_out,
            "dropped": getattr(getattr(app, "video_edge", None), "stats", None).dropped
            if getattr(app, "video_edge", None) is not None else 0,
            "fps": round(float(st.fps), 2) if st is not None else None,
            "latency_ms": None if st is None or st.latency_ms is None
            else round(float(st.latency_ms), 1),
            "health": {k: {"state": v.get("state"), "errors": v.get("errors", 0),
                           "hangs": v.get("hangs", 0), "restarts": v.get("restarts", 0),
                           "last_error": v.get("last_error", "")}
                       for k, v in health.items()},
            "status_line": status_line(st, app.frames_out) if st is not None else "",
            "brain": app.brain is not None,
            "hidden": sorted(app.store.hidden),
            "source_fps": round(float(getattr(app, "fps", 0.0) or 0.0), 2),
        })
        return out

    def validation(self) -> str | None:
        """The vision model's ``validated_on`` (its config.json), None when it says none."""
        if self._model_validation is None:
            import json

            text = ""
            try:
                from vision.modelio import DEFAULT_MODEL_DIR

                d = getattr(getattr(self.copilot, "cfg", None), "model_dir", None)
                cfg = json.loads((Path(d or DEFAULT_MODEL_DIR) / "config.json").read_text())
                v = cfg.get("validated_on")
                text = "; ".join(map(str, v)) if isinstance(v, list) else str(v or "")
            except Exception as exc:  # noqa: BLE001 - shown as not validated
                log.debug("no model validation: %s", exc)
            self._model_validation = text
        return self._model_validation or None

    def assumptions(self) -> dict[str, Any]:
        """What the copilot assumes, for the header badge (None / "unknown" where the
        copilot does not say): procedure, off-label, vision backend, validation, mute."""
        app = self.copilot
        brain = getattr(app, "brain", None)
        cfg = getattr(app, "cfg", None)
        off = getattr(app, "off_label", None)
        if off is None and getattr(brain, "offlabel", None) is not None:
            off = bool(getattr(brain.offlabel, "off_label", False))
        left = 0.0
        if brain is not None and hasattr(brain, "mute_until"):
            now = max(float(getattr(brain, "media_t", 0.0)), float(app.media_t_s or 0.0))
            left = max(0.0, float(brain.mute_until) - now)
        return {"procedure": getattr(cfg, "procedure", None) or getattr(brain, "scenario", None),
                "off_label": off, "vision_backend": getattr(app, "vision_backend", None),
                "vision_backend_reason": getattr(app, "vision_backend_reason", None),
                "asr_backend": getattr(app, "asr_backend", None),
                "asr_backend_reason": getattr(app, "asr_backend_reason", None),
                "voice_backend": getattr(app, "voice_backend", None),
                "voice_backend_reason": getattr(app, "voice_backend_reason", None),
                "validated_on": self.validation(), "session": self.state.session,
                "muted_left_s": left, "cvs": cvs_assumption(getattr(app, "cvs_policy", None)),
                "alerts_withheld": getattr(app, "alerts_withheld", None) or {}}

    def unmute(self) -> str:
        """Let the alerts speak again."""
        brain = getattr(self.copilot, "brain", None)
        if brain is None or not hasattr(brain, "unmute"):
            return "nothing to unmute"
        brain.unmute()
        return "alerts unmuted"


def cvs_assumption(policy: Any) -> dict[str, Any] | None:
    """Who calls the critical view of safety and the surgeon's latest statement (media s),
    for the header badge; None before the copilot has chosen its policy."""
    if policy is None:
        return None
    return {"source": policy.source, "why": policy.why, "state": policy.state,
            "stated_at_s": policy.stated_at}


def status_line(st: Any, frame_no: int) -> str:
    """The overlay's status line as text: frame, fps, latency, stage health."""
    parts = [f"#{frame_no}", f"{st.fps:4.1f} fps"]
    if st.latency_ms is not None:
        parts.append(f"lat {st.latency_ms:3.0f} ms")
    parts += [f"{k}:{v}" for k, v in st.health.items()]
    if st.extra:
        parts.append(st.extra)
    return "  ".join(parts)
