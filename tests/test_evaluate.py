"""The semi-supervised DAVIS protocol over results folders: agreement with the official
toolkit on DAVIS 2016 val, multi-object DAVIS 2017 layouts, missing results, the CLI."""

import csv
import shutil

import numpy as np
import pytest

from lipnb.cli import main as lipnb_main
from lipnb.data.davis import DavisDataset, DavisFormatError, write_mask
from lipnb.metrics import MissingResultsError, evaluate, f_measure, jaccard, mean_recall_decay
from lipnb.metrics.baselines import write_copy_first
from lipnb.metrics.evaluation import GLOBAL_COLUMNS
from test_davis import make_davis2017

# what the official davis2017-evaluation toolkit prints for copy-first on the 16 sequences
TOOLKIT_COPY_FIRST = {"J&F-Mean": 0.253354, "J-Mean": 0.271328, "J-Recall": 0.186968, "J-Decay": 0.211151,
                      "F-Mean": 0.235380, "F-Recall": 0.104665, "F-Decay": 0.237857}


@pytest.fixture(scope="session")
def davis2016(davis2016_root):
    return DavisDataset(davis2016_root, year="2016", split="val", resolution="480p")


@pytest.fixture(scope="session")
def copy_first_dir(davis2016, tmp_path_factory):
    return write_copy_first(davis2016, tmp_path_factory.mktemp("copy-first"))


# ----------------------------------------------------------------------------- DAVIS 2016 val


def test_copy_first_matches_official_toolkit(davis2016, copy_first_dir):
    evaluation = evaluate(davis2016, copy_first_dir, progress=False)
    result = evaluation.global_results()
    assert list(result) == GLOBAL_COLUMNS
    for column, expected in TOOLKIT_COPY_FIRST.items():
        assert result[column] == pytest.approx(expected, abs=1e-6), column
    rows = evaluation.per_sequence_results()
    assert len(rows) == 16 and rows[0][0] == "blackswan_1" and evaluation.num_frames == 1112


def test_ground_truth_as_prediction_scores_one(davis2016, davis2016_root):
    # the annotation folder is itself a results folder (0/255 PNGs, read as one object)
    evaluation = evaluate(davis2016, davis2016_root / "Annotations" / "480p", progress=False)
    assert evaluation.global_results() == {"J&F-Mean": 1.0, "J-Mean": 1.0, "J-Recall": 1.0, "J-Decay": 0.0,
                                           "F-Mean": 1.0, "F-Recall": 1.0, "F-Decay": 0.0}


def test_cli_writes_toolkit_csvs(davis2016_root, copy_first_dir, tmp_path, capsys):
    code = lipnb_main(["evaluate", "--davis", str(davis2016_root), "--results", str(copy_first_dir),
                       "--year", "2016", "--out", str(tmp_path), "--sequences", "blackswan", "dog",
                       "--processes", "1", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "J&F-Mean" in printed and "blackswan_1" in printed and "dog_1" in printed
    with open(tmp_path / "global_results-val.csv") as f:
        table = list(csv.reader(f))
    assert table[0] == ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    with open(tmp_path / "per-sequence_results-val.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Sequence", "J-Mean", "F-Mean"] and [r[0] for r in rows[1:]] == ["blackswan_1", "dog_1"]
    assert sorted(p.name for p in copy_first_dir.iterdir()) == sorted(DavisDataset(davis2016_root, "2016").sequences)


def test_cli_refuses_csvs_inside_results(davis2016_root, copy_first_dir, capsys):
    code = lipnb_main(["evaluate", "--davis", str(davis2016_root), "--results", str(copy_first_dir),
                       "--out", str(copy_first_dir / "eval")])
    assert code == 2 and "inside the results folder" in capsys.readouterr().err


# ----------------------------------------------------------------------------- DAVIS 2017 layout


def test_multi_object_2017(tmp_path):
    """3 objects, 6 frames (4 scored). Prediction: object 1 exact, object 2 missing from
    frame 3 on, object 3 moved right by 1, and a void (255) region in the ground truth. An id (7)
    absent from the ground truth is an error, as in the official toolkit."""
    root = make_davis2017(tmp_path / "davis", {"seq": 3}, num_frames=6, size=(24, 40))
    gt_dir = root / "Annotations" / "480p" / "seq"
    results = tmp_path / "results" / "seq"
    gts = []
    for t in range(6):
        gt = np.zeros((24, 40), dtype=np.uint8)
        gt[2:8, 2 + t: 10 + t] = 1
        gt[12:20, 4:10] = 2
        gt[14:18, 20 + 2 * t: 26 + 2 * t] = 3
        gt[22:24, 0:5] = 255  # void: scored as background
        write_mask(gt_dir / f"{t:05d}.png", gt)
        gts.append(np.where(gt == 255, 0, gt))
        pred = np.where(gt == 255, 0, gt)
        if t >= 3:
            pred[pred == 2] = 0
        three = pred == 3
        pred[three] = 0
        pred[np.roll(three, 1, axis=1)] = 3
        write_mask(results / f"{t:05d}.png", pred)
    evaluation = evaluate(DavisDataset(root), tmp_path / "results", processes=1, progress=False)
    (scores,) = evaluation.sequences
    assert scores.object_ids == [1, 2, 3] and scores.J.shape == (3, 4)
    assert (scores.J[0] == 1).all() and (scores.F[0] == 1).all()  # exact
    assert scores.J[1].tolist() == [1, 1, 0, 0] and scores.F[1].tolist() == [1, 1, 0, 0]  # missing = empty
    assert scores.J[2].tolist() == [20 / 28] * 4  # 4x6 box moved by 1: 4*5 / 4*7
    for t in range(1, 5):  # F through the single-frame function
        assert scores.F[2, t - 1] == f_measure(gts[t] == 3, np.roll(gts[t] == 3, 1, axis=1))
    names = [name for name, _, _ in evaluation.per_sequence_results()]
    assert names == ["seq_1", "seq_2", "seq_3"]
    j_mean = np.mean([1.0, 0.5, 20 / 28])
    result = evaluation.global_results()
    assert result["J-Mean"] == pytest.approx(j_mean, abs=1e-12)
    assert result["J-Recall"] == pytest.approx((1 + 0.5 + 1) / 3, abs=1e-12)
    # object 2: ids = round(linspace(1, 4, 5)) - 1 = [0, 1, 2, 2, 3], bins v[0:2], v[1:3], v[2:3],
    # v[2:4] -> decay = mean(1, 1) - mean(0, 0)
    assert mean_recall_decay(scores.J[1]) == (0.5, 0.5, 1.0)
    assert result["J&F-Mean"] == pytest.approx((result["J-Mean"] + result["F-Mean"]) / 2, abs=1e-15)
    assert jaccard(gts[1] == 3, np.roll(gts[1] == 3, 1, axis=1)) == 20 / 28
    stray = gts[2].copy()
    stray[0:2, 30:38] = 7
    write_mask(results / "00002.png", stray)
    with pytest.raises(DavisFormatError, match=r"00002.png: ids \[7\] are not objects"):
        evaluate(DavisDataset(root), tmp_path / "results", processes=1, progress=False)


def test_missing_results_are_listed(tmp_path):
    root = make_davis2017(tmp_path / "davis", {"a": 1, "b": 2, "c": 1}, num_frames=5)
    ds = DavisDataset(root)
    results = tmp_path / "results"
    write_copy_first(ds, results)
    shutil.rmtree(results / "b")
    (results / "c" / "00002.png").unlink()
    (results / "c" / "00004.png").unlink()  # the last frame is not scored: not required
    with pytest.raises(MissingResultsError) as error:
        evaluate(ds, results, progress=False)
    message = str(error.value)
    assert "2 missing" in message and "/b/ (whole sequence, 3 frames)" in message
    assert "c/00002.png" in message and "00004" not in message
    with pytest.raises(MissingResultsError, match="results folder not found"):
        evaluate(ds, tmp_path / "nothing", progress=False)


def test_wrong_size_and_unknown_sequence(tmp_path):
    root = make_davis2017(tmp_path / "davis", {"a": 1}, num_frames=4)
    ds = DavisDataset(root)
    results = write_copy_first(ds, tmp_path / "results")
    write_mask(results / "a" / "00001.png", np.zeros((6, 8), dtype=np.uint8))
    with pytest.raises(DavisFormatError, match=r"00001.png: prediction is 8x6, the annotations are 16x12"):
        evaluate(ds, results, processes=1, progress=False)
    with pytest.raises(DavisFormatError, match="unknown sequence 'zzz'"):
        evaluate(ds, results, sequences=["zzz"], progress=False)


def test_parallel_equals_serial(tmp_path):
    root = make_davis2017(tmp_path / "davis", {"a": 1, "b": 2, "c": 3}, num_frames=7)
    ds = DavisDataset(root)
    results = write_copy_first(ds, tmp_path / "results")
    serial = evaluate(ds, results, processes=1, progress=False)
    parallel = evaluate(ds, results, processes=2, progress=False)
    assert serial.global_results() == parallel.global_results()
    assert [s.name for s in parallel.sequences] == ["a", "b", "c"]


def test_cli_errors_name_the_problem(tmp_path, capsys):
    root = make_davis2017(tmp_path / "davis", {"a": 1}, num_frames=4)
    code = lipnb_main(["evaluate", "--davis", str(root), "--results", str(tmp_path / "none"),
                       "--out", str(tmp_path / "out")])
    assert code == 1 and "results folder not found" in capsys.readouterr().err
