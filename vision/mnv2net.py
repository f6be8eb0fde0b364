"""Encoder on the pretrained MobileNetV2 / DeepLabV3 backbone (``ModelConfig.arch = "mnv2"``).

One backbone (:class:`vision.backbone.DeepLabMNV2`, output stride 16) feeds all heads:

- segmentation: ASPP output (1/16 or 1/32) upsampled and fused with the 1/16, 1/8 and 1/4
  features (DeepLabV3+-style decoder, depthwise-separable), logits at 1/4 of the input;
- ``embedding``: global mean of the deepest backbone features (320) and of the ASPP output
  (256) = 576 values; it is also what the off-label score (vision.offlabel) measures;
- ``features``: per-pixel features for teaching (:func:`vision.models.pixel_features` of the
  1/16 backbone features (96) and the ASPP output (256): 352 channels at 1/16);
- tools / phase / region: a 128-unit hidden layer on the embedding;
- CVS: a linear layer on the embedding plus features of the segmentation's own output
  (mean probability of every class and the probability-weighted centroid of the duct,
  artery, cystic plate, hepatocystic triangle and gallbladder): the CVS criteria are about
  those structures. Both inputs are detached so the weak CVS labels never move the backbone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vision.backbone import ASPP_CH, F16_CH, HIGH_CH, LOW_CH, MID_CH, DeepLabMNV2
from vision.features import pixel_features

#: Classes whose centroid is a CVS feature (names; missing names are skipped).
CVS_SHAPE_CLASSES = ("cystic_duct", "cystic_artery", "cystic_plate", "hepatocystic_triangle",
                     "gallbladder")
HIDDEN = 128
DEC_CH = 64


def _sep(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _cbr(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class MNV2Encoder(nn.Module):
    """Pretrained-backbone encoder; forward takes the already normalised input."""

    def __init__(self, classes: tuple[str, ...], n_tools: int, n_phases: int, n_cvs: int,
                 n_regions: int, backbone_stride: int = 16) -> None:
        super().__init__()
        self.body = DeepLabMNV2(backbone_stride)
        self.high = _cbr(ASPP_CH, DEC_CH)
        self.m16 = _cbr(F16_CH, DEC_CH)
        self.mid = _cbr(MID_CH, DEC_CH)
        self.low = _cbr(LOW_CH, 32)
        self.fuse = _sep(DEC_CH + 32, DEC_CH)
        self.cls = nn.Conv2d(DEC_CH, len(classes), 1)
        self.shape_idx = [classes.index(c) for c in CVS_SHAPE_CLASSES if c in classes]
        self.embedding_dim = HIGH_CH + ASPP_CH
        n_seg_feats = len(classes) + 2 * len(self.shape_idx)
        self.hidden = nn.Sequential(nn.Linear(self.embedding_dim, HIDDEN), nn.ReLU(inplace=True),
                                    nn.Dropout(0.2))
        self.tools_head = nn.Linear(HIDDEN, n_tools)
        self.phase_head = nn.Linear(HIDDEN, n_phases)
        self.region_head = nn.Linear(HIDDEN, n_regions)
        self.cvs_head = nn.Linear(self.embedding_dim + n_seg_feats, n_cvs)

    def seg_features(self, seg: torch.Tensor) -> torch.Tensor:
        """[N, C, h, w] logits -> [N, C + 2 * shapes]: mean probabilities, centroids (0..1)."""
        p = torch.softmax(seg, dim=1)
        area = p.mean(dim=(2, 3))
        h, w = p.shape[-2:]
        ys = (torch.arange(h, dtype=p.dtype) + 0.5) / h
        xs = (torch.arange(w, dtype=p.dtype) + 0.5) / w
        cents = []
        for i in self.shape_idx:
            pi = p[:, i]
            mass = pi.sum(dim=(1, 2)) + 1e-3
            cents.append((pi.sum(dim=1) * xs).sum(dim=1) / mass)
            cents.append((pi.sum(dim=2) * ys).sum(dim=1) / mass)
        return torch.cat([area, torch.stack(cents, dim=1)], dim=1) if cents else area

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised [N, 3, H, W] -> raw logits per head; ``seg`` at 1/4 of the input."""
        return self.tail(*self.body.front(x))

    def tail(self, f4: torch.Tensor, f8: torch.Tensor, f16: torch.Tensor
             ) -> dict[str, torch.Tensor]:
        """Everything after the backbone's 1/16 features."""
        return self.head(f4, f8, f16, *self.body.back(f16))

    def head(self, f4: torch.Tensor, f8: torch.Tensor, f16: torch.Tensor, top: torch.Tensor,
             aspp: torch.Tensor) -> dict[str, torch.Tensor]:
        """Decoder and heads on the backbone's features (training on cached features)."""
        y = F.interpolate(self.high(aspp), size=f16.shape[-2:], mode="bilinear",
                          align_corners=False) + self.m16(f16)
        y = F.interpolate(y, size=f8.shape[-2:], mode="bilinear", align_corners=False) \
            + self.mid(f8)
        y = F.interpolate(y, size=f4.shape[-2:], mode="bilinear", align_corners=False)
        seg = self.cls(self.fuse(torch.cat([y, self.low(f4)], dim=1)))
        emb = torch.cat([top.mean(dim=(2, 3)), aspp.mean(dim=(2, 3))], dim=1)
        hid = self.hidden(emb)
        cvs_in = torch.cat([emb.detach(), self.seg_features(seg.detach())], dim=1)
        return {"seg": seg, "tools": self.tools_head(hid), "phase": self.phase_head(hid),
                "cvs": self.cvs_head(cvs_in), "region": self.region_head(hid),
                "embedding": emb, "features": pixel_features(f16, aspp)}
