"""The oracle diagnostic: ground-truth boxes and best proposals in place of the id head's choice."""

import json

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from lipnb.cli import main
from lipnb.data.procedural_videos import generate_davis, render_sequence
from lipnb.data.transforms import boxes_from_masks
from lipnb.online.checkpoint import random_model, save_model
from lipnb.online.config import OnlineConfig
from lipnb.online.detect import detect
from lipnb.online.inference import segment_sequence
from lipnb.lab.oracle import MODES, OracleFrames, best_proposals
from lipnb.profiles import model_config

QUICK = OnlineConfig(max_iters=1, refresh=False)


@pytest.fixture(scope="module")
def video():
    frames, masks, _ = render_sequence(0, 0, num_frames=6, height=64, width=96, occlusion_frames=2, split="val")
    return frames, masks


def test_oracle_boxes_paint_inside_the_ground_truth_boxes(video):
    frames, masks = video
    written = {mode: {} for mode in MODES}
    oracle = OracleFrames(lambda i: masks[i], lambda mode, i, ids: written[mode].__setitem__(i, ids),
                          box_expand=0.0, threshold=0.0)  # threshold 0: the whole pasted box is painted
    segment_sequence(random_model(model_config("smoke")), lambda i: frames[i], len(frames), masks[0], lambda i, ids: None,
                     QUICK, progress=False, on_frame=oracle)
    for mode in MODES:
        assert sorted(written[mode]) == list(range(len(frames))) and np.array_equal(written[mode][0], masks[0])
    for i in range(1, len(frames)):
        for k in np.unique(masks[i])[1:]:
            x1, y1, x2, y2 = boxes_from_masks(torch.from_numpy(masks[i] == k)[None])[0].int().tolist()
            painted = np.argwhere(written["oracle-boxes"][i] == k)
            assert len(painted)  # visible objects are never lost
            # overlaps are painted over by later objects, but nothing lies outside the box
            assert painted[:, 0].min() >= y1 - 1 and painted[:, 0].max() <= y2 and painted[:, 1].min() >= x1 - 1 \
                and painted[:, 1].max() <= x2


def test_best_proposal_has_the_highest_iou_after_refinement(video):
    frames, masks = video
    model = random_model(model_config("smoke")).eval()
    image = torch.from_numpy(frames[1]).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        det = detect(model, model.features([image]), min_score=0.0)
        decoded = model.roi_heads.box_coder.decode(model.roi_heads.box_deltas(det.rep, det.roi), [det.proposals])
    gt = torch.tensor([[10.0, 12.0, 40.0, 50.0]])
    best = best_proposals(model, det, gt, torch.tensor([1]))
    assert box_iou(gt, best)[0, 0] == pytest.approx(box_iou(gt, decoded[:, 1]).max().item())


def test_cli_infer_oracle_scores_three_folders(tmp_path, capsys):
    root = generate_davis(tmp_path / "davis", seed=3, splits={"val": 1}, num_frames=6, height=64, width=96,
                          occlusion_frames=2)
    ckpt = save_model(random_model(model_config("smoke")), tmp_path / "model.pt")
    out = tmp_path / "results"
    assert main(["infer", "--davis", str(root), "--split", "val", "--checkpoint", str(ckpt), "--out", str(out),
                 "--oracle", "--set", "max_iters=1", "--set", "refresh=false", "--no-progress", "--threads", "1"]) == 0
    for folder in (out, *(out / m for m in MODES)):
        assert len(list((folder / "val-000").glob("*.png"))) == 6
        assert 0 <= json.loads((folder / "evaluation.json").read_text())["global"]["J&F-Mean"] <= 1
    assert "oracle-boxes: J&F-Mean" in capsys.readouterr().out


def test_oracle_needs_every_frames_mask(tmp_path):
    from lipnb.data.davis import DavisDataset
    from lipnb.lab.oracle import oracle_hook

    root = generate_davis(tmp_path / "davis", seed=3, splits={"val": 1}, num_frames=6, height=64, width=96,
                          occlusion_frames=2)
    for png in sorted((root / "Annotations" / "480p" / "val-000").glob("*.png"))[1:]:
        png.unlink()  # a test set: only the first mask
    with pytest.raises(ValueError, match=r"not fully annotated: \['val-000'\]"):
        oracle_hook(DavisDataset(root, "2017", "val"), ["val-000"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
