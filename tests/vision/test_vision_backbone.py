"""Pretrained-backbone encoder: TF padding, OS16 layout, weight loading, partial-label loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vision.backbone import DEEPLAB_VOC, MNV2_IMAGENET, TFSameConv2d, load_pretrained
from vision.datasets.endoscapes import ENDOSCAPES_GROUPS, model_to_endoscapes_lut
from vision.labels import CLASS_ID, CLASSES, IGNORE_INDEX
from vision.models import DeployModel, EncoderNet, mnv2_config
from vision.partial import group_dice, group_matrix, partial_ce, synthetic_groups


def test_vision_tf_same_conv_pads_right_and_bottom() -> None:
    torch.manual_seed(0)
    conv = TFSameConv2d(3, 4, 3, stride=2, padding=0, bias=False)
    x = torch.randn(1, 3, 8, 10)
    want = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, None, 2)
    assert torch.allclose(conv(x), want)
    assert conv(x).shape[-2:] == (4, 5)


def test_vision_mnv2_encoder_shapes_and_scaling() -> None:
    cfg = mnv2_config((96, 64), output_stride=2)
    assert cfg.arch == "mnv2" and cfg.output_size == (48, 32)
    net = EncoderNet(cfg).eval()
    # (x - 128) / 128: 128 maps to 0, 255 to ~1
    assert float(((torch.full((1, 3, 1, 1), 128.0) - net.mean) * net.inv_std).abs().max()) < 1e-5
    out = net(torch.rand(2, 3, 64, 96) * 255)
    assert out["seg"].shape == (2, len(CLASSES), 32, 48)
    assert out["embedding"].shape == (2, net.mnv2.embedding_dim)
    labels, conf, tools, phase, cvs, region, emb, feats = DeployModel(net).eval()(
        torch.rand(1, 3, 64, 96) * 255)
    assert labels.shape == (1, 32, 48) and cvs.shape == (1, 3)
    assert feats.shape == (1, 96 + 256, 4, 6)  # per-pixel features at 1/16 (vision.teach)
    assert torch.allclose(feats.norm(dim=1), torch.ones(1, 4, 6), atol=1e-5)
    assert torch.allclose(phase.sum(1), torch.ones(1))


@pytest.mark.skipif(not DEEPLAB_VOC.is_file(), reason="../shared pretrained weights missing")
def test_vision_loads_real_pretrained_weights() -> None:
    net = EncoderNet(mnv2_config((96, 64)))
    before = net.mnv2.body.backbone[0][0].weight.clone()
    what = load_pretrained(net.mnv2.body)
    assert "VOC" in what and not torch.equal(before, net.mnv2.body.backbone[0][0].weight)
    state = torch.load(DEEPLAB_VOC, map_location="cpu", weights_only=True)
    assert torch.equal(state["aspp0.0.weight"], net.mnv2.body.aspp0[0].weight)
    if MNV2_IMAGENET.is_file():
        assert "ImageNet" in load_pretrained(net.mnv2.body, MNV2_IMAGENET)


def test_vision_partial_loss_teaches_only_the_dataset_label_space() -> None:
    g = torch.from_numpy(group_matrix(ENDOSCAPES_GROUPS))
    n = len(CLASSES)

    def loss(winner: str, label: int, groups=g) -> float:
        logits = torch.zeros(1, n, 1, 1)
        logits[0, CLASS_ID[winner]] = 8.0
        return float(partial_ce(logits, torch.tensor([[[label]]]), groups))

    assert loss("grasper", 6) < 0.01 and loss("l_hook", 6) < 0.01  # tool = any instrument
    assert loss("liver", 0) < 0.01 and loss("fat", 0) < 0.01  # not annotated by Endoscapes
    assert loss("liver", 6) > 5 and loss("gallbladder", 0) > 5
    gs = torch.from_numpy(group_matrix(synthetic_groups()))
    fat = CLASS_ID["fat"]
    assert loss("hepatocystic_triangle", fat, gs) < 0.01  # synthetic never teaches against it
    assert loss("gallbladder", fat, gs) > 5
    ignore = torch.full((1, 1, 1), IGNORE_INDEX)
    assert float(partial_ce(torch.zeros(1, n, 1, 1), ignore, g)) == 0.0
    d = group_dice(torch.zeros(1, n, 2, 2, requires_grad=True), torch.ones(1, 2, 2).long(), g,
                   [1, 2])
    d.backward()
    lut = model_to_endoscapes_lut()
    assert lut[CLASS_ID["scissors"]] == 6 and lut[CLASS_ID["liver"]] == 0
    assert lut[CLASS_ID["hepatocystic_triangle"]] == 2 and lut[CLASS_ID["cystic_plate"]] == 1
    assert np.all(lut[[CLASS_ID["cystic_artery"], CLASS_ID["cystic_duct"]]] == [3, 4])
