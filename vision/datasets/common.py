"""In-memory labelled frames shared by all loaders (struct of arrays).

Every loader returns :class:`LabelledFrames` already cropped to the field of view and
resized to the model input (images) and output (masks) sizes, so training and evaluation
see exactly what the runtime sees. Unknown labels are marked, not guessed: mask pixels
``IGNORE_INDEX``, ``phase`` / ``region`` = -1, ``cvs_valid`` / ``tools_valid`` = False.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from vision.labels import CVS_CRITERIA, IGNORE_INDEX, TOOLS
from vision.preprocess import CropBox, find_fov, resize_rgb


@dataclass
class LabelledFrames:
    """N frames with their labels; arrays share the first dimension."""

    images: np.ndarray  # [N, H, W, 3] uint8 RGB at model input size
    masks: np.ndarray  # [N, Ho, Wo] uint8 class ids, IGNORE_INDEX = unknown
    phase: np.ndarray  # [N] int64, -1 = unknown / not a cholecystectomy frame
    region: np.ndarray  # [N] int64 index into REGIONS, -1 = unknown
    cvs: np.ndarray  # [N, 3] float32 0/1
    cvs_valid: np.ndarray  # [N] bool
    tools: np.ndarray  # [N, 7] float32 0/1
    tools_valid: np.ndarray  # [N] bool
    times: np.ndarray  # [N] float64 seconds within the source video
    video: np.ndarray  # [N] int64 index into ``sources``
    sources: list[str] = field(default_factory=list)
    fps: list[float] = field(default_factory=list)  # per source

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @classmethod
    def empty(cls, input_size: tuple[int, int], output_size: tuple[int, int]) -> LabelledFrames:
        """No frames, right shapes."""
        w, h = input_size
        wo, ho = output_size
        return cls(
            images=np.zeros((0, h, w, 3), np.uint8),
            masks=np.zeros((0, ho, wo), np.uint8),
            phase=np.zeros(0, np.int64),
            region=np.zeros(0, np.int64),
            cvs=np.zeros((0, len(CVS_CRITERIA)), np.float32),
            cvs_valid=np.zeros(0, bool),
            tools=np.zeros((0, len(TOOLS)), np.float32),
            tools_valid=np.zeros(0, bool),
            times=np.zeros(0, np.float64),
            video=np.zeros(0, np.int64),
        )

    @staticmethod
    def concat(parts: list[LabelledFrames]) -> LabelledFrames:
        """Concatenate, renumbering video indices."""
        if not parts:
            raise ValueError("nothing to concatenate")
        offsets = np.cumsum([0] + [len(p.sources) for p in parts[:-1]])
        arrays = {}
        for name in ("images", "masks", "phase", "region", "cvs", "cvs_valid", "tools",
                     "tools_valid", "times"):
            arrays[name] = np.concatenate([getattr(p, name) for p in parts])
        arrays["video"] = np.concatenate([p.video + o for p, o in zip(parts, offsets,
                                                                      strict=True)])
        return LabelledFrames(**arrays, sources=[s for p in parts for s in p.sources],
                              fps=[f for p in parts for f in p.fps])

    def subset(self, idx: np.ndarray) -> LabelledFrames:
        """Frames at ``idx`` (sources kept)."""
        return LabelledFrames(
            images=self.images[idx], masks=self.masks[idx], phase=self.phase[idx],
            region=self.region[idx], cvs=self.cvs[idx], cvs_valid=self.cvs_valid[idx],
            tools=self.tools[idx], tools_valid=self.tools_valid[idx], times=self.times[idx],
            video=self.video[idx], sources=list(self.sources), fps=list(self.fps))


def video_ids(data: LabelledFrames) -> np.ndarray:
    """Per frame the source video's name (e.g. ``endoscapes/100``)."""
    return np.array(data.sources)[data.video]


def prepare_frame(rgb: np.ndarray, mask: np.ndarray | None, input_size: tuple[int, int],
                  output_size: tuple[int, int], fov_crop: bool = True
                  ) -> tuple[np.ndarray, np.ndarray, CropBox]:
    """FOV-crop and resize an RGB frame (area / linear) and its mask (nearest).

    A missing mask becomes all ``IGNORE_INDEX``.
    """
    h, w = rgb.shape[:2]
    box = find_fov(rgb) if fov_crop else CropBox(0, 0, w, h)
    img = resize_rgb(rgb[box.y0:box.y1, box.x0:box.x1], input_size)
    if mask is None:
        m = np.full((output_size[1], output_size[0]), IGNORE_INDEX, np.uint8)
    else:
        if mask.shape[:2] != (h, w):
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
        m = cv2.resize(np.ascontiguousarray(mask[box.y0:box.y1, box.x0:box.x1]), output_size,
                       interpolation=cv2.INTER_NEAREST)
    return img, m, box


class FrameBuilder:
    """Accumulates prepared frames of one source video into a :class:`LabelledFrames`."""

    def __init__(self, source: str, fps: float, input_size: tuple[int, int],
                 output_size: tuple[int, int], fov_crop: bool = True) -> None:
        self.source, self.fps = source, float(fps)
        self.input_size, self.output_size = tuple(input_size), tuple(output_size)
        self.fov_crop = fov_crop
        self.rows: list[tuple] = []

    def add(self, rgb: np.ndarray, mask: np.ndarray | None, t_s: float, phase: int = -1,
            region: int = -1, cvs: np.ndarray | None = None,
            tools: np.ndarray | None = None) -> None:
        """Prepare and store one frame with its labels (None = unknown)."""
        img, m, _ = prepare_frame(rgb, mask, self.input_size, self.output_size, self.fov_crop)
        self.rows.append((img, m, int(phase), int(region), cvs, tools, float(t_s)))

    def build(self) -> LabelledFrames:
        """All frames added so far."""
        if not self.rows:
            out = LabelledFrames.empty(self.input_size, self.output_size)
            out.sources, out.fps = [self.source], [self.fps]
            return out
        nc, nt = len(CVS_CRITERIA), len(TOOLS)
        return LabelledFrames(
            images=np.stack([r[0] for r in self.rows]),
            masks=np.stack([r[1] for r in self.rows]),
            phase=np.array([r[2] for r in self.rows], np.int64),
            region=np.array([r[3] for r in self.rows], np.int64),
            cvs=np.stack([np.zeros(nc, np.float32) if r[4] is None
                          else np.asarray(r[4], np.float32) for r in self.rows]),
            cvs_valid=np.array([r[4] is not None for r in self.rows]),
            tools=np.stack([np.zeros(nt, np.float32) if r[5] is None
                            else np.asarray(r[5], np.float32) for r in self.rows]),
            tools_valid=np.array([r[5] is not None for r in self.rows]),
            times=np.array([r[6] for r in self.rows], np.float64),
            video=np.zeros(len(self.rows), np.int64),
            sources=[self.source],
            fps=[self.fps],
        )


def decode_video_frames(path, keep=None, max_frames: int | None = None):
    """Yield (frame_index, rgb uint8) from a video file with PyAV, for indices ``keep(i)``."""
    import av

    from vision.errors import VisionError

    try:
        container = av.open(str(path))
    except Exception as exc:  # av raises its own error types
        raise VisionError(f"cannot open video {path}: {exc}") from exc
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        n = 0
        for i, frame in enumerate(container.decode(stream)):
            if keep is None or keep(i):
                yield i, frame.to_ndarray(format="rgb24")
                n += 1
                if max_frames is not None and n >= max_frames:
                    break
    except av.error.FFmpegError as exc:
        raise VisionError(f"cannot decode video {path}: {exc}") from exc
    finally:
        container.close()
