"""lipnb.report: paper numbers, tables, profiles, manifest, and the runner's failure handling."""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from lipnb.report import paper_numbers as P
from lipnb.report import tables
from lipnb.repro import pipeline
from lipnb.repro.manifest import folder_checksum
from lipnb.profiles import COMMON, NOTEBOOK, notebook_parameters


def test_paper_numbers_as_printed():
    assert list(P.TABLE1) == ["OnAVOS", "FAVOS", "OSVOS", "LIP", "MSK", "PML", "SFL", "OSMN", "CTN", "VPN"]
    assert list(P.TABLE2) == ["OnAVOS", "LIP", "OSVOS", "FAVOS", "OSMN"]
    assert P.TABLE1["LIP"] == (78.5, 78.0, 88.6, 0.05, 79.0, 86.8, 0.06)
    assert P.TABLE2["LIP"] == (61.1, 59.0, 69.0, 16.0, 63.2, 72.6, 20.1)
    assert P.TABLE3 == {"zero hidden state": (56.9, 61.5, 59.2), "dynamic memory": (59.0, 63.2, 61.1)}
    for table in (P.TABLE1, P.TABLE2):  # J&F Mean is the mean of J Mean and F Mean, as printed
        for v in table.values():
            assert abs(v[0] - (v[1] + v[4]) / 2) <= 0.051
        # methods are in descending order of J&F Mean
        assert [v[0] for v in table.values()] == sorted((v[0] for v in table.values()), reverse=True)


def _evaluation(jf, profile="smoke", table="table2"):
    g = {m: jf for m in P.METRICS}
    g["J-Decay"] = g["F-Decay"] = -0.02
    return {"table": table, "profile": profile, "data": "procedural", "sequences": ["a", "b"],
            "iterations": {"pretrain_iters": 1, "finetune_iters": 2, "online_iters": 3, "refresh_iters": 4},
            "global": g, "per_object": [{"name": "a_1", "J-Mean": jf, "F-Mean": jf}]}


def test_build_and_write_tables(tmp_path):
    built = tables.build_tables({"table1": _evaluation(0.5, table="table1"), "table2": _evaluation(0.25),
                                 "table3-zero": _evaluation(0.125)})
    df1, notes = built["table1"]
    assert list(df1.columns) == ["Method", "Source", *P.METRICS] and len(df1) == 11
    assert df1.iloc[-1].tolist() == ["LIP (this run, smoke)", "this run", 50.0, 50.0, 50.0, -2.0, 50.0, 50.0, -2.0]
    assert "pre-training 1" in notes[0] and "2 sequences" in notes[0]
    df3 = built["table3"][0]
    assert df3["J&F-Mean"].tolist() == [59.2, 61.1, 12.5, 25.0]
    paths = tables.write_tables(built, tmp_path)
    assert sorted(p.name for p in paths) == [f"table{i}.{e}" for i in (1, 2, 3) for e in ("csv", "md")]
    md = (tmp_path / "table1.md").read_text()
    assert "| LIP (paper) | paper | 78.5 | 78.0 | 88.6 | 0.05 | 79.0 | 86.8 | 0.06 |" in md
    assert "| LIP (this run, smoke) | this run | 50.0 |" in md and md.startswith("## Table 1")
    assert "|---|---|---:|" in md  # text columns left, numbers right


def test_profiles():
    assert NOTEBOOK["smoke"] == COMMON
    for name, params in NOTEBOOK.items():
        assert set(params) == set(COMMON) and params["profile"] == name
    assert NOTEBOOK["paper"]["pretrain_iters"] == 270_000 and NOTEBOOK["paper"]["device"] == "cuda"
    assert NOTEBOOK["davis-cpu"]["davis2016"] == "davis2016"
    assert notebook_parameters("smoke", pretrain_iters=3)["pretrain_iters"] == 3
    with pytest.raises(KeyError, match="unknown notebook parameters"):
        notebook_parameters("smoke", pretrain_iter=3)


def test_folder_checksum(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("1")
    first = folder_checksum(tmp_path)
    assert first["files"] == 1 and first["method"] == "content"
    (tmp_path / "a" / "x.txt").write_text("2")
    assert folder_checksum(tmp_path)["sha256"] != first["sha256"]
    assert folder_checksum(tmp_path, content_limit=0)["method"] == "names+sizes"


def test_scaled_schedules():
    from lipnb.repro.stages import Run, online_config, train_config

    run = Run(**notebook_parameters("smoke", out_dir="/tmp/x", pretrain_iters=50, online_iters=100))
    cfg = train_config(run, "pretrain")
    assert cfg.max_iters == 50 and cfg.milestones == (38, 45) and cfg.warmup_iters == 10
    ft = train_config(run, "finetune", zero_hidden=True)
    assert ft.use_static_memory and ft.init.endswith("work/pretrain/last.pt") and ft.freeze == ("backbone",)
    assert not train_config(run, "finetune").use_static_memory
    online = online_config(run)
    assert online.max_iters == 100 and online.milestones == (50,) and online.warmup_iters == 10


# ----------------------------------------------------------------------------- the runner


def _notebook(path, source):
    nb = new_notebook(cells=[new_code_cell("out_dir = ''", metadata={"tags": ["parameters"]}),
                             new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def test_failure_keeps_previous_results(tmp_path, monkeypatch):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "a.ipynb", "from pathlib import Path\nPath(out_dir, 'a.txt').write_text('new')")
    _notebook(nbs / "b.ipynb", "raise ValueError('boom in b')")
    monkeypatch.setattr(pipeline, "NOTEBOOKS_DIR", nbs)
    monkeypatch.setattr(pipeline, "NOTEBOOKS", ("a.ipynb", "b.ipynb"))
    results = tmp_path / "results"
    previous = results / "smoke"
    previous.mkdir(parents=True)
    (previous / "a.txt").write_text("old")

    with pytest.raises(pipeline.NotebookFailed) as info:
        pipeline.run_pipeline("smoke", results, log=lambda *a: None)
    message = str(info.value)
    assert info.value.notebook == "b.ipynb" and info.value.cell == 2  # after the injected parameters cell
    assert "notebook b.ipynb failed in cell 2" in message and "ValueError: boom in b" in message
    assert str(previous) in message and str(results / "smoke.failed" / "b.ipynb") in message
    assert (previous / "a.txt").read_text() == "old" and sorted(p.name for p in previous.iterdir()) == ["a.txt"]
    assert (results / "smoke.failed" / "a.txt").read_text() == "new"
    assert not (results / ".staging-smoke").exists()

    _notebook(nbs / "b.ipynb", "print('fixed')")
    out = pipeline.run_pipeline("smoke", results, log=lambda *a: None)
    assert out == previous and (out / "a.txt").read_text() == "new" and (out / "b.ipynb").is_file()
    assert not (results / "smoke.failed").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["notebooks"]) == ["a.ipynb", "b.ipynb"]


def test_kernel_is_this_python():
    import sys

    assert pipeline.ensure_kernel() == sys.executable


def test_teaching_figures():
    """The drawings of the notebooks' teaching cells (lipnb.report.figures) take plain arrays."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from lipnb.online import Kept
    from lipnb.report import figures

    image = np.zeros((32, 48, 3), np.uint8)
    grid = np.zeros((2, 3, 5, 4))
    grid[..., 2:] = 8.0
    boxes = np.array([[1, 1, 10, 10], [20, 5, 40, 30]], float)
    reach = pd.DataFrame(np.tril(np.ones((8, 8))), index=[f"L_{t}" for t in range(8)],
                         columns=[f"H_{s}" for s in range(8)])
    seen = [figures.plot_frames([image, np.ones((3, 16, 16))], ["a", "b"]),
            figures.plot_anchors(image, grid, (0.2, 0.5, 1, 2, 5), 16, "P4"),
            figures.plot_reach(reach, 4), figures.plot_reach(reach, None),
            figures.plot_class_specific(np.ones((8, 70)), np.ones((12, 70))),
            figures.plot_constraints(image, boxes, {1: [0, 1], 2: []}, {1: [1], 2: []},
                                     {1: Kept(-1, 1.0, (20.0, 5.0, 40.0, 30.0))}, {1: Kept(1, 0.9, tuple(boxes[1]))})]
    for fig in seen:
        assert fig.axes
        plt.close(fig)
