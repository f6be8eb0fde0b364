"""Training / evaluation data: synthetic feeds and the public formats.

All loaders return :class:`vision.datasets.common.LabelledFrames` prepared at the model's
input / output sizes.
"""

from vision.datasets.common import LabelledFrames, prepare_frame

__all__ = ["LabelledFrames", "prepare_frame"]
