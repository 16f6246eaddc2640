"""``python -m lipnb bench model`` runs end to end (tiny settings) and reports both networks."""

import json

import pytest

from lipnb.cli import main
from lipnb.lab.bench import model as bench

TINY = ["--profile", "smoke", "--height", "64", "--width", "96", "--frames", "1", "--clip", "2",
        "--warmup", "0", "--threads", "1"]


def assert_repeated(r, key, repeats=3):
    """``key`` is the median of ``repeats`` recorded values and lies within their min-max."""
    values = r[f"{key}_repeats"]
    lo, hi = r[f"{key}_range"]
    assert len(values) == repeats and all(v > 0 for v in values)
    assert (lo, hi) == (min(values), max(values))
    assert lo <= r[key] <= hi and r[key] == sorted(values)[repeats // 2]


def test_bench_model_runs(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "model", *TINY, "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "LIP / Mask R-CNN (medians)" in text and "params" in text
    assert "median of 3 timed repeats" in text and "(min-max)" in text
    assert "backbone (trunk + FPN) frozen" in text
    assert "where a frame's time goes" in text and "Conv-GRU P2" in text
    saved = json.loads(out.read_text())
    assert saved["args"]["repeats"] == 3 and saved["args"]["train_backbone"] is False
    results = {r["model"]: r for r in saved["results"]}
    assert set(results) == {"lip", "maskrcnn"}
    parts = results["lip"]["eval_parts_s"]  # every part timed, and the parts add up to the frame
    assert {"trunk", "FPN", "Conv-GRU P6", "RPN", "box head", "id head", "mask head", "other"} <= set(parts)
    assert all(v > 0 for k, v in parts.items() if k not in ("other", "RoI heads, rest"))
    assert sum(v for k, v in parts.items() if k != "total") == pytest.approx(parts["total"])
    assert results["lip"]["params"] > results["maskrcnn"]["params"]  # the Conv-GRUs and shortcuts
    for r in results.values():
        assert r["eval_frames_per_s"] > 0 and r["train_clip_s"] > 0 and r["eval_peak_mb"] > 0
        for key in ("eval_pass_s", "eval_frames_per_s", "train_clip_s"):
            assert_repeated(r, key)
        assert r["eval_frames_per_s"] == pytest.approx(1 / r["eval_pass_s"])  # 1 frame per pass, odd count
        # frozen by default: nothing of trunk + FPN is trained
        assert r["backbone_trained"] is False and r["backbone_params"] > 0
        assert r["trainable_params"] == r["params"] - r["backbone_params"]


def test_bench_full_bptt_train_backbone_and_schedule_estimate(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "model", *TINY, "--models", "lip", "--bptt-cut", "0", "--estimate", "--train-backbone",
                     "--repeats", "4", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "BPTT cut none" in text and "training clips/s" in text and "paper schedule estimate" in text
    assert "backbone (trunk + FPN) trained" in text and "median of 4 timed repeats" in text
    r = json.loads(out.read_text())["results"][0]
    assert r["bptt_cut"] is None and r["pretrain_step_s"] > 0
    assert r["backbone_trained"] is True and r["trainable_params"] == r["params"]  # smoke: ResNet, all trained
    for key in ("eval_frames_per_s", "train_clip_s", "pretrain_step_s"):
        values, (lo, hi) = r[f"{key}_repeats"], r[f"{key}_range"]
        assert len(values) == 4 and lo <= r[key] <= hi  # even count: the mean of the middle two


def test_record_disturbed_and_too_few_repeats(capsys):
    r = {"model": "lip"}
    bench.record(r, "train_clip_s", [3.0, 1.0, 2.0])
    assert r["train_clip_s"] == 2.0 and r["train_clip_s_range"] == [1.0, 3.0]
    assert r["train_clip_s_repeats"] == [3.0, 1.0, 2.0]
    assert bench.disturbed([r]) == ["lip train clip s 100%"]  # spread 2.0 over a median of 2.0
    bench.record(r, "train_clip_s", [2.0, 2.05, 2.1])
    assert bench.disturbed([r]) == []
    assert main(["bench", "model", "--repeats", "2"]) == 2
    assert "--repeats must be at least 3" in capsys.readouterr().err
