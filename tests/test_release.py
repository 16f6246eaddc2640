"""The released weights: exported in float16 with their sha256 in the manifest, refused when
changed, and what ``lipnb segment`` uses without ``--checkpoint`` (on a shared DAVIS sequence)."""

import json
import shutil

import pytest
import torch

from lipnb.cli import main
from lipnb.errors import UserError
from lipnb.online.checkpoint import load_model, random_model
from lipnb.paths import RESULTS_DIR
from lipnb.profiles import model_config
from lipnb.repro.release import WEIGHTS, export_weights, released_recipe, released_weights, sha256


def test_exported_weights_are_float16_and_give_the_same_masks(tmp_path):
    model = random_model(model_config("smoke"), seed=3)
    ckpt = tmp_path / "last.pt"
    torch.save({"model": model.state_dict(), "model_config": model.cfg.to_dict(), "optimizer": {}}, ckpt)
    info = export_weights(ckpt, tmp_path / WEIGHTS)
    assert info["sha256"] == sha256(tmp_path / WEIGHTS) and info["bytes"] < 0.6 * ckpt.stat().st_size
    saved = torch.load(tmp_path / WEIGHTS, weights_only=True)
    assert set(saved) == {"model", "model_config"}
    assert all(v.dtype == torch.float16 for v in saved["model"].values() if v.is_floating_point())
    loaded = load_model(tmp_path / WEIGHTS)
    image = [torch.rand(3, 128, 160, generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        a = model.backbone(model.features(image).images.tensors)["0"]
        b = loaded.backbone(loaded.features(image).images.tensors)["0"]
    torch.testing.assert_close(a, b, atol=2e-2, rtol=2e-2)


def _fake_release(tmp_path, content=b"weights"):
    folder = tmp_path / "davis-cpu"
    folder.mkdir()
    (folder / WEIGHTS).write_bytes(content)
    manifest = {"git": {"commit": "abcdef0123"}, "weights": {"file": WEIGHTS, "sha256": sha256(folder / WEIGHTS),
                                                               "bytes": len(content), "dtype": "float16"}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_a_changed_or_missing_release_is_refused_with_what_to_do(tmp_path):
    folder = _fake_release(tmp_path)
    path, info = released_weights(results=tmp_path)
    assert path == folder / WEIGHTS and info["commit"] == "abcdef0"
    (folder / WEIGHTS).write_bytes(b"other")
    with pytest.raises(UserError, match=r"weights.pt has sha256 .* records .*changed.*make reproduce PROFILE=davis-cpu"):
        released_weights(results=tmp_path)
    (folder / WEIGHTS).unlink()
    with pytest.raises(UserError, match="no released weights: .*weights.pt not found; run `make reproduce"):
        released_weights(results=tmp_path)


def test_the_released_weights_are_committed_and_checksummed():
    path, info = released_weights()
    assert path == RESULTS_DIR / "davis-cpu" / WEIGHTS
    assert info["bytes"] == path.stat().st_size <= 25 * 2**20


def test_segment_without_a_checkpoint_uses_the_released_model(davis2016_root, tmp_path, capsys):
    seq = "blackswan"
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in sorted(p.name for p in (davis2016_root / "JPEGImages" / "240p" / seq).iterdir())[:3]:
        shutil.copy(davis2016_root / "JPEGImages" / "240p" / seq / name, frames / name)
    first = davis2016_root / "Annotations" / "480p" / seq / "00000.png"
    out = tmp_path / "out"
    code = main(["segment", "--frames", str(frames), "--first-mask", str(first), "--out", str(out),
                 "--set", "max_iters=10", "--set", "refresh_iters=5", "--threads", "2", "--no-progress"])
    assert code in (0, None)
    err = capsys.readouterr().err
    assert f"model: {RESULTS_DIR / 'davis-cpu' / WEIGHTS} (the released davis-cpu model of commit" in err
    assert "online settings: those its reproduction chose on training videos" in err
    assert sorted(p.name for p in out.glob("*.png")) == ["00000.png", "00001.png", "00002.png"]


def test_the_released_model_comes_with_the_online_recipe_chosen_for_it(tmp_path):
    assert released_recipe(results=tmp_path) == {}  # none recorded: the paper's defaults
    folder = tmp_path / "davis-cpu"
    folder.mkdir()
    record = {"best": "b", "candidates": {"a": {"lr": 0.5}, "b": {"lr": 0.01, "max_iters": 7, "gone": 1}}}
    (folder / "online_recipe.json").write_text(json.dumps(record))
    assert released_recipe(results=tmp_path) == {"lr": 0.01, "max_iters": 7}  # fields OnlineConfig no longer has: dropped
    assert released_recipe(zero_hidden=True, results=tmp_path) == {}
    committed = released_recipe()
    assert committed and committed["max_iters"] == json.loads((RESULTS_DIR / "davis-cpu" / "manifest.json")
                                                              .read_text())["parameters"]["online_iters"]


def test_the_choice_log_compares_the_kept_candidate_with_the_best(davis2016_root):
    from lipnb.data.davis import DavisDataset
    from lipnb.lab.choice import ChoiceLog
    from lipnb.online import OnlineConfig
    from lipnb.online.inference import segment_sequence

    seq = DavisDataset(davis2016_root, "2016", "val", "480p", "240p")["blackswan"]
    log = ChoiceLog(seq.read_mask)
    segment_sequence(load_model(released_weights()[0]), seq.read_frame, 4, seq.first_mask(), lambda i, ids: None,
                     OnlineConfig(max_iters=20, refresh=False), "blackswan", progress=False, on_frame=log)
    s = log.summary()
    assert s["frames"] == 3 and s["candidates"] >= 1 and 0 <= s["IoU(top)"] <= s["IoU(best)"] <= 1
    assert 0.2 < s["top score"] <= 1 and s["score(best)"] <= s["top score"]
