"""What the reference runs need: mixed pre-training data, resumable stages, Table 3 on two sets
of videos, the ablation over seeds."""

import json

import pandas as pd
import pytest

from lipnb.data.coco import CocoInstances, CocoMixture
from lipnb.data.davis import DavisDataset
from lipnb.data.procedural import ProceduralSpec, ensure_procedural
from lipnb.model import LIPConfig
from lipnb.online.checkpoint import random_model
from lipnb.online.config import OnlineConfig
from lipnb.online.inference import infer_davis
from lipnb.report import tables
from lipnb.cli import main
from lipnb.lab import seeds
from lipnb.repro import stages
from lipnb.profiles import notebook_parameters
from lipnb.train import TrainConfig
from lipnb.train.build import build_data

from test_report import _evaluation
from lipnb.profiles import model_config, train_config


@pytest.fixture(scope="module")
def procedural():
    return ensure_procedural(ProceduralSpec(seed=0))


def test_coco_mixture_puts_categories_side_by_side(coco_root, procedural):
    coco = CocoInstances(coco_root, "train2017", scales=(96,), max_size=160)
    shapes = CocoInstances(procedural.coco, "train2017", scales=(96,), max_size=160)
    mix = CocoMixture([coco, shapes], ["coco", "shapes"])
    assert len(mix) == len(coco) + len(shapes)
    assert mix.num_classes == coco.num_classes + shapes.num_classes
    assert mix.category_names[0] == f"coco/{coco.category_names[0]}"
    assert mix.category_names[-1] == f"shapes/{shapes.category_names[-1]}"
    _, first = mix[0]
    assert first["labels"].tolist() == coco[0][1]["labels"].tolist()
    _, later = mix[len(coco) + 2]  # a procedural image: its labels come after COCO's
    assert later["labels"].tolist() == (shapes[2][1]["labels"] + coco.num_classes).tolist()
    with pytest.raises(IndexError, match="out of range"):
        mix[len(mix)]


def test_pretraining_data_can_be_a_mixture(coco_root):
    cfg = train_config("davis-cpu", "pretrain")
    assert cfg.data == "coco_tiny+procedural"
    data = build_data(cfg)
    assert data.num_ids == len(data.meta["categories"]) == 80 + len(
        build_data(train_config("smoke", "pretrain")).meta["categories"])
    assert " + " in str(data.root)


def test_davis_profiles_build():
    for name in ("davis-cpu", "davis-gpu"):
        cfg = model_config(name)
        assert cfg.test_min_size == 240  # DAVIS 2016's shared frames are 240p
        assert train_config(name, "finetune").davis_resolution == "240p"
    gpu = model_config("davis-gpu")
    assert (gpu.backbone, gpu.fpn_channels, gpu.hidden_channels) == ("efficientnet-lite0", 256, 256)


def test_inference_resumes_after_an_interruption(procedural, tmp_path):
    davis = DavisDataset(procedural.davis, "2017", "val")
    names = list(davis.sequences)[:2]
    cfg = OnlineConfig(max_iters=1, refresh_iters=1)
    model = random_model(model_config("smoke"))
    first = infer_davis(model, davis, tmp_path, cfg, names[:1], progress=False)  # "interrupted" after one
    png = next((tmp_path / names[0]).glob("*.png"))
    stamp = png.stat().st_mtime_ns
    both = infer_davis(model, davis, tmp_path, cfg, names, progress=False, resume=True)
    assert [r.name for r in both] == names and both[0] == first[0]
    assert png.stat().st_mtime_ns == stamp  # the finished sequence was not run again
    assert [r["name"] for r in json.loads((tmp_path / "timing.json").read_text())] == names
    again = infer_davis(model, davis, tmp_path, cfg, names[:1], progress=False)  # without resume: runs again
    assert png.stat().st_mtime_ns != stamp and again[0].name == names[0]


def test_stages_continue_a_finished_run(tmp_path, capsys):
    params = notebook_parameters("smoke", out_dir=str(tmp_path / "staging"), pretrain_iters=2, finetune_iters=1,
                                 online_iters=1, refresh_iters=1, num_sequences=1)
    run = stages.Run(**params).setup()
    first = stages.train_stage(run, "pretrain")
    folder = run.work / "pretrain"
    recorded = (folder / "summary.json").read_text()
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    capsys.readouterr()
    again = stages.train_stage(run, "pretrain")  # the training cell run again: kept, nothing trained
    assert first["steps_run"] == 2 and again == first
    assert (folder / "summary.json").read_text() == recorded  # the real run's record, not "0 steps in 0 s"
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps  # no file rewritten
    assert f"pretrain: already finished (2 steps in {first['wall_s']:.0f} s), kept" in capsys.readouterr().out
    longer = stages.Run(**{**params, "pretrain_iters": 3})  # another length: not the finished run
    assert stages.finished_summary(stages.train_config(longer, "pretrain"), folder) is None
    stages.train_stage(run, "finetune")
    es = stages.eval_set(run, "table2")
    out = stages.predict(run, es, stages.online_config(run))
    (out / "done.json").unlink()  # as if interrupted after the last sequence
    png = next((out / es.sequences[0]).glob("*.png"))
    stamp = png.stat().st_mtime_ns
    assert stages.predict(run, es, stages.online_config(run)) == out and png.stat().st_mtime_ns == stamp
    assert (out / "done.json").is_file()
    # the staging folder moved into place (what the reproduction does): every finished stage recognised
    (tmp_path / "staging").rename(tmp_path / "smoke")
    moved = stages.Run(**{**params, "out_dir": str(tmp_path / "smoke")}).setup()
    capsys.readouterr()
    assert stages.train_stage(moved, "finetune") == json.loads((moved.work / "finetune" / "summary.json").read_text())
    assert "finetune: already finished" in capsys.readouterr().out
    es = stages.eval_set(moved, "table2")
    out = stages.predict(moved, es, stages.online_config(moved))
    png = next((out / es.sequences[0]).glob("*.png"))
    assert png.stat().st_mtime_ns == stamp  # predictions kept: done.json holds no path of the old folder


def test_table1_shows_the_baselines_and_the_earlier_run():
    t1 = _evaluation(0.625, profile="davis-cpu", table="table1")
    evaluations = {"table1": t1, "table2": _evaluation(0.25), "table3-zero": _evaluation(0.125),
                   "table1-copy-first": dict(t1, method="copy-first", **{"global": _evaluation(0.25)["global"]}),
                   "table1-probe": dict(t1, method="probe", **{"global": _evaluation(0.5)["global"]})}
    earlier = {"label": "LIP from scratch", "source": "earlier run (commit abc1234)", "path": "results/x/table1.json",
               "evaluation": _evaluation(0.375, profile="davis-cpu-scratch", table="table1")}
    df, notes = tables.build_tables(evaluations, earlier)["table1"]
    assert df.Source.tolist()[-4:] == ["this run", "this run (baseline)", "this run (baseline)", "earlier run (commit abc1234)"]
    assert df["J&F-Mean"].tolist()[-4:] == [62.5, 25.0, 50.0, 37.5]
    assert any("table1-probe.json" in n for n in notes) and any("results/x/table1.json" in n for n in notes)
    assert len(tables.build_tables(evaluations)["table1"][0]) == len(df) - 1  # no earlier run, no row


def test_table3_on_two_sets_of_videos():
    real = dict(_evaluation(0.5, profile="davis-cpu", table="table1"), data="DAVIS 2016 val (davis2016, frames 240p)")
    built = tables.build_tables({"table1": real, "table2": _evaluation(0.25, profile="davis-cpu"),
                                 "table3-zero": _evaluation(0.125, profile="davis-cpu"),
                                 "table3-zero-table1": dict(real, **{"global": _evaluation(0.375)["global"]})})
    df3, notes = built["table3"]
    assert df3["J&F-Mean"].tolist() == [59.2, 61.1, 12.5, 25.0, 37.5, 50.0]
    assert df3.Method.iloc[-1] == "dynamic memory (this run, davis-cpu, DAVIS 2016 val)"
    assert any("table3-zero-table1.json" in n for n in notes)


def test_seed_summary_pairs_the_difference(tmp_path):
    rows = [{"seed": s, "videos": "v", "protocol": "DAVIS 2017", "memory": m, "J&F-Mean": jf, "J-Mean": jf,
             "F-Mean": jf, "sequences": 4}
            for s, (dyn, zero) in enumerate([(30.0, 20.0), (25.0, 24.0), (20.0, 22.0)])
            for m, jf in (("dynamic", dyn), ("zero", zero))]
    summary = seeds.summarize(rows).iloc[0]
    assert summary["seeds"] == 3 and summary["seeds where dynamic wins"] == 2
    assert summary["dynamic - zero mean"] == pytest.approx(3.0)
    assert summary["dynamic - zero std"] == pytest.approx(pd.Series([10.0, 1.0, -2.0]).std(), abs=0.01)
    path = seeds.write_report(rows, tmp_path, "smoke", notebook_parameters("smoke"))
    text = path.read_text()
    assert "| v | 3 | 25.0 |" in text and (tmp_path / "ablation_seeds.csv").is_file()
    assert "--tables" not in text
    text = seeds.write_report(rows, tmp_path, "smoke", notebook_parameters("smoke"), ("table1",)).read_text()
    assert "--seeds 0 1 2 --tables table1`" in text


def test_per_sequence_table():
    evs = {"table1": dict(_evaluation(0.5, table="table1"), memory="dynamic"),
           "table3-zero": dict(_evaluation(0.25), memory="zero")}
    df = tables.per_sequence_table(evs)
    assert df.columns.tolist() == ["evaluation", "memory", "data", "object", "J-Mean", "F-Mean", "J&F-Mean"]
    assert df.values.tolist() == [["table1", "dynamic", "procedural", "a_1", 50.0, 50.0, 50.0],
                                  ["table3-zero", "zero", "procedural", "a_1", 25.0, 25.0, 25.0]]


def test_cli_zero_hidden_holds_the_state_at_zero():
    import argparse

    from lipnb.cli.common import add_model_arguments, build_model

    p = argparse.ArgumentParser()
    add_model_arguments(p)
    assert not build_model(p.parse_args(["--random-weights", "smoke"])).memory.static
    model = build_model(p.parse_args(["--random-weights", "smoke", "--zero-hidden"]))
    assert model.memory.static and model.cfg.static_memory


def _reference(folder, params, evaluations):
    (folder / "evaluations").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"parameters": params}))
    for name, ev in evaluations.items():
        (folder / "evaluations" / f"{name}.json").write_text(json.dumps(ev))
    return folder


def test_ablation_reads_the_reproductions_seed(tmp_path, capsys):
    real = dict(_evaluation(0.5, table="table1"), data="DAVIS", protocol="DAVIS 2016", memory="dynamic")
    ref = _reference(tmp_path / "davis-cpu", notebook_parameters("davis-cpu"), {
        "table1": real, "table3-zero-table1": dict(real, memory="zero", **{"global": _evaluation(0.25)["global"]})})
    rows = seeds.reference_rows(ref, "davis-cpu", {}, [0, 1], ["table1"])
    assert [(r["seed"], r["memory"], r["J&F-Mean"]) for r in rows] == [(0, "dynamic", 50.0), (0, "zero", 25.0)]
    assert seeds.reference_rows(ref, "davis-cpu", {}, [1, 2], ["table1"]) == []
    with pytest.raises(ValueError, match="finetune_iters 400 != 100"):
        seeds.reference_rows(ref, "davis-cpu", {"finetune_iters": 100}, [0], ["table1"])
    # the command: seed 0 read, nothing trained, the report says so
    assert main(["ablation", "--profile", "davis-cpu", "--seeds", "0", "--tables", "table1", "--jobs", "2",
                 "--reference", str(ref), "--results-dir", str(tmp_path)]) == 0
    text = (tmp_path / "davis-cpu-ablation" / "ablation_seeds.md").read_text()
    assert f"--reference {ref}" in text and "seed 0: read from the reproduction in" in text
    assert not (tmp_path / "davis-cpu-ablation" / "seed-0").exists()
    assert main(["ablation", "--reference", str(tmp_path / "nowhere")]) == 2
    assert "nowhere/manifest.json not found" in capsys.readouterr().err


def test_reference_with_one_set_of_videos_uses_table3s_zero_run(tmp_path):
    ev = dict(_evaluation(0.5), protocol="DAVIS 2017", memory="dynamic")
    ref = _reference(tmp_path / "smoke", notebook_parameters("smoke"), {
        "table1": dict(ev, table="table1"), "table2": ev, "table3-zero": dict(ev, memory="zero")})
    rows = seeds.reference_rows(ref, "smoke", {}, [0])
    assert [r["memory"] for r in rows] == ["dynamic", "zero"]
    # the real smoke run scores the same videos with objects merged for Table 1: another label, no zero run
    merged = _reference(tmp_path / "merged" / "smoke", notebook_parameters("smoke"), {
        "table1": dict(ev, table="table1", data="objects merged"), "table2": ev, "table3-zero": dict(ev, memory="zero")})
    assert [r["memory"] for r in seeds.reference_rows(merged, "smoke", {}, [0])] == ["dynamic", "zero"]


def test_dial_over_seeds_reads_the_reproduction_and_reports(tmp_path):
    from lipnb.lab import dial

    ev = lambda jf: dict(_evaluation(jf), data="memory videos")  # noqa: E731
    ref = _reference(tmp_path / "davis-cpu", notebook_parameters("davis-cpu"), {
        "table2": ev(0.4), "table3-alpha0": ev(0.3), "table3-alpha0.25": ev(0.5), "table3-alpha0.5": ev(0.6)})
    rows = dial.read_rows(ref / "evaluations", 0, "davis-cpu")
    assert [(r["seed"], r["alpha"], r["J&F-Mean"]) for r in rows] == [(0, 0.0, 30.0), (0, 0.25, 50.0),
                                                                       (0, 0.5, 60.0), (0, 1.0, 40.0)]
    rows += [dict(r, seed=1, **{"J&F-Mean": 70.0 if r["alpha"] == 1 else r["J&F-Mean"]}) for r in rows]
    summary = dial.summarize_seeds(rows)
    assert summary["seeds where best"].tolist() == [0, 0, 1, 1]
    assert summary["J&F mean"].tolist() == [30.0, 50.0, 60.0, 55.0]
    text = seeds.write_dial_report(rows, tmp_path, "davis-cpu", (str(ref), 0)).read_text()
    assert "seed 0: read from the reproduction" in text and "memory videos" in text
    assert (tmp_path / "ablation_dial.png").is_file() and (tmp_path / "ablation_dial.csv").is_file()
    (ref / "evaluations" / "table3-alpha0.25.json").unlink()
    with pytest.raises(FileNotFoundError, match="no table3-alpha0.25.json"):
        dial.read_rows(ref / "evaluations", 0, "davis-cpu")


def test_sequences_segmented_in_two_processes_give_the_same_masks(procedural, tmp_path):
    """``jobs=2`` (one process per sequence, lipnb.online.pool) writes what one process writes, and the
    timing in the sequences' order; a hook (the oracle's) only runs in this process."""
    import numpy as np
    from PIL import Image

    davis = DavisDataset(procedural.davis, "2017", "val")
    names = list(davis.sequences)[:2]
    cfg = OnlineConfig(max_iters=2, refresh_iters=1)
    model = random_model(model_config("smoke"))
    one = infer_davis(model, davis, tmp_path / "one", cfg, names, progress=False)
    two = infer_davis(model, davis, tmp_path / "two", cfg, names, progress=False, jobs=2)
    assert [r.name for r in two] == names and [r.num_frames for r in two] == [r.num_frames for r in one]
    assert [r["name"] for r in json.loads((tmp_path / "two" / "timing.json").read_text())] == names
    pngs = sorted((tmp_path / "one").glob("*/*.png"))
    assert pngs and all(np.array_equal(np.array(Image.open(p)), np.array(Image.open(tmp_path / "two" / p.relative_to(
        tmp_path / "one")))) for p in pngs)
    with pytest.raises(ValueError, match="jobs=1"):
        infer_davis(model, davis, tmp_path / "three", cfg, names, progress=False, on_sequence=lambda s: None, jobs=2)
