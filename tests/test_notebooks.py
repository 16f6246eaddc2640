"""The five notebooks: committed clean, and run end to end with papermill on ``smoke``.

The papermill run uses even smaller iteration counts than ``smoke``'s defaults (a few
training steps, two sequences) so that it stays within a couple of minutes on 2 cores; it
checks what ``make reproduce`` promises: executed notebooks, Tables 1-3 (CSV + Markdown,
the paper's rows and the measured ones), figures and ``manifest.json``.
"""

import csv
import json

import nbformat
import pytest

from lipnb.lab.baselines import BASELINES
from lipnb.report import paper_numbers as P, tables
from lipnb.repro.pipeline import NOTEBOOKS, NOTEBOOKS_DIR, run_pipeline
from lipnb.profiles import COMMON

TINY = dict(pretrain_iters=6, finetune_iters=3, online_iters=5, refresh_iters=3, num_sequences=2)
FIGURES = {"batch_pretrain.png", "batch_finetune_clip.png", "loss_pretrain.png", "loss_curves.png",
           "fig1_examples.png", "fig6_table1_masks_over_frames.png", "fig7_table2_masks_over_frames.png",
           "gates_update_z.png", "loss_dynamic_vs_zero.png", "fig8_dynamic_vs_zero_hidden.png",
           "tables_jf_mean.png", "memory_statistics.png", "memory_dial.png"}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_committed_clean(name):
    nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: committed with outputs"
            assert cell.execution_count is None, f"{name}: committed with execution counts"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: needs exactly one cell tagged 'parameters'"
    namespace = {}
    exec(tagged[0].source, namespace)  # noqa: S102 - our own parameters cell
    assert {k: namespace[k] for k in COMMON} == COMMON  # the smoke defaults, every parameter present


REGENERATE = "jupytext --sync notebooks/0*.py  (or: jupytext --to ipynb --update notebooks/<name>.py)"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_in_sync_with_its_jupytext_source(name):
    """``notebooks/<name>.py`` (jupytext percent format) is the source; the committed .ipynb is
    the same notebook: the same cells (type, source, tags), no outputs, full kernel metadata."""
    import jupytext

    source = NOTEBOOKS_DIR / name.replace(".ipynb", ".py")
    assert source.is_file(), f"{source.name} missing: the notebooks' sources are jupytext .py files"
    expected = jupytext.read(source)
    committed = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)

    def cells(nb):
        return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]

    assert cells(committed) == cells(expected), f"{name} differs from {source.name}; regenerate: {REGENERATE}"
    meta = committed.metadata
    assert meta["kernelspec"] == {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    assert {"name", "version", "codemirror_mode", "pygments_lexer", "file_extension", "mimetype",
            "nbconvert_exporter"} <= set(meta["language_info"]), f"{name}: incomplete language_info"
    assert meta["language_info"] == expected.metadata["language_info"], f"regenerate {name}: {REGENERATE}"
    assert meta["jupytext"]["formats"] == "ipynb,py:percent"
    ids = [c.get("id") for c in committed.cells]
    assert all(ids) and len(set(ids)) == len(ids), f"{name}: cell ids missing or repeated"


TEACHING = ("01_pretrain.py", "02_finetune_davis.py", "03_online_inference.py", "04_ablation_zero_hidden.py")
SCREEN = 40  # lines: a teaching cell's computation fits on one screen


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_cells_show_their_code(name):
    """The notebooks teach, then call (design.md §2): every code cell fits on a screen, no helper
    module hides a teaching cell's computation (``lipnb.report.teach`` is gone), and the notebooks
    that teach quote the paper above their teaching cells."""
    import jupytext

    nb = jupytext.read(NOTEBOOKS_DIR / name.replace(".ipynb", ".py"))
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    for source in code:
        assert len(source.splitlines()) <= SCREEN, f"{name}: a code cell longer than a screen:\n{source[:200]}"
        assert "teach" not in source, f"{name}: the teaching cells carry their computation themselves"
    assert sum("getsource" in s for s in code) <= 1, f"{name}: show the code in the cell, not its source"
    if name.replace(".ipynb", ".py") in TEACHING:
        quotes = [c.source for c in nb.cells if c.cell_type == "markdown" and "\n> \"" in c.source]
        assert quotes, f"{name}: its teaching cells quote the paper"


def test_teaching_helpers_gone():
    import importlib.util

    assert importlib.util.find_spec("lipnb.report.teach") is None


def test_no_notebook_generator_left():
    assert not (NOTEBOOKS_DIR / "make_notebooks.py").exists(), "the jupytext .py files are the sources"
    assert {p.name for p in NOTEBOOKS_DIR.glob("0*.py")} == {n.replace(".ipynb", ".py") for n in NOTEBOOKS}


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _check_results_table(path, paper: dict, metrics: list):
    rows = _rows(path)
    assert list(rows[0]) == ["Method", "Source", *metrics]
    assert [r["Source"] for r in rows[:len(paper)]] == ["paper"] * len(paper)
    assert rows[len(paper)]["Source"] == "this run"  # LIP measured by this run, then its baselines
    assert all(r["Source"].startswith(("this run", "earlier run")) for r in rows[len(paper):])
    for row, (method, values) in zip(rows, paper.items()):
        assert row["Method"] == f"{method} (paper)"
        assert [float(row[m]) for m in metrics] == list(values)
    for row in rows[len(paper):]:
        for m in metrics:
            v = float(row[m])
            assert (-100 <= v <= 100) if "Decay" in m else (0 <= v <= 100), (path.name, m, v)
    return rows


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    out = run_pipeline("smoke", results, TINY, log=lambda *a: None)
    return out


def test_pipeline_smoke_outputs(smoke_run):
    out = smoke_run
    for name in NOTEBOOKS:
        nb = nbformat.read(out / name, as_version=4)
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors
    # a batch run keeps the viewer's still image and leaves its live widget out (lipnb.report.viewer.HEADLESS)
    nb3 = nbformat.read(out / "03_online_inference.ipynb", as_version=4)
    viewer = [o.get("data", {}) for c in nb3.cells if "SequenceViewer(" in c.source for o in c.outputs]
    assert any("image/png" in d for d in viewer)
    assert not any("application/vnd.jupyter.widget-view+json" in d for d in viewer)
    t1 = _check_results_table(out / "table1.csv", P.TABLE1, P.METRICS)
    t2 = _check_results_table(out / "table2.csv", P.TABLE2, P.METRICS)
    t3 = _check_results_table(out / "table3.csv", P.TABLE3, P.TABLE3_METRICS)
    assert len(t2) == 6 and len(t3) == 4
    assert t1[len(P.TABLE1)]["Method"] == "LIP (this run, smoke)"
    # Table 1's baselines on the same videos (copy-first, ImageNet-feature probe); no earlier run here
    assert [r["Method"] for r in t1[len(P.TABLE1) + 1:]] == list(tables.BASELINE_ROWS.values())
    assert all(r["Source"] == "this run (baseline)" for r in t1[len(P.TABLE1) + 1:])
    assert [r["Method"] for r in t3[2:]] == ["zero hidden state (this run, smoke)", "dynamic memory (this run, smoke)"]
    # the measured rows are the evaluation files' numbers, in percent
    ev2 = json.loads((out / "evaluations" / "table2.json").read_text())
    assert float(t2[-1]["J&F-Mean"]) == round(100 * ev2["global"]["J&F-Mean"], 1)
    assert float(t3[-1]["J&F-Mean"]) == float(t2[-1]["J&F-Mean"])
    assert ev2["protocol"] == "DAVIS 2017" and len(ev2["sequences"]) == 2
    assert json.loads((out / "evaluations" / "table1.json").read_text())["protocol"] == "DAVIS 2016"
    per_seq = _rows(out / "per_sequence.csv")
    assert {r["evaluation"] for r in per_seq} == {"table1", "table2", "table3-zero", "table3-alpha0.5"} | {
        f"table1-{m}" for m in BASELINES}
    assert {r["memory"] for r in per_seq if r["evaluation"] == "table3-alpha0.5"} == {"dynamic x 0.5"}
    assert [float(r["J-Mean"]) for r in per_seq if r["evaluation"] == "table2"] == \
        [round(100 * o["J-Mean"], 1) for o in ev2["per_object"]]
    for name in ("table1", "table2", "table3"):
        md = (out / f"{name}.md").read_text()
        assert "profile `smoke`" in md and "pre-training 6" in md and "(paper)" in md and "this run" in md


def test_pipeline_smoke_figures_and_manifest(smoke_run):
    from PIL import Image

    out = smoke_run
    assert {p.name for p in (out / "figures").glob("*.png")} >= FIGURES
    for p in (out / "figures").glob("*.png"):
        with Image.open(p) as im:
            assert im.format == "PNG" and min(im.size) > 50
    m = json.loads((out / "manifest.json").read_text())
    assert m["profile"] == "smoke" and m["parameters"]["pretrain_iters"] == 6
    assert m["parameters"]["out_dir"] == str(out)
    assert set(m["notebooks"]) == set(NOTEBOOKS) and all(v["wall_s"] > 0 for v in m["notebooks"].values())
    assert m["packages"]["torch"] and m["seeds"]["seed"] == 0 and "commit" in m["git"]
    assert len(m["data"]["davis2017"]["sha256"]) == 64
    assert not (out.parent / ".staging-smoke").exists()
