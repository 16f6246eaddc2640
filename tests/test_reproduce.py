"""``python -m lipnb reproduce``: the command line around the papermill runner (the runner itself
runs the notebooks in tests/test_notebooks.py and tests/test_report.py)."""

from lipnb.cli import main as lipnb_main
from lipnb.repro import pipeline


def test_cli_passes_profile_and_overrides(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake_run(profile, results_dir, overrides, log=print, log_output=False, resume=False):
        seen.update(profile=profile, results_dir=results_dir, overrides=overrides, resume=resume)
        out = tmp_path / profile
        out.mkdir()
        for name in ("table1", "table2", "table3"):
            (out / f"{name}.md").write_text(f"## {name}\n")
        return out

    monkeypatch.setattr(pipeline, "run_pipeline", fake_run)
    argv = ["reproduce", "--profile", "davis-cpu", "--results-dir", str(tmp_path),
            "-p", "pretrain_iters", "20", "-p", "coco", "data/coco", "-p", "device", "cpu", "--resume"]
    assert lipnb_main(argv) == 0
    assert seen == {"profile": "davis-cpu", "results_dir": str(tmp_path),
                    "overrides": {"pretrain_iters": 20, "coco": "data/coco", "device": "cpu"}, "resume": True}
    printed = capsys.readouterr().out
    assert "## table3" in printed and "manifest.json" in printed


def test_cli_reports_failure(tmp_path, monkeypatch, capsys):
    def failing(*args, **kwargs):
        raise pipeline.NotebookFailed("notebook 03_online_inference.ipynb failed in cell 7", "03", 7, tmp_path)

    monkeypatch.setattr(pipeline, "run_pipeline", failing)
    assert lipnb_main(["reproduce", "--results-dir", str(tmp_path)]) == 1
    assert "03_online_inference.ipynb failed in cell 7" in capsys.readouterr().err


def test_cli_rejects_unknown_parameter(tmp_path, capsys):
    assert lipnb_main(["reproduce", "--results-dir", str(tmp_path), "-p", "pretrain_iter", "3"]) == 2
    assert "unknown notebook parameters ['pretrain_iter']" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
