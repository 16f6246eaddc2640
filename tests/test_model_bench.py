"""``python -m lipnb.bench model`` runs end to end (tiny settings) and reports both networks."""

import json

from lipnb.bench import model as bench


def test_bench_model_runs(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = bench.main(["--profile", "smoke", "--height", "64", "--width", "96", "--frames", "1", "--clip", "2",
                     "--warmup", "0", "--threads", "1", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "LIP / Mask R-CNN" in text and "params" in text
    results = {r["model"]: r for r in json.loads(out.read_text())["results"]}
    assert set(results) == {"lip", "maskrcnn"}
    assert results["lip"]["params"] > results["maskrcnn"]["params"]  # the Conv-GRUs and shortcuts
    for r in results.values():
        assert r["eval_frames_per_s"] > 0 and r["train_clip_s"] > 0 and r["eval_peak_mb"] > 0


def test_bench_full_bptt_and_schedule_estimate(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = bench.main(["--profile", "smoke", "--height", "64", "--width", "96", "--frames", "1", "--clip", "2",
                     "--warmup", "0", "--threads", "1", "--models", "lip", "--bptt-cut", "0", "--estimate",
                     "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "BPTT cut none" in text and "training clips/s" in text and "paper schedule estimate" in text
    r = json.loads(out.read_text())["results"][0]
    assert r["bptt_cut"] is None and r["pretrain_step_s"] > 0
