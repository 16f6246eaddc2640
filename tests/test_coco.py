"""COCO via pycocotools on the real coco_tiny annotations: crowd regions left out, scale
jitter, flip, and a pre-training step of the loop."""

import random

import pytest
import torch

from lipnb.data import transforms as T
from lipnb.data.coco import CocoInstances
from lipnb.profiles import train_config




@pytest.fixture(scope="module")
def coco(coco_root):
    return CocoInstances(coco_root, "train2017", scales=(208, 240), max_size=400)


def test_loads_and_skips_crowds(coco):
    assert coco.num_classes == 80 and len(coco) > 70
    crowded = [i for i, img in enumerate(coco.image_ids)
               if any(a["iscrowd"] for a in coco.coco.imgToAnns[img])]
    assert crowded, "coco_tiny has crowd regions"
    i = crowded[0]
    anns = coco.coco.imgToAnns[coco.image_ids[i]]
    image, target = coco[i]
    assert len(target["labels"]) == sum(not a["iscrowd"] for a in anns)
    assert image.shape[-2:] == target["masks"].shape[-2:]
    assert target["labels"].min() >= 1 and target["labels"].max() <= 80


def test_scale_jitter_and_flip(coco):
    for position in range(6):
        rng = random.Random(position)
        shorter, flipped = T.draw_geometry(random.Random(position), coco.scales, True)
        image, target = coco.get(position, rng)
        h, w = image.shape[-2:]
        assert min(h, w) == shorter or max(h, w) <= 400
        assert max(h, w) <= 400
        assert target["masks"].shape == (len(target["labels"]), h, w)
    plain, t0 = coco.sample(0, 240, False)
    mirrored, t1 = coco.sample(0, 240, True)
    assert torch.equal(mirrored, plain.flip(-1)) and torch.equal(t1["masks"], t0["masks"].flip(-1))
    w = plain.shape[-1]
    assert torch.allclose(t1["boxes"][:, [0, 2]], w - t0["boxes"][:, [2, 0]])
    # the boxes (from the annotations) agree with the masks to a couple of pixels
    tight = T.boxes_from_masks(t0["masks"])
    big = (t0["masks"].flatten(1).sum(1) > 50)
    assert (tight[big] - t0["boxes"][big]).abs().max() < 3


def test_pretraining_step_runs_on_coco_tiny(coco_root, tmp_path):
    from lipnb.train import TrainConfig, train

    cfg = train_config("smoke", "pretrain", data=str(coco_root), max_iters=1, batch_size=1,
                              micro_batch=1, scales=(128,), max_size=200)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads only contend on the shared cores
    try:
        summary = train(cfg, tmp_path, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert summary["steps_run"] == 1
    last = summary["last"]
    for key in ("loss_objectness", "loss_rpn_box_reg", "loss_id", "loss_box_reg", "loss_mask"):
        assert key in last and torch.isfinite(torch.tensor(last[key]))
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["model_config"]["num_ids"] == 80 and len(ckpt["meta"]["categories"]) == 80
    assert ckpt["model_config"]["static_memory"] is True  # pre-training: hidden state fixed at zero
