"""Shapes of every level and head, the RPN's anchors, the Fig. 5 conversion, and parity with
torchvision's plain Mask R-CNN when the memory and path augmentation are switched off."""

import math

import pytest
import torch
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.image_list import ImageList

from lipnb.model import LIP, LIPConfig, make_class_specific, reset_id_head
from lipnb.model.backbone import ResNetBody, GroupNorm, load_resnet_checkpoint
from lipnb.model.rpn import anchor_generator
from lipnb.profiles import model_config


H, W = 96, 128


def smoke(**kw):
    return model_config("smoke", **kw)


def target(h=H, w=W):
    masks = torch.zeros(2, h, w, dtype=torch.uint8)
    masks[0, 10:50, 10:60] = 1
    masks[1, 40:90, 70:120] = 1
    return {"boxes": torch.tensor([[10.0, 10, 60, 50], [70, 40, 120, 90]]),
            "labels": torch.tensor([1, 3]), "masks": masks}


def randomise_shortcuts(model):
    """Shortcuts start at zero; give them weights so tests see them."""
    with torch.no_grad():
        for name, p in model.roi_heads.named_parameters():
            if "shortcut" in name:
                p.normal_(0, 0.01)


def test_profiles():
    paper = model_config("paper")
    assert (paper.depth, paper.width, paper.fpn_channels, paper.hidden_channels) == (101, 1.0, 256, 256)
    assert paper.aspect_ratios == (0.2, 0.5, 1.0, 2.0, 5.0) and paper.anchor_sizes == (32, 64, 128, 256, 512)
    assert (paper.box_roi_size, paper.mask_roi_size, paper.roi_batch_size_per_image) == (7, 28, 512)
    assert paper.roi_positive_fraction == 0.25 and paper.carry == "N" and paper.gru_kernel == 3
    assert model_config("paper", roi_batch_size_per_image=128).roi_batch_size_per_image == 128
    assert paper.backbone == "resnet" and paper.backbone_checkpoint == "imagenet"  # the paper starts from ImageNet
    d = model_config("davis-cpu")
    assert (d.backbone, d.backbone_checkpoint, d.fpn_channels, d.test_min_size) == ("efficientnet-lite0", "imagenet", 64, 240)
    s = model_config("davis-cpu-scratch")
    assert (s.backbone, s.backbone_checkpoint, s.depth, s.width, s.fpn_channels) == ("resnet", None, 18, 0.5, 64)
    with pytest.raises(ValueError):
        model_config("nope")


def test_shapes_of_every_level():
    torch.manual_seed(0)
    cfg = smoke()
    model = LIP(cfg).eval()
    with torch.no_grad():
        ff = model.features([torch.rand(3, H, W), torch.rand(3, H, W)])
    assert list(ff.features) == ["0", "1", "2", "3", "pool"]
    ph, pw = ff.images.tensors.shape[-2:]  # eval: resized to the test scale (128 x 170), padded to /32
    assert ff.image_sizes == [(128, 170)] * 2 and (ph, pw) == (128, 192)
    for level, (name, x) in enumerate(ff.features.items()):
        stride = 2 ** (level + 2)
        assert x.shape == (2, cfg.hidden_channels, math.ceil(ph / stride), math.ceil(pw / stride)), name
    assert [s.shape for s in ff.state] == [x.shape for x in ff.features.values()]
    for g, x in zip(model.gates, ff.features.values()):
        assert g["z"].shape == g["r"].shape == x.shape
        assert 0 <= g["z"].min() and g["z"].max() <= 1


def test_shapes_of_every_head():
    torch.manual_seed(0)
    cfg = smoke()
    model = LIP(cfg).eval()
    rh = model.roi_heads
    with torch.no_grad():
        ff = model.features([torch.rand(3, H, W)])
        boxes = [torch.tensor([[0.0, 0, 30, 40], [20, 10, 90, 80], [5, 5, 120, 90]])]
        rep, roi = rh.box_features(ff.features, boxes, ff.image_sizes)
        assert roi.shape == (3, cfg.hidden_channels, 7, 7) and rep.shape == (3, cfg.representation_size)
        assert rh.id_logits(rep, roi).shape == (3, cfg.num_ids + 1)
        assert rh.box_predictor(rep, roi).shape == (3, 2 * 4)  # class-agnostic: bg, fg
        assert rh.box_deltas(rep, roi).shape == (3, (cfg.num_ids + 1) * 4)
        mask = rh.mask_logits(ff.features, boxes, ff.image_sizes)
        assert mask.shape == (3, cfg.num_ids + 1, 2 * cfg.mask_roi_size, 2 * cfg.mask_roi_size)
        out, _ = model([torch.rand(3, H, W)])
    d = out[0]
    n = len(d["boxes"])
    assert n > 0
    assert d["boxes"].shape == (n, 4) and d["labels"].shape == d["scores"].shape == (n,)
    assert d["id_scores"].shape == (n, cfg.num_ids + 1) and d["masks"].shape == (n, 1, H, W)
    torch.testing.assert_close(d["id_scores"].sum(1), torch.ones(n))
    torch.testing.assert_close(d["id_scores"].gather(1, d["labels"][:, None]).squeeze(1), d["scores"])


def test_eval_resizes_to_test_scale_and_maps_back():
    torch.manual_seed(0)
    model = LIP(smoke(test_min_size=64, test_max_size=200)).eval()
    with torch.no_grad():
        ff = model.features([torch.rand(3, H, W)])
        out, _ = model([torch.rand(3, H, W)])
    assert ff.image_sizes == [(64, 85)]
    assert out[0]["masks"].shape[-2:] == (H, W)
    assert out[0]["boxes"][:, 2].max() <= W and out[0]["boxes"][:, 3].max() <= H
    back = model.to_feature_boxes([torch.tensor([[0.0, 0, W, H]])], ff)[0]
    torch.testing.assert_close(back, torch.tensor([[0.0, 0, 85.0, 64.0]]), atol=0.5, rtol=0)


def test_training_does_not_resize_and_returns_losses():
    torch.manual_seed(0)
    model = LIP(smoke(rpn_post_nms_top_n_train=50, roi_batch_size_per_image=16)).train()
    ff = model.features([torch.rand(3, 90, 130)], targets=[target(90, 130)])
    assert ff.image_sizes == [(90, 130)] and ff.images.tensors.shape[-2:] == (96, 160)  # padded to /32
    losses = model.heads(ff)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_id", "loss_box_reg", "loss_mask"}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())


def test_anchors_per_level():
    """Our RPN config gives, on level l, 5 anchors per location of area anchor_sizes[l]^2 with
    h/w = (0.2, 0.5, 1, 2, 5), centred on the level's stride grid."""
    cfg = model_config("paper")
    gen = anchor_generator(cfg)
    assert gen.num_anchors_per_location() == [5] * 5
    image = ImageList(torch.zeros(1, 3, 256, 320), [(256, 320)])
    feats = [torch.zeros(1, 1, 256 // s, 320 // s) for s in (4, 8, 16, 32, 64)]
    anchors = gen(image, feats)[0]
    start = 0
    for (size,), f, stride in zip(gen.sizes, feats, (4, 8, 16, 32, 64)):
        h, w = f.shape[-2:]
        level = anchors[start:start + h * w * 5].view(h, w, 5, 4)
        start += h * w * 5
        base = level[0, 0]  # the 5 anchors at location (0, 0)
        aw, ah = base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]
        torch.testing.assert_close(aw * ah, torch.full((5,), float(size * size)), rtol=0.05, atol=0)
        torch.testing.assert_close(ah / aw, torch.tensor(cfg.aspect_ratios), rtol=0.05, atol=0)
        centre = (level[..., :2] + level[..., 2:]) / 2
        torch.testing.assert_close(centre[1, 2, 0] - centre[0, 0, 0], torch.tensor([2.0 * stride, 1.0 * stride]),
                                   atol=0.5, rtol=0)
    assert start == len(anchors)


def test_class_specific_conversion_preserves_every_prediction():
    torch.manual_seed(0)
    cfg = smoke()
    model = LIP(cfg).eval()
    randomise_shortcuts(model)
    rh = model.roi_heads
    images = [torch.rand(3, H, W)]
    boxes = [torch.tensor([[0.0, 0, 30, 40], [20, 10, 90, 80], [5, 5, 120, 90]])]
    with torch.no_grad():
        ff = model.features(images)
        rep, roi = rh.box_features(ff.features, boxes, ff.image_sizes)
        agn_box = rh.box_predictor(rep, roi).view(3, 2, 4)
        agn_mask = rh.mask_predictor(rh.mask_head(rh.mask_roi_pool(ff.features, boxes, ff.image_sizes)),
                                     rh.mask_roi_pool(ff.features, boxes, ff.image_sizes))
        before = model.heads(ff)
        agn_weights = {"box": rh.box_predictor.bbox_pred.weight.view(2, 4, -1).clone(),
                       "box_shortcut": rh.box_predictor.shortcut.proj.weight.view(2, 4, -1).clone(),
                       "mask": rh.mask_predictor.mask_fcn_logits.weight.clone()}
        make_class_specific(model)
        assert rh.class_specific and rh.box_predictor.slots == cfg.num_ids + 1
        spec_box = rh.box_predictor(rep, roi).view(3, cfg.num_ids + 1, 4)
        spec_mask = rh.mask_logits(ff.features, boxes, ff.image_sizes)
        after = model.heads(ff)
    # the weights of every instance are bit-for-bit the agnostic foreground weights ...
    w_box = rh.box_predictor.bbox_pred.weight.view(cfg.num_ids + 1, 4, -1)
    w_mask = rh.mask_predictor.mask_fcn_logits.weight
    for i in range(1, cfg.num_ids + 1):
        assert torch.equal(w_box[i], agn_weights["box"][1]) and torch.equal(w_mask[i], agn_weights["mask"][0])
        assert torch.equal(rh.box_predictor.shortcut.proj.weight.view(cfg.num_ids + 1, 4, -1)[i],
                           agn_weights["box_shortcut"][1])
    # ... so every instance's box and mask prediction equals the agnostic one (up to BLAS rounding,
    # since the larger matmul may sum in another order)
    for i in range(1, cfg.num_ids + 1):
        torch.testing.assert_close(spec_box[:, i], agn_box[:, 1], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(spec_mask[:, i], agn_mask[:, 0], rtol=1e-6, atol=1e-6)
    for k in ("boxes", "labels", "scores", "id_scores", "masks"):
        torch.testing.assert_close(before[0][k], after[0][k], rtol=1e-6, atol=1e-5, msg=k)
    # the converted weights are separate parameters now: fine-tuning one id leaves the others
    assert rh.box_predictor.bbox_pred.weight.shape == (4 * (cfg.num_ids + 1), cfg.representation_size)
    with pytest.raises(ValueError):
        make_class_specific(model)


def test_reset_id_head_then_class_specific():
    torch.manual_seed(0)
    model = LIP(smoke()).eval()
    reset_id_head(model, 3)
    make_class_specific(model)
    rh = model.roi_heads
    assert rh.id_head.num_ids == 3 and rh.box_predictor.slots == 4 and rh.mask_predictor.num_masks == 4
    # the config follows the surgery: a fresh LIP(cfg) takes the converted weights
    assert (model.cfg.num_ids, model.cfg.class_specific) == (3, True)
    LIP(model.cfg).load_state_dict(model.state_dict())
    with torch.no_grad():
        out, _ = model([torch.rand(3, H, W)])
    assert out[0]["id_scores"].shape[1] == 4 and int(out[0]["labels"].max()) <= 3
    # stop_grad_below_id: only the id head's last layer learns
    model.train()
    rh.stop_grad_below_id = True
    tgt = target()
    tgt["labels"] = torch.tensor([1, 3])
    losses, _ = model([torch.rand(3, H, W)], [tgt])
    losses["loss_id"].backward()
    assert rh.id_head.cls_score.weight.grad is not None
    assert all(p.grad is None for p in rh.box_head.parameters())


def test_parity_with_torchvision_mask_rcnn():
    """Memory and path augmentation off, shortcut off, class-specific: LIP is torchvision's Mask R-CNN."""
    torch.manual_seed(0)
    cfg = smoke(use_memory=False, path_augmentation=False, shortcut=False)
    lip = LIP(cfg).eval()
    make_class_specific(lip)
    rh = lip.roi_heads
    predictor = FastRCNNPredictor(cfg.representation_size, cfg.num_ids + 1)
    predictor.cls_score = rh.id_head.cls_score
    predictor.bbox_pred = rh.box_predictor.bbox_pred
    tv = MaskRCNN(
        lip.backbone, num_classes=None, min_size=cfg.test_min_size, max_size=cfg.test_max_size,
        image_mean=list(cfg.image_mean), image_std=list(cfg.image_std),
        rpn_anchor_generator=anchor_generator(cfg), rpn_head=lip.rpn.head,
        rpn_pre_nms_top_n_test=cfg.rpn_pre_nms_top_n_test, rpn_post_nms_top_n_test=cfg.rpn_post_nms_top_n_test,
        rpn_nms_thresh=cfg.rpn_nms_thresh, box_head=rh.box_head, box_predictor=predictor,
        box_score_thresh=cfg.box_score_thresh, box_nms_thresh=cfg.box_nms_thresh,
        box_detections_per_img=cfg.detections_per_img,
        mask_head=rh.mask_head, mask_predictor=rh.mask_predictor.predictor,
    ).eval()
    images = [torch.rand(3, H, W)]
    with torch.no_grad():
        ours, state = lip(images)
        theirs = tv(images)
    assert state is None and len(ours[0]["boxes"]) > 0
    for k in ("boxes", "labels", "scores", "masks"):
        torch.testing.assert_close(ours[0][k], theirs[0][k], rtol=1e-5, atol=1e-5)


def test_backbone_loads_torchvision_and_detectron_checkpoints(tmp_path):
    torch.manual_seed(0)
    norm = GroupNorm(8)
    src = ResNetBody(18, 0.25, norm)
    state = {k: v.clone() for k, v in src.state_dict().items()}
    path = tmp_path / "tv.pth"
    torch.save({"model": {**state, "fc.weight": torch.zeros(2, 2), "bn1.running_mean": torch.zeros(16)}}, path)
    dst = ResNetBody(18, 0.25, norm)
    load_resnet_checkpoint(dst, str(path))
    for k, v in dst.state_dict().items():
        assert torch.equal(v, state[k]), k
    # Detectron.pytorch naming (Conv_Body.res1.conv1 / res2.0.gn1 / downsample), same tensors
    renamed = {}
    for k, v in state.items():
        if k.startswith(("conv1", "bn1")):
            k2 = "Conv_Body.res1." + k.replace("bn1", "gn1")
        else:
            stage = int(k[5]) + 1
            rest = k[7:].replace(".bn", ".gn")
            k2 = f"Conv_Body.res{stage}.{rest}"
        renamed[k2] = v
    torch.save(renamed, tmp_path / "dt.pth")
    dst2 = ResNetBody(18, 0.25, norm)
    load_resnet_checkpoint(dst2, str(tmp_path / "dt.pth"))
    for k, v in dst2.state_dict().items():  # Detectron's conv1 reads BGR: its input channels reverse
        assert torch.equal(v, state[k].flip(1) if k == "conv1.weight" else state[k]), k


@pytest.mark.parametrize("cap", [None, 3])
def test_mask_loss_reads_at_most_mask_rois_per_image_positives(cap):
    """``mask_rois_per_image``: the mask head sees a random subset of at most that many of an
    image's positive RoIs (None: all of them, as Mask R-CNN)."""
    torch.manual_seed(0)
    model = LIP(smoke(roi_batch_size_per_image=32, mask_rois_per_image=cap)).train()
    seen = []
    model.roi_heads.mask_head.register_forward_hook(lambda m, inp, out: seen.append(len(inp[0])))
    ff = model.features([torch.rand(3, H, W), torch.rand(3, H, W)], targets=[target(), target()])
    # 20 proposals per image, each a near copy of a true box: more positives than the 1:3 quota (8)
    near = target()["boxes"].repeat(10, 1) + torch.rand(20, 4)
    _, losses = model.roi_heads(ff.features, [near, near.clone()], ff.image_sizes, ff.targets)
    assert seen == [2 * 8 if cap is None else 2 * cap]
    assert torch.isfinite(losses["loss_mask"]) and losses["loss_mask"] > 0
