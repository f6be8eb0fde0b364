"""Analysis stages that plug into the video loop, and their registry by name.

- ``none``: no analysis (passthrough + status line).
- ``heuristic``: a cheap, model-free colour analysis (bleeding-like red regions, specular
  highlights): real image processing, used to exercise the runtime and as a fallback.
- ``model``: the vision encoders (``vision.pipeline.VisionPipeline``) with a runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from copilot.clock import SYSTEM_CLOCK, Clock
from copilot.errors import CopilotError
from copilot.messages import Finding, Message, OverlayUpdate, VideoFrame
from copilot.overlay import AnnotationSet, Box, LabelMap, Outline, Text
from copilot.perception import findings_from_result
from copilot.runtime import Stage
from vision.labels import CLASS_COLOURS, CLASSES


class HeuristicVisionStage(Stage):
    """Finds saturated red regions (blood-like) and specular highlights by colour.

    Works at ``width`` px wide (default 320) so it costs a few ms per frame.
    """

    name = "vision"

    def __init__(self, clock: Clock = SYSTEM_CLOCK, width: int = 320) -> None:
        self.clock = clock
        self.width = width

    def process(self, msg: Message) -> list[Message] | None:
        if not isinstance(msg, VideoFrame):
            return None
        img = msg.image
        h, w = img.shape[:2]
        s = self.width / w
        small = cv2.resize(img, (self.width, max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        red = ((hsv[..., 0] < 6) | (hsv[..., 0] > 174)) & (hsv[..., 1] > 170) & (hsv[..., 2] > 60)
        spec = (hsv[..., 2] > 245) & (hsv[..., 1] < 40)
        out: list[Message] = []
        items: list[Any] = []
        now = self.clock.now_ns()
        for name, mask, colour in (("red_region", red, (255, 60, 60)), ("specular", spec, None)):
            m = mask.astype(np.uint8)
            area = float(m.mean())
            if area < 0.002:
                continue
            contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            contours = sorted(contours, key=cv2.contourArea, reverse=True)[:3]
            polys = [(c[:, 0, :] / s).astype(np.int32) for c in contours if len(c) >= 3]
            ys, xs = np.nonzero(m)
            centroid = (float(xs.mean() / m.shape[1]), float(ys.mean() / m.shape[0]))
            out.append(
                Finding(
                    t_ns=now,
                    trace_id=msg.trace_id,
                    media_t_s=msg.media_t_s,
                    frame_id=msg.frame_id,
                    source=self.name,
                    kind="structure",
                    name=name,
                    score=min(1.0, area * 20),
                    attrs={"area": area, "centroid": centroid},
                )
            )
            if colour is not None and polys:
                items.append(Outline(polys, colour, label=f"{name} {area * 100:.1f}%"))
            elif polys:
                for p in polys:
                    x0, y0 = p.min(axis=0)
                    x1, y1 = p.max(axis=0)
                    items.append(Box((x0, y0, x1, y1), (255, 255, 255)))
        items.append(Text(f"analysed #{msg.frame_id}", (8, 22)))
        ann = AnnotationSet(source=self.name, frame_id=msg.frame_id, t_ns=now, items=items)
        out.append(
            OverlayUpdate(
                t_ns=now,
                trace_id=msg.trace_id,
                media_t_s=msg.media_t_s,
                frame_id=msg.frame_id,
                annotations=ann,
            )
        )
        return out


PALETTE = np.array([CLASS_COLOURS[c] for c in CLASSES], dtype=np.uint8)


class ModelVisionStage(Stage):
    """The vision encoders through a runtime; emits findings and the segmentation overlay.

    Findings come from ``copilot.perception.findings_from_result`` (the mapping the
    perception timeline and the alert rules are built on).
    """

    name = "vision"

    def __init__(
        self,
        model_dir: Path | None = None,
        runtime: str = "onnxruntime",
        threads: int = 1,
        clock: Clock = SYSTEM_CLOCK,
        pipeline: Any = None,
        real_view: Any = None,
    ) -> None:
        # on real video only what real labels taught is drawn and reported: a
        # copilot.real_view.RealView from the model's card (None: synthetic feeds)
        self.real_view = real_view
        self.model_dir = model_dir
        self.runtime = runtime
        self.threads = threads
        self.clock = clock
        self.pipeline: Any = pipeline  # preloaded (compose checked it loads) or None

    def setup(self) -> None:
        if self.pipeline is None:
            self.pipeline = load_vision_pipeline(self.model_dir, self.runtime, self.threads)
        # one warm-up inference before the video starts (the runtime's first run allocates
        # and plans for a few hundred ms), then a clean temporal state
        self.pipeline.process(np.zeros((240, 320, 3), np.uint8), frame_id=-1, timestamp_s=0.0)
        self.pipeline.reset()

    def process(self, msg: Message) -> list[Message] | None:
        if not isinstance(msg, VideoFrame):
            return None
        res = self.pipeline.process(msg.image, frame_id=msg.frame_id, timestamp_s=msg.media_t_s)
        now = self.clock.now_ns()
        findings = findings_from_result(
            res, msg.frame_id, msg.media_t_s or 0.0, trace_id=msg.trace_id, clock=self.clock)
        rv = self.real_view
        out: list[Message] = list(findings if rv is None else rv.findings(findings))
        if res.laparoscopic and rv is not None:  # a phase no real label taught: not drawn
            caption = "phase: not shown [phase head validated on synthetic video only]"
        elif res.laparoscopic:
            caption = f"phase: {res.phase_name} ({res.phase[res.phase_name]:.2f})"
        else:
            caption = f"view: {res.region_name} ({res.region[res.region_name]:.2f})"
        # each class's detection confidence gates and dashes its outline (copilot.overlay)
        classes = np.asarray(res.frame_label_map(), dtype=np.uint8)
        scores = {f.class_id: float(f.confidence) for f in res.findings}
        names = CLASSES
        if rv is not None:
            classes, scores = rv.label_map(classes, scores)
            names = rv.names
        label_map = LabelMap(classes, PALETTE, scores=scores, names=names)
        ann = AnnotationSet(
            source=self.name, frame_id=msg.frame_id, t_ns=now, label_map=label_map,
            caption=caption,
        )
        out.append(OverlayUpdate(t_ns=now, trace_id=msg.trace_id, media_t_s=msg.media_t_s,
                                 frame_id=msg.frame_id, annotations=ann))
        return out


StageFactory = Callable[[], Stage]


def load_vision_pipeline(model_dir: Path | None, runtime: str, threads: int) -> Any:
    """Load ``vision.pipeline.VisionPipeline`` (label tables checked); raises on failure."""
    try:
        from vision.pipeline import VisionPipeline, check_model_tables
    except ImportError as exc:
        raise CopilotError(f"the vision model stage is not available: {exc}") from None
    check_model_tables(model_dir)
    pipe = VisionPipeline.load(model_dir, runtime=runtime, threads=threads)
    aliases = {"ort": "onnxruntime", "onnx": "onnxruntime", "pytorch": "torch", "trt": "tensorrt"}
    got = getattr(pipe.runtime, "name", None)
    if got is not None and got != aliases.get(runtime, runtime):
        raise CopilotError(f"runtime {runtime!r} is unavailable here (it would run {got!r})")
    return pipe


def vision_stage_factory(
    kind: str,
    model_dir: Path | None = None,
    runtime: str = "onnxruntime",
    clock: Clock = SYSTEM_CLOCK,
    threads: int = 1,
    pipeline: Any = None,
    real_view: Any = None,
) -> StageFactory | None:
    """The factory for analysis stage ``kind`` (none, heuristic, model); None for none.
    ``pipeline``: an already loaded model, used by the first stage made (restarts reload)."""
    if kind == "none":
        return None
    if kind == "heuristic":
        return lambda: HeuristicVisionStage(clock=clock)
    if kind == "model":
        preloaded = [pipeline] if pipeline is not None else []

        def make() -> Stage:
            return ModelVisionStage(model_dir=model_dir, runtime=runtime, threads=threads,
                                    clock=clock, pipeline=preloaded.pop() if preloaded else None,
                                    real_view=real_view)

        return make
    raise CopilotError(f"unknown vision stage {kind!r}; choose none, heuristic or model")
