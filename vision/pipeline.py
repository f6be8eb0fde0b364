"""The vision stage: frame -> preprocessing -> encoder runtime -> findings.

Usage::

    pipe = VisionPipeline.load()               # shipped default model, ONNX Runtime, 1 thread
    result = pipe.process(frame_rgb, frame_id=12, timestamp_s=0.48)
    result.phase_name, result.findings[0].polygons, result.timing_ms

One pipeline keeps the causal phase filter's state, so feed it one video's frames in order
(from one worker thread; calls are serialised by a lock) and call :meth:`reset` between
videos.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vision import modelio
from vision.errors import VisionError
from vision.labels import PHASES, REGIONS
from vision.offlabel import OFFLABEL, OffLabelScorer
from vision.postprocess import FindingsConfig, StructureFinding, structure_findings
from vision.preprocess import CropBox, preprocess
from vision.runtimes import EncoderRuntime, create_runtime
from vision.temporal import PhaseFilter


@dataclass
class VisionResult:
    """Everything the encoders say about one frame.

    Probabilities are dicts keyed by the label-table names. ``phase`` is after the causal
    temporal filter, ``phase_frame`` is the single-frame output; likewise ``region`` (filtered
    when the model ships a region filter) and ``region_frame``. ``label_map`` holds class
    ids at model output resolution covering ``fov_box`` (frame pixels). ``timing_ms`` has
    ``preprocess``, ``inference``, ``postprocess`` and ``total`` in milliseconds.
    """

    frame_id: int | None
    timestamp_s: float
    frame_size: tuple[int, int]  # (width, height) of the input frame
    fov_box: CropBox
    findings: list[StructureFinding]
    tools: dict[str, float]
    phase: dict[str, float]
    phase_frame: dict[str, float]
    cvs: dict[str, float]
    region: dict[str, float]
    label_map: np.ndarray
    embedding: np.ndarray
    region_frame: dict[str, float] = field(default_factory=dict)
    timing_ms: dict[str, float] = field(default_factory=dict)
    #: 0-1, higher = more like the domain the model was validated on (vision.offlabel);
    #: 1.0 when the model ships no off-label calibration (offlabel.npz).
    in_domain: float = 1.0
    #: per-pixel features [C, h, w] over ``fov_box`` (unit norm per cell; vision.teach), or
    #: None when the model file predates them (re-export it).
    features: np.ndarray | None = None
    #: True when ``in_domain`` is below the model's threshold: the frame is outside the
    #: validated domain and findings, phase and CVS must not drive alerts.
    off_label: bool = False

    @property
    def phase_name(self) -> str:
        """Most probable phase after temporal filtering."""
        return max(self.phase, key=self.phase.get)

    @property
    def region_name(self) -> str:
        """Most probable region / bowel segment."""
        return max(self.region, key=self.region.get)

    @property
    def laparoscopic(self) -> bool:
        """True when the region head says abdominal cavity: only then are ``phase`` and
        ``cvs`` meaningful (they were trained on cholecystectomy frames only)."""
        return self.region_name == "abdominal_cavity"

    @property
    def cvs_met(self) -> dict[str, bool]:
        """Each CVS criterion thresholded at 0.5."""
        return {k: v >= 0.5 for k, v in self.cvs.items()}

    # aliases used by the copilot's vision stage
    @property
    def structures(self) -> list[StructureFinding]:
        """Alias of ``findings``."""
        return self.findings

    @property
    def phase_names(self) -> tuple[str, ...]:
        """Phase names in probability order."""
        return tuple(self.phase)

    @property
    def phase_probs(self) -> np.ndarray:
        """Filtered phase probabilities as an array (order of ``phase_names``)."""
        return np.fromiter(self.phase.values(), np.float32, len(self.phase))

    @property
    def region_names(self) -> tuple[str, ...]:
        """Region names in probability order."""
        return tuple(self.region)

    @property
    def region_probs(self) -> np.ndarray:
        """Region probabilities as an array (order of ``region_names``)."""
        return np.fromiter(self.region.values(), np.float32, len(self.region))

    def frame_label_map(self) -> np.ndarray:
        """Class ids at model scale covering the whole frame (0 outside the field of view).

        ``label_map`` covers only ``fov_box``; this pads it so that stretching the result
        over the frame lines up with the video.
        """
        mh, mw = self.label_map.shape
        b = self.fov_box
        fw, fh = self.frame_size
        if (b.x0, b.y0, b.x1, b.y1) == (0, 0, fw, fh):
            return self.label_map
        sx, sy = b.width / mw, b.height / mh
        out = np.zeros((max(1, round(fh / sy)), max(1, round(fw / sx))), np.uint8)
        x0, y0 = round(b.x0 / sx), round(b.y0 / sy)
        h = min(mh, out.shape[0] - y0)
        w = min(mw, out.shape[1] - x0)
        out[y0:y0 + h, x0:x0 + w] = self.label_map[:h, :w]
        return out

    def finding(self, name: str) -> StructureFinding | None:
        """The finding for class ``name``, or None when not seen."""
        return next((f for f in self.findings if f.name == name), None)

    def tools_present(self, threshold: float = 0.5) -> list[str]:
        """Tool names with probability >= ``threshold``."""
        return [k for k, v in self.tools.items() if v >= threshold]


class VisionPipeline:
    """Preprocess + runtime + post-process + phase filter for one video stream."""

    def __init__(self, runtime: EncoderRuntime, phase_filter: PhaseFilter | None = None,
                 fov_crop: bool = True, findings: FindingsConfig | None = None,
                 default_fps: float = 25.0, region_filter: PhaseFilter | None = None) -> None:
        self.runtime = runtime
        cfg = runtime.config
        self.classes = tuple(cfg.classes)
        self.tools = tuple(cfg.tools)
        self.phases = tuple(cfg.phases)
        self.cvs_names = tuple(cfg.cvs_criteria)
        self.regions = tuple(cfg.regions)
        self.input_size = tuple(cfg.input_size)
        self.phase_filter = phase_filter or PhaseFilter.uniform(len(self.phases))
        self.region_filter = region_filter
        self.fov_crop = fov_crop
        self.findings_cfg = findings or FindingsConfig()
        self.default_dt = 1.0 / default_fps
        self._lock = threading.Lock()
        self.fov_every = 10
        self._fov: CropBox | None = None
        self._fov_shape: tuple | None = None
        self._n = 0
        self._last_t: float | None = None
        self.offlabel = None  # vision.offlabel.OffLabelScorer, set by load()
        extra = dict(getattr(cfg, "extra", {}) or {})
        #: in_domain threshold, validated-domain text and CVS validation (config.json).
        self.in_domain_threshold = float(extra.get("in_domain_threshold", 0.5))
        self.validated_on = str(extra.get("validated_on", "synthetic feeds only"))
        self.cvs_validation = dict(extra.get("cvs_validation", {}))
        self.cvs_claim_allowed = bool(self.cvs_validation.get("claim_allowed", False))

    @classmethod
    def load(cls, model_dir: Path | str | None = None, runtime: str = "onnxruntime",
             threads: int = 1, fov_crop: bool = True, device: str = "cpu",
             **runtime_kwargs) -> VisionPipeline:
        """Load ``model_dir`` (None = the shipped default) with the named runtime."""
        d = modelio.resolve_model_dir(model_dir)
        kwargs = dict(runtime_kwargs)
        if runtime in ("onnxruntime", "ort", "onnx", "torch", "pytorch"):
            kwargs.setdefault("device", device)
        rt = create_runtime(runtime, d, threads=threads, **kwargs)
        tpath = d / modelio.TEMPORAL
        pf = PhaseFilter.load(tpath) if tpath.is_file() else None
        rpath = d / modelio.REGION_TEMPORAL
        rf = PhaseFilter.load(rpath) if rpath.is_file() else None
        pipe = cls(rt, pf, fov_crop=fov_crop, region_filter=rf)
        opath = d / OFFLABEL
        if opath.is_file():
            try:
                pipe.offlabel = OffLabelScorer.load(opath)
            except (OSError, ValueError, KeyError) as exc:
                raise VisionError(f"corrupt off-label calibration {opath}: {exc}") from exc
        return pipe

    def reset(self) -> None:
        """Clear the temporal state (call between videos)."""
        with self._lock:
            self.phase_filter.reset()
            if self.region_filter is not None:
                self.region_filter.reset()
            self._n = 0
            self._last_t = None
            self._fov = None

    def process(self, frame_rgb: np.ndarray, frame_id: int | None = None,
                timestamp_s: float | None = None) -> VisionResult:
        """Run the encoders on one RGB uint8 frame [H, W, 3].

        ``timestamp_s`` is the frame's media time in seconds (used by the phase filter);
        when None, successive calls are assumed ``1 / default_fps`` apart.
        """
        with self._lock:
            t0 = time.perf_counter()
            # the endoscope's field of view moves rarely: search it every fov_every frames
            reuse = self._fov if (self._n % self.fov_every and self._fov_shape ==
                                  frame_rgb.shape) else None
            x, box = preprocess(frame_rgb, self.input_size, self.fov_crop, reuse)
            self._fov, self._fov_shape = box, frame_rgb.shape
            t1 = time.perf_counter()
            out = self.runtime.run(x)
            t2 = time.perf_counter()
            if timestamp_s is None:
                timestamp_s = 0.0 if self._last_t is None else self._last_t + self.default_dt
            self._last_t = timestamp_s
            labels = out["seg_labels"][0]
            if labels.dtype != np.uint8:
                labels = labels.astype(np.uint8)
            conf = out["seg_conf"][0]
            h, w = frame_rgb.shape[:2]
            findings = structure_findings(labels, conf, box, (h, w), self.classes,
                                          self.findings_cfg)
            phase_frame = out["phase"][0]
            phase = self.phase_filter.update(phase_frame, float(timestamp_s))
            region_frame = out["region"][0]
            region = region_frame if self.region_filter is None else \
                self.region_filter.update(region_frame, float(timestamp_s))
            res = VisionResult(
                frame_id=frame_id if frame_id is not None else self._n,
                timestamp_s=float(timestamp_s),
                frame_size=(w, h),
                fov_box=box,
                findings=findings,
                tools=dict(zip(self.tools, out["tools"][0].tolist(), strict=True)),
                phase=dict(zip(self.phases, phase.tolist(), strict=True)),
                phase_frame=dict(zip(self.phases, phase_frame.tolist(), strict=True)),
                cvs=dict(zip(self.cvs_names, out["cvs"][0].tolist(), strict=True)),
                region=dict(zip(self.regions, region.tolist(), strict=True)),
                region_frame=dict(zip(self.regions, region_frame.tolist(), strict=True)),
                label_map=labels,
                embedding=out["embedding"][0],
                features=out["features"][0] if "features" in out else None,
            )
            if self.offlabel is not None:
                res.in_domain = float(self.offlabel.score(out["embedding"][0], x)[0])
                res.off_label = res.in_domain < self.in_domain_threshold
            t3 = time.perf_counter()
            res.timing_ms = {
                "preprocess": (t1 - t0) * 1e3,
                "inference": (t2 - t1) * 1e3,
                "postprocess": (t3 - t2) * 1e3,
                "total": (t3 - t0) * 1e3,
            }
            self._n += 1
            return res

    def describe(self) -> str:
        """One line for logs: model dir, runtime, input size."""
        w, h = self.input_size
        ol = "off-label score on" if self.offlabel is not None else "no off-label calibration"
        return (f"vision {self.runtime.model_dir} via {self.runtime.describe()} at {w}x{h} "
                f"({ol})")


def check_model_tables(model_dir: Path | str | None = None) -> None:
    """Raise VisionError when a model's label tables differ from ``vision.labels``."""
    cfg = modelio.load_config(modelio.resolve_model_dir(model_dir))
    if tuple(cfg.phases) != PHASES or tuple(cfg.regions) != REGIONS:
        raise VisionError("model label tables differ from vision.labels; retrain or convert")
