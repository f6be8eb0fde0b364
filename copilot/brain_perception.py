"""The brain's perception-to-reasoner bridge: vision findings into the perception timeline,
the session log and the alert rules; evidence thumbnails; the reasoner's hypothesis for a
large-vessel alert. Times are media seconds of the feed.

A mixin of ``copilot.brain.Brain`` (its state is set up in ``Brain.__init__``).
"""

from __future__ import annotations

import base64
from typing import Any

from copilot.alerts import FrameView
from copilot.messages import Finding, Message
from copilot.perception import findings_from_result as _findings
from copilot.perception import observation_of
from kg_reasoning.reasoner import Answer as KGAnswer
from kg_reasoning.reasoner import Question


class PerceptionBridge:
    """Findings -> timeline, session log and alert engine; thumbnails for the log."""

    def findings_from_result(self, result: Any, frame_id: int, media_t_s: float
                             ) -> list[Finding]:
        """The vision stage's adapter (see ``copilot.perception.findings_from_result``)."""
        return _findings(result, frame_id, media_t_s, clock=self.clock)

    def on_frame(self, frame_id: int, media_t_s: float, image: Any) -> None:
        """Optional: offer a decoded RGB frame for evidence thumbnails (cheap when not kept).

        At most ``thumb_hz`` frames per second are kept (JPEG, ``thumb_width`` px wide) for
        ``thumb_keep_s``; alerts and bookmarks attach the nearest one to their session line.
        Frames while the camera is out of the body are never kept.
        """
        t = float(media_t_s)
        with self._lock:
            if self._thumbs and 0 <= t - self._thumbs[-1][0] < 1.0 / self.cfg.thumb_hz:
                return
            if self._region == "out_of_body":
                return
        import cv2
        import numpy as np

        img = np.asarray(image)
        h, w = img.shape[:2]
        tw = min(self.cfg.thumb_width, w)
        small = cv2.resize(img, (tw, max(1, round(h * tw / w))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 70])
        if not ok:
            return
        with self._lock:
            self._thumbs.append((t, int(frame_id), buf.tobytes()))
            while self._thumbs and t - self._thumbs[0][0] > self.cfg.thumb_keep_s:
                self._thumbs.popleft()

    def _thumbnail(self, t: float) -> dict[str, Any] | None:
        """The kept thumbnail nearest to media time ``t`` (within 2 s), session form."""
        if not self._thumbs:
            return None
        tt, fid, jpg = min(self._thumbs, key=lambda x: abs(x[0] - t))
        if abs(tt - t) > 2.0:
            return None
        return {"t_s": round(tt, 3), "frame_id": fid,
                "jpeg_b64": base64.b64encode(jpg).decode("ascii")}

    def on_findings(self, frame_id: int, media_t_s: float, findings: list[Finding]
                    ) -> list[Message]:
        """One analysed frame: update the timeline and the rules; returns the alerts raised."""
        t = float(media_t_s)
        with self._lock:
            self.media_t = max(self.media_t, t)
            self.frame_id = max(self.frame_id, frame_id)
            feats = [f for f in findings if f.kind == "pixel_features"]
            if feats:  # teaching only: never in the timeline or the alert rules
                findings = [f for f in findings if f.kind != "pixel_features"]
                reg = next((f for f in findings if f.kind == "region"), None)
                size = (int(reg.attrs.get("frame_w", 0)), int(reg.attrs.get("frame_h", 0))) \
                    if reg is not None else (self.frame_size or (1, 1))
                self.teaching.on_features(feats[0].attrs, frame_id, t, size)
            for f in findings:
                if f.kind == "region":
                    self._region = f.name
                if f.kind == "region" and "frame_w" in f.attrs:
                    self.frame_size = (int(f.attrs["frame_w"]), int(f.attrs["frame_h"]))
                polys = f.attrs.get("polygons")
                if polys is not None and f.kind in ("structure", "instrument"):
                    self._shapes[f.name] = polys
                    self._shape_frame[f.name] = frame_id
                    self._shape_score[f.name] = float(f.score)
            for name in [n for n, fid in self._shape_frame.items() if fid != frame_id]:
                self._shapes.pop(name, None)
                self._shape_frame.pop(name, None)
            self.pulse.update(t, findings)
            obs = [observation_of(f, t) for f in findings]
            recorded = self.timeline.add_frame(t, obs)
            persist = recorded and t - self._persist_t >= 1.0 / self.cfg.persist_hz * 0.999
            if persist:
                self._persist_t = t
                self._persist(obs)
            fv = FrameView.of(frame_id, t, findings, self.engine.cfg.min_score)
            out = self._off_label_update(frame_id, t, findings, fv)
            if self.offlabel.off_label:  # vision alerts are withheld
                self._version += 1
                return out
            raised = self.engine.update(fv)
            self._take_events()
            self._version += 1
            return out + [self._alert_message(a) for a in raised]

    def _persist(self, obs: list[Any]) -> None:
        if self.session is None:
            return
        recs = [("obs", o.t_s, o.to_dict()) for o in obs]
        try:
            if hasattr(self.session, "write_many"):
                self.session.write_many(recs)
            else:
                for typ, media, fields in recs:
                    self.session.write(typ, media_t_s=media, **fields)
        except Exception:  # noqa: BLE001 - the log must never stop the copilot
            pass

    def _take_events(self) -> None:
        ev = self.engine.take_events()
        for e in ev:
            self.timeline.add(e)
        self._persist(ev)

    def _vessel_hypothesis(self, t_s: float) -> KGAnswer:
        return self.reasoner.answer(Question("identify_structure", {"cue": "large_vessel"},
                                             "large vessel alert", t_s), self.timeline)
