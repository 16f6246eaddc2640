"""Online inference end to end on a random-weights smoke model: any frames, DAVIS folders,
both CLIs, checkpoints, clear errors (paper §3.3, §5.1)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lipnb.cli import main
from lipnb.data.davis import DavisDataset, read_mask, write_mask
from lipnb.data.procedural_videos import generate_davis, render_sequence
from lipnb.model import LIPConfig
from lipnb.online.checkpoint import CheckpointError, load_model, random_model, save_model
from lipnb.online.config import OnlineConfig
from lipnb.online.inference import segment_sequence
from lipnb.profiles import model_config

QUICK = OnlineConfig(max_iters=1, refresh_iters=2)
QUICK_SET = ["--set", "max_iters=1", "--set", "refresh_iters=2", "--no-progress", "--threads", "1"]

@pytest.fixture(scope="module")
def video():
    frames, masks, _ = render_sequence(0, 0, num_frames=6, height=64, width=96, occlusion_frames=2, split="val")
    return frames, masks


@pytest.fixture(scope="module")
def model():
    return random_model(model_config("smoke"))


def run_segment(model, frames, first_mask, cfg=QUICK):
    out = {}
    result = segment_sequence(model, lambda i: frames[i], len(frames), first_mask,
                              lambda i, ids: out.__setitem__(i, ids), cfg, progress=False)
    return result, out


def test_segment_sequence_writes_every_frame_and_leaves_the_model_alone(model, video):
    frames, masks = video
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result, out = run_segment(model, frames, masks[0])
    assert sorted(out) == list(range(6)) and np.array_equal(out[0], masks[0])
    for ids in out.values():
        assert ids.shape == (64, 96) and ids.dtype == np.uint8 and set(np.unique(ids)) <= {0, 1, 2, 3}
    assert result.num_frames == 6 and result.num_objects == 3 and result.finetune_iters <= 1
    assert result.finetune_s > 0 and result.inference_fps > 0
    after = model.state_dict()
    assert set(before) == set(after) and all(torch.equal(before[k], after[k]) for k in before)


def test_output_at_the_annotation_resolution(model, video):
    frames, masks = video
    big = np.kron(masks[0], np.ones((2, 2), dtype=np.uint8))  # annotations at twice the frames' size
    _, out = run_segment(model, frames[:3], big)
    assert all(ids.shape == (128, 192) for ids in out.values())


def test_first_mask_without_object_is_an_error(model, video):
    frames, masks = video
    with pytest.raises(ValueError, match="no object"):
        run_segment(model, frames, np.zeros_like(masks[0]))


def test_checkpoints_of_the_training_loop_and_plain_ones(tmp_path, model):
    cfg = model.cfg.to_dict()
    train_style = {"step": 3, "model": model.state_dict(), "config": {"stage": "finetune", "lr": 0.1},
                   "model_config": cfg, "meta": {"ids": [["a", 1]]}}
    torch.save(train_style, tmp_path / "last.pt")
    torch.save({"state_dict": model.state_dict(), "config": cfg}, tmp_path / "plain.pt")
    for name in ("last.pt", "plain.pt"):
        loaded = load_model(tmp_path / name)
        assert loaded.cfg == LIPConfig(**{**cfg}) and not loaded.training
        assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.pt")
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="LIPConfig"):
        load_model(tmp_path / "bare.pt")


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory, video):
    frames, masks = video
    d = tmp_path_factory.mktemp("video")
    (d / "frames").mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(d / "frames" / f"{i:05d}.jpg")
    write_mask(d / "first.png", masks[0])
    Image.fromarray((masks[0] > 0).astype(np.uint8) * 255).save(d / "binary.png")  # a 0/255 grayscale mask
    Image.fromarray(np.zeros_like(masks[0])).save(d / "empty.png")
    return d


def test_cli_segment_a_folder_of_frames(frames_dir, tmp_path):
    out = tmp_path / "out"
    assert main(["segment", "--frames", str(frames_dir / "frames"), "--first-mask", str(frames_dir / "first.png"),
                 "--random-weights", "smoke", "--out", str(out), *QUICK_SET]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i:05d}.png" for i in range(6)]
    assert Image.open(out / "00003.png").mode == "P"
    timing = json.loads((out / "timing.json").read_text())
    assert timing[0]["num_objects"] == 3 and timing[0]["inference_fps"] > 0
    out2 = tmp_path / "binary"
    assert main(["segment", "--frames", str(frames_dir / "frames"), "--first-mask", str(frames_dir / "binary.png"),
                 "--random-weights", "smoke", "--out", str(out2), *QUICK_SET]) == 0
    assert set(np.unique(read_mask(out2 / "00000.png"))) == {0, 1}  # one object


def test_cli_errors_are_clear(frames_dir, tmp_path, capsys):
    args = ["segment", "--frames", str(frames_dir / "frames"), "--out", str(tmp_path / "o")]
    code = main([*args, "--first-mask", str(frames_dir / "first.png"), "--checkpoint", str(tmp_path / "nope.pt")])
    assert code == 2 and "checkpoint not found" in capsys.readouterr().err
    code = main([*args, "--first-mask", str(frames_dir / "empty.png"), "--random-weights", "smoke"])
    assert code == 2 and "no object" in capsys.readouterr().err


def test_cli_infer_a_davis_split_then_evaluate(tmp_path, model):
    root = generate_davis(tmp_path / "davis", seed=3, splits={"val": 1}, num_frames=6, height=64, width=96,
                          occlusion_frames=2)
    ckpt = save_model(model, tmp_path / "model.pt")
    out = tmp_path / "results"
    assert main(["infer", "--davis", str(root), "--split", "val", "--checkpoint", str(ckpt), "--out", str(out),
                 *QUICK_SET]) == 0
    seq = DavisDataset(root, "2017", "val")["val-000"]
    assert sorted(p.name for p in (out / "val-000").iterdir()) == [f"{i:05d}.png" for i in range(6)]
    assert (out / "timing.csv").is_file() and json.loads((out / "timing.json").read_text())[0]["name"] == "val-000"
    report = json.loads((out / "evaluation.json").read_text())
    assert 0 <= report["global"]["J&F-Mean"] <= 1 and seq.num_frames == 6


def test_davis2016_at_240p_frames_writes_480p_masks(davis2016_root, model):
    seq = DavisDataset(davis2016_root, "2016", "val", "480p", "240p")["blackswan"]
    assert seq.frame_size != seq.size
    out = {}
    segment_sequence(model, seq.read_frame, 3, seq.first_mask(), lambda i, ids: out.__setitem__(i, ids), QUICK,
                     progress=False)
    assert all(ids.shape == seq.size for ids in out.values()) and set(np.unique(out[2])) <= {0, 1}


def test_frames_of_another_size_are_an_error(model, video):
    frames, masks = video
    odd = [frames[0], frames[1][:32]]
    with pytest.raises(ValueError, match="one size"):
        run_segment(model, odd, masks[0], OnlineConfig(max_iters=0))
