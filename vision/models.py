"""Encoder network: one compact CNN backbone shared by five heads.

Heads: semantic segmentation of ``labels.CLASSES``, tool presence (``TOOLS``), per-frame
phase (``PHASES``; smoothed causally by :mod:`vision.temporal`), CVS criteria
(``CVS_CRITERIA``) and anatomical region / bowel segment (``REGIONS``).

The backbone is a MobileNet-style stack of depthwise-separable blocks (random init: no
pretrained weights can be fetched), with an LR-ASPP-style segmentation decoder. The network
takes float32 NCHW RGB in 0..255 and normalises internally, so preprocessing is only a
resize and a transpose. :class:`DeployModel` wraps it with the cheap output transforms
(argmax label map, per-pixel confidence, sigmoid / softmax) that the runtimes execute, so
post-processing in Python stays small.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from vision.features import pixel_features
from vision.labels import CLASSES, CVS_CRITERIA, PHASES, REGIONS, TOOLS

#: Names of the deploy outputs, in order (ONNX output names).
OUTPUT_NAMES: tuple[str, ...] = (
    "seg_labels",  # [1, Ho, Wo] int64 class ids at output resolution
    "seg_conf",  # [1, Ho, Wo] float32 softmax probability of the argmax class
    "tools",  # [1, 7] sigmoid probabilities
    "phase",  # [1, 7] softmax probabilities (per frame, before temporal smoothing)
    "cvs",  # [1, 3] sigmoid probabilities
    "region",  # [1, 15] softmax probabilities
    "embedding",  # [1, E] per-frame feature vector
    "features",  # [1, C, H/16, W/16] per-pixel features, unit L2 norm per cell (vision.teach)
)
INPUT_NAME = "image"


@dataclass
class ModelConfig:
    """Architecture and label-table description stored as ``config.json`` in a model dir."""

    input_size: tuple[int, int] = (256, 256)  # (width, height) in pixels
    widths: tuple[int, ...] = (32, 48, 96, 128, 192)  # stem, 1/4, 1/8, 1/16, 1/32
    depths: tuple[int, ...] = (2, 3, 4, 2)  # blocks per stage after the stem
    decoder_channels: int = 96
    embedding_dim: int = 64
    output_stride: int = 2  # segmentation output = input / output_stride
    classes: tuple[str, ...] = CLASSES
    tools: tuple[str, ...] = TOOLS
    phases: tuple[str, ...] = PHASES
    cvs_criteria: tuple[str, ...] = CVS_CRITERIA
    regions: tuple[str, ...] = REGIONS
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    extra: dict = field(default_factory=dict)
    #: "sepnet" (small random-init CNN above) or "mnv2" (vision.mnv2net: MobileNetV2 /
    #: DeepLabV3 backbone from real pretrained weights; mean = std = 128/255).
    arch: str = "sepnet"
    backbone_stride: int = 16  # mnv2: 16 (DeepLabV3 layout, dilated) or 32

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are kept in ``extra``."""
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {}
        extra = dict(d.get("extra", {}))
        for k, v in d.items():
            if k == "extra":
                continue
            if k in known:
                kwargs[k] = tuple(v) if isinstance(v, list) else v
            else:
                extra[k] = v
        kwargs["extra"] = extra
        return cls(**kwargs)

    @property
    def output_size(self) -> tuple[int, int]:
        """Segmentation output (width, height) in pixels."""
        w, h = self.input_size
        return w // self.output_stride, h // self.output_stride


class ConvBNAct(nn.Sequential):
    """Conv2d + BatchNorm + ReLU."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
                 act: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class SepBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1, residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.dw = ConvBNAct(cin, cin, 3, stride, groups=cin)
        self.pw = ConvBNAct(cin, cout, 1, act=stride != 1 or cin != cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return F.relu(x + y) if self.residual else y


class Backbone(nn.Module):
    """Stem (stride 2) + four stages (each stride 2); returns features at 1/4 .. 1/32."""

    def __init__(self, widths: tuple[int, ...], depths: tuple[int, ...]) -> None:
        super().__init__()
        self.stem = ConvBNAct(3, widths[0], 3, 2)
        stages = []
        cin = widths[0]
        for cout, depth in zip(widths[1:], depths, strict=True):
            blocks = [SepBlock(cin, cout, 2)] + [SepBlock(cout, cout) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats  # strides 4, 8, 16, 32


class SegDecoder(nn.Module):
    """LR-ASPP-style decoder: gated 1/32 context, fused with 1/8 and 1/4 skips."""

    def __init__(self, widths: tuple[int, ...], ch: int, n_classes: int) -> None:
        super().__init__()
        c4, c8, c16, c32 = widths[1:5]
        self.high = ConvBNAct(c32, ch, 1)
        self.gate = nn.Conv2d(c32, ch, 1)
        self.mid = ConvBNAct(c16, ch, 1)
        self.skip8 = ConvBNAct(c8, ch, 1)
        self.fuse = nn.Sequential(SepBlock(ch + c4, ch), ConvBNAct(ch, ch, 1))
        self.cls = nn.Conv2d(ch, n_classes, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        f4, f8, f16, f32 = feats
        g = torch.sigmoid(self.gate(F.adaptive_avg_pool2d(f32, 1)))
        x = self.high(f32) * g
        x = F.interpolate(x, size=f16.shape[-2:], mode="bilinear", align_corners=False)
        x = x + self.mid(f16)
        x = F.interpolate(x, size=f8.shape[-2:], mode="bilinear", align_corners=False)
        x = x + self.skip8(f8)
        x = F.interpolate(x, size=f4.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse(torch.cat([x, f4], dim=1))
        return self.cls(x)  # logits at 1/4


class EncoderNet(nn.Module):
    """Shared backbone + segmentation / tools / phase / CVS / region heads (raw logits)."""

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ModelConfig()
        self.cfg = cfg
        self.register_buffer("mean", torch.tensor(cfg.mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("inv_std", 1.0 / (torch.tensor(cfg.std).view(1, 3, 1, 1) * 255.0))
        if cfg.arch == "mnv2":
            from vision.mnv2net import MNV2Encoder

            self.mnv2 = MNV2Encoder(tuple(cfg.classes), len(cfg.tools), len(cfg.phases),
                                    len(cfg.cvs_criteria), len(cfg.regions),
                                    cfg.backbone_stride)
            return
        if cfg.arch != "sepnet":
            raise ValueError(f"unknown encoder arch {cfg.arch!r}")
        self.backbone = Backbone(cfg.widths, cfg.depths)
        self.decoder = SegDecoder(cfg.widths, cfg.decoder_channels, len(cfg.classes))
        pooled = cfg.widths[3] + cfg.widths[4]
        self.embed = nn.Sequential(nn.Linear(pooled, cfg.embedding_dim), nn.ReLU(inplace=True))
        e = cfg.embedding_dim
        self.tools_head = nn.Linear(e, len(cfg.tools))
        self.phase_head = nn.Linear(e, len(cfg.phases))
        self.cvs_head = nn.Linear(e, len(cfg.cvs_criteria))
        self.region_head = nn.Linear(e, len(cfg.regions))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """``image``: float32 [N, 3, H, W] RGB 0..255. Returns raw logits per head.

        ``seg`` is at output resolution (input / ``output_stride``).
        """
        x = (image - self.mean) * self.inv_std
        out_hw = (image.shape[-2] // self.cfg.output_stride,
                  image.shape[-1] // self.cfg.output_stride)
        if self.cfg.arch == "mnv2":
            o = self.mnv2(x)
            if o["seg"].shape[-2:] != out_hw:
                o["seg"] = F.interpolate(o["seg"], size=out_hw, mode="bilinear",
                                         align_corners=False)
            return o
        feats = self.backbone(x)
        seg = self.decoder(feats)
        if seg.shape[-2:] != out_hw:
            seg = F.interpolate(seg, size=out_hw, mode="bilinear", align_corners=False)
        pooled = torch.cat([feats[2].mean(dim=(2, 3)), feats[3].mean(dim=(2, 3))], dim=1)
        emb = self.embed(pooled)
        return {
            "seg": seg,
            "tools": self.tools_head(emb),
            "phase": self.phase_head(emb),
            "cvs": self.cvs_head(emb),
            "region": self.region_head(emb),
            "embedding": emb,
            "features": pixel_features(feats[2], feats[3]),
        }


class DeployModel(nn.Module):
    """EncoderNet + output transforms; returns tensors in :data:`OUTPUT_NAMES` order."""

    def __init__(self, net: EncoderNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        o = self.net(image)
        seg = o["seg"]
        # max softmax probability = 1 / sum(exp(logit - max logit)); avoids a channel softmax
        top, labels = seg.max(dim=1, keepdim=True)
        conf = torch.reciprocal(torch.exp(seg - top).sum(dim=1))
        labels = labels.squeeze(1)
        return (
            labels,
            conf,
            torch.sigmoid(o["tools"]),
            torch.softmax(o["phase"], dim=1),
            torch.sigmoid(o["cvs"]),
            torch.softmax(o["region"], dim=1),
            o["embedding"],
            o["features"],
        )


def mnv2_config(input_size: tuple[int, int] = (512, 288), output_stride: int = 2,
                backbone_stride: int = 32) -> ModelConfig:
    """Config of the pretrained-backbone encoder: input (width, height) multiples of
    ``backbone_stride``."""
    from vision.backbone import ASPP_CH, HIGH_CH

    s = 128.0 / 255.0  # (x - 128) / 128, the pretrained networks' input scaling
    return ModelConfig(input_size=tuple(input_size), output_stride=output_stride,
                       embedding_dim=HIGH_CH + ASPP_CH, mean=(s, s, s), std=(s, s, s),
                       arch="mnv2", widths=(), depths=(), decoder_channels=96,
                       backbone_stride=backbone_stride)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
