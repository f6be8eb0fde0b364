"""MobileNetV2 backbone (DeepLabV3 output stride 16) that loads the real pretrained weights.

The weights in ``../shared/models/pretrained`` (google-coral test data, Apache-2.0, turned
back into float state_dicts) come from TensorFlow, so two conventions of the original are
kept so that the pretrained features are reproduced exactly:

- input scaling ``(x - 128) / 128`` on RGB 0..255 (range -1..1), not ImageNet mean / std;
- TensorFlow "SAME" padding of the stride-2 3x3 convolutions pads one pixel on the right and
  bottom only (input sides even), so those convolutions pad asymmetrically (:class:`TFSameConv2d`).

Layout (torchvision ``mobilenet_v2().features[:18]``): block 14's depthwise convolution has
stride 1 and blocks 15-17 dilation 2 (output stride 16, as DeepLabV3). Batch norm was folded
into the convolutions by the conversion; every BatchNorm is an identity with the folded bias
as beta (still trainable). The DeepLabV3 head is ``aspp0`` (1x1) and ``image_pooling`` (1x1
on the global mean), concatenated [pooling, aspp0] and projected to 256 channels.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

#: Default locations of the pretrained state_dicts (never needed at run time).
SHARED_PRETRAINED = Path(__file__).resolve().parents[2] / "shared" / "models" / "pretrained"
DEEPLAB_VOC = SHARED_PRETRAINED / "deeplabv3_mnv2_pascal" / \
    "deeplabv3_mnv2_os16_pascal21_from_coral_qat.pth"
MNV2_IMAGENET = SHARED_PRETRAINED / "mobilenet_v2_imagenet" / \
    "mobilenet_v2_1.0_imagenet1001_from_coral_qat.pth"
#: Channels of the feature maps the decoder uses: 1/4 (features[3]), 1/8 (features[6]),
#: 1/16 (features[13]), deepest (features[17]).
LOW_CH, MID_CH, F16_CH, HIGH_CH = 24, 32, 96, 320
ASPP_CH = 256


class TFSameConv2d(nn.Conv2d):
    """Stride-2 conv with TensorFlow SAME padding: (k - 2) // 2 ... extra pixel right/bottom.

    For a 3x3 stride-2 convolution on an even-sized input TF pads 0 top/left, 1 bottom/right.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size[0]
        total = max(k - self.stride[0], 0)
        lo = total // 2
        x = F.pad(x, (lo, total - lo, lo, total - lo))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _tf_same(conv: nn.Conv2d) -> None:
    conv.__class__ = TFSameConv2d
    conv.padding = (0, 0)


def mobilenet_v2_os16(output_stride: int = 16) -> nn.Sequential:
    """torchvision MobileNetV2 ``features[:18]`` with TF padding and output stride 16
    (DeepLabV3 layout) or 32 (the ImageNet classifier's layout; about a third cheaper)."""
    from torchvision.models import mobilenet_v2

    feats = mobilenet_v2().features[:18]
    for m in feats.modules():
        if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
            _tf_same(m)
    if output_stride == 32:
        return feats
    dw14 = feats[14].conv[1][0]
    dw14.__class__ = nn.Conv2d  # stride 1 in the OS16 layout
    dw14.stride, dw14.padding = (1, 1), (1, 1)
    for i in (15, 16, 17):
        dw = feats[i].conv[1][0]
        dw.dilation, dw.padding = (2, 2), (2, 2)
    return feats


def _cbr(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class DeepLabMNV2(nn.Module):
    """MobileNetV2 + DeepLabV3 ASPP-lite; returns (1/4, 1/8, 1/16 features, deepest
    features, ASPP out) (deepest at 1/16 or 1/32 by ``output_stride``)."""

    def __init__(self, output_stride: int = 16) -> None:
        super().__init__()
        self.backbone = mobilenet_v2_os16(output_stride)
        self.aspp0 = _cbr(HIGH_CH, ASPP_CH)
        self.image_pooling = _cbr(HIGH_CH, ASPP_CH)
        self.concat_projection = _cbr(2 * ASPP_CH, ASPP_CH)

    def front(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised input -> features at 1/4 (features[3]), 1/8 ([6]) and 1/16 ([13])."""
        f4 = f8 = x
        for i, layer in enumerate(self.backbone[:14]):
            x = layer(x)
            if i == 3:
                f4 = x
            elif i == 6:
                f8 = x
        return f4, f8, x

    def back(self, f16: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """1/16 features -> (deepest features, ASPP output)."""
        x = self.backbone[14:](f16)
        pool = self.image_pooling(x.mean(dim=(2, 3), keepdim=True)).expand(-1, -1, *x.shape[-2:])
        return x, self.concat_projection(torch.cat([pool, self.aspp0(x)], dim=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``x``: normalised input [N, 3, H, W] (H, W multiples of the output stride)."""
        f4, f8, f16 = self.front(x)
        return (f4, f8, f16, *self.back(f16))


def load_pretrained(net: DeepLabMNV2, path: Path | str | None = None) -> str:
    """Load DeepLabV3 VOC (all but ``logits``) or ImageNet MobileNetV2 (backbone) weights.

    Returns a short description of what was loaded. Raises FileNotFoundError when absent.
    """
    path = Path(path) if path is not None else DEEPLAB_VOC
    state = torch.load(path, map_location="cpu", weights_only=True)
    if any(k.startswith("backbone.") for k in state):
        sub = {k: v for k, v in state.items() if not k.startswith("logits.")}
        missing, unexpected = net.load_state_dict(sub, strict=False)
        what = "DeepLabV3-MobileNetV2 PASCAL VOC (backbone + ASPP)"
    else:  # torchvision mobilenet_v2(num_classes=1001) keys: features.N.*
        sub = {k.replace("features.", "", 1): v for k, v in state.items()
               if k.startswith("features.") and int(k.split(".")[1]) < 18}
        missing, unexpected = net.backbone.load_state_dict(sub, strict=False)
        what = "MobileNetV2 ImageNet (backbone only)"
    if missing or unexpected:
        raise ValueError(f"pretrained weights do not fit: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return f"{what} from {path.name}"
