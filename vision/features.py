"""Per-pixel features for teaching by example (``vision.teach``), shared by the encoders
(``vision.models``, ``vision.mnv2net``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_features(f16: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
    """Per-pixel features for teaching by example (:mod:`vision.teach`): the 1/16 backbone
    features and the deeper (1/16 or 1/32) context features, each L2-normalised per cell,
    the latter upsampled to 1/16, concatenated and normalised again -> [N, C1 + C2, H/16, W/16]."""
    deep = F.interpolate(deep, size=f16.shape[-2:], mode="bilinear", align_corners=False)
    return F.normalize(torch.cat([F.normalize(f16, dim=1), F.normalize(deep, dim=1)], 1), dim=1)
