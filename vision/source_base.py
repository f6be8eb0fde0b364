"""The video-source interface: ``SourceInfo``, ``VideoSource`` and the frame-size guard
shared by the decoders (``vision.sources``) and the reconnecting stream
(``vision.reconnect``)."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceInfo:
    """What a source delivers: frame rate (Hz), size (px), frame count if known."""

    uri: str
    backend: str
    fps: float
    width: int
    height: int
    n_frames: int | None
    live: bool


class VideoSource(ABC):
    """A video source; iterate it for frames, ``close`` it when done."""

    info: SourceInfo
    truncated: str | None = None

    @abstractmethod
    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """Yield (frame index, media time in s, RGB uint8 HxWx3)."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release the decoder / device."""

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fit(rgb: np.ndarray, size: tuple[int, int], uri: str) -> np.ndarray:
    """``rgb`` resized to ``size`` (w, h) when a stream changed its frame size mid-way."""
    h, w = rgb.shape[:2]
    if (w, h) == size:
        return rgb
    import cv2

    log.warning("%s: frame size changed to %dx%d; scaled to %dx%d", uri, w, h, *size)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
