"""Bad input, as a new user gives it: every command refuses it before any work with one line,
``error: ...``, naming the file and what to do; no input and no earlier output changes
(checksums before and after); finished runs are never replaced or mixed in silence (issue 15).

Small on purpose: random-weights smoke models, one fine-tuning step, 4-6 tiny frames; the
reproduction's checks run without notebooks (the notebook runner is replaced by a fake)."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lipnb.cli import main
from lipnb.data.davis import read_mask, write_mask
from lipnb.data.procedural import ProceduralSpec, ensure_procedural
from lipnb.data.procedural_videos import generate_davis, render_sequence
from lipnb.online.checkpoint import random_model
from lipnb.online.config import OnlineConfig
from lipnb.online.inference import segment_sequence
from lipnb.repro import pipeline
from lipnb.train.checkpoint import load_checkpoint
from test_davis import make_davis2017
from lipnb.profiles import model_config

QUICK = ["--set", "max_iters=1", "--set", "refresh_iters=1", "--no-progress", "--threads", "1"]
SPEC = ProceduralSpec(seed=5, coco_train=6, coco_val=0, image_height=64, image_width=96, davis_train=1,
                      davis_val=0, num_frames=10, video_height=56, video_width=96)
TRAIN_SET = ["--set", "scales=[64]", "--set", "max_size=96", "--set", "rois_per_image=16", "--batch-size", "1",
             "--micro-batch", "1", "--num-workers", "0", "--no-progress", "--threads", "1"]


# ----------------------------------------------------------------------------- helpers


def checksums(*roots) -> dict:
    """sha256 of every file under ``roots`` (files or folders)."""
    out = {}
    for root in map(Path, roots):
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for p in files:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


STDOUT = []  # what the last cli() call printed on stdout


def cli(capsys, *argv) -> tuple[int, str]:
    """Exit code and stderr of ``lipnb *argv`` (its stdout: ``STDOUT[-1]``)."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    STDOUT.append(captured.out)
    return code, captured.err


def assert_error(err: str, *names, lines: int = 1):
    """``lines`` lines, each ``error: ...``, naming every one of ``names``; no traceback, no torch advice."""
    shown = [line for line in err.splitlines() if line.strip() and not line.startswith("note:")]
    assert len(shown) == lines and all(line.startswith("error: ") for line in shown), err
    assert "Traceback" not in err and "weights_only" not in err, err
    for name in names:
        assert str(name) in err, (name, err)


@pytest.fixture(scope="module")
def video():
    frames, masks, _ = render_sequence(1, 0, num_frames=5, height=64, width=96, occlusion_frames=1, split="val")
    return frames, masks


@pytest.fixture
def clip(tmp_path, video):
    """``frames/0000{0..4}.jpg`` and ``first.png`` (indexed ids) in a fresh folder."""
    frames, masks = video
    (tmp_path / "frames").mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / "frames" / f"{i:05d}.jpg")
    write_mask(tmp_path / "first.png", masks[0])
    return tmp_path


def segment(capsys, clip, out, *extra, frames=None, mask=None):
    return cli(capsys, "segment", "--frames", frames or clip / "frames", "--first-mask", mask or clip / "first.png",
               "--random-weights", "smoke", "--out", out, *QUICK, *extra)


# ----------------------------------------------------------------------------- segment


@pytest.mark.parametrize("where", ["frames", "inside", "contains"])
def test_segment_never_writes_into_its_inputs(capsys, clip, where):
    """Defect 1: --out equal to, inside or around the frames folder is refused before any work."""
    png = clip / "png"  # PNG frames: the case where masks would have overwritten them
    png.mkdir()
    for p in sorted((clip / "frames").iterdir()):
        Image.open(p).save(png / f"{p.stem}.png")
    out = {"frames": png, "inside": png / "masks", "contains": clip}[where]
    before = checksums(clip)
    code, err = segment(capsys, clip, out, frames=png)
    assert code == 2
    assert_error(err, png, out, "--frames")
    assert checksums(clip) == before and not (png / "masks").exists()


def test_frame_zero_is_read_before_anything_is_written(video):
    """Defect 1: frame 0 is read before its mask is written (a write cannot replace it first)."""
    frames, masks = video
    order = []

    def read(i):
        order.append(("read", i))
        return frames[i]

    segment_sequence(random_model(model_config("smoke")), read, 2, masks[0], lambda i, ids: order.append(("write", i)),
                     OnlineConfig(max_iters=0, refresh=False), progress=False)
    assert order[:2] == [("read", 0), ("write", 0)]


def test_segment_into_an_earlier_run_needs_overwrite_and_never_mixes(capsys, clip, video):
    """Defect 4: a second run into a finished run's folder is refused; with --overwrite it replaces
    it whole (no masks of the old run left), and a first mask kept in the frames folder is no frame."""
    out = clip / "out"
    assert segment(capsys, clip, out)[0] == 0
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i:05d}.png" for i in range(5)]
    before = checksums(clip)
    code, err = segment(capsys, clip, out)
    assert code == 2
    assert_error(err, out, "--overwrite")
    assert checksums(clip) == before

    short = clip / "short"  # 2 frames, and the first mask saved beside them as 00000.png
    short.mkdir()
    for i in range(2):
        (short / f"{i:05d}.jpg").write_bytes((clip / "frames" / f"{i:05d}.jpg").read_bytes())
    write_mask(short / "00000.png", video[1][0])
    inputs = checksums(short)
    code, err = segment(capsys, clip, out, "--overwrite", frames=short, mask=short / "00000.png")
    assert code == 0 and "not read as a frame" in err
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00001.png", "online_config.json", "timing.csv",
                                                  "timing.json"]
    assert json.loads((out / "timing.json").read_text())[0]["num_frames"] == 2
    assert checksums(short) == inputs and not any(p.name.startswith(".") for p in clip.iterdir())


def test_truncated_frame_is_named_and_leaves_a_marked_partial_folder(capsys, clip):
    """Defect 7: a truncated JPEG names the file; the partial masks go to OUT.partial (FAILED.txt),
    the earlier OUT stays as it was."""
    out = clip / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier run")
    bad = clip / "frames" / "00002.jpg"
    bad.write_bytes(bad.read_bytes()[:-300])  # the header reads, the pixels do not
    before = checksums(clip)
    code, err = segment(capsys, clip, out, "--overwrite")
    assert code == 2
    assert_error(err, bad, "out.partial", "FAILED.txt")
    assert checksums(clip / "frames", clip / "first.png", out) == before
    partial = clip / "out.partial"
    assert (partial / "FAILED.txt").is_file() and (partial / "00000.png").is_file()
    assert not (partial / "00002.png").exists()


def test_frames_of_another_size_name_the_file(capsys, clip):
    """Defect 7: frames of different sizes: the odd file and both sizes, before any work."""
    odd = clip / "frames" / "00003.jpg"
    Image.open(odd).resize((48, 32)).save(odd)
    before = checksums(clip)
    code, err = segment(capsys, clip, clip / "out")
    assert code == 2
    assert_error(err, odd, "48x32", "96x64")
    assert checksums(clip) == before and not (clip / "out").exists()


def test_first_mask_of_another_aspect_ratio(capsys, clip, video):
    """Defect 10: a square first mask on 96x64 frames is refused, naming both sizes."""
    square = clip / "square.png"
    write_mask(square, np.asarray(Image.fromarray(video[1][0]).resize((60, 60), Image.NEAREST)))
    before = checksums(clip)
    code, err = segment(capsys, clip, clip / "out", mask=square)
    assert code == 2
    assert_error(err, square, "60x60", "96x64")
    assert checksums(clip) == before and not (clip / "out").exists()


@pytest.mark.parametrize("content", [b"", os.urandom(2000), b"PK\x03\x04broken zip"])
def test_damaged_checkpoint_never_suggests_weights_only_false(capsys, clip, content):
    """Defect 8: a checkpoint of random bytes: one line naming it, no torch advice."""
    ckpt = clip / "model.pt"
    ckpt.write_bytes(content)
    before = checksums(clip)
    code = main(["segment", "--frames", str(clip / "frames"), "--first-mask", str(clip / "first.png"),
                 "--checkpoint", str(ckpt), "--out", str(clip / "out"), *QUICK])
    assert code == 2
    assert_error(capsys.readouterr().err, ckpt, "lipnb train")
    assert checksums(clip) == before and not (clip / "out").exists()


def test_segment_reads_a_01_grayscale_mask_as_one_object(capsys, clip, video):
    """Defect 6: 0/1 grayscale means one object for segment, as 0/255 does."""
    gray = clip / "gray01.png"
    Image.fromarray((video[1][0] > 0).astype(np.uint8)).save(gray)
    assert segment(capsys, clip, clip / "out", mask=gray)[0] == 0
    assert set(np.unique(read_mask(clip / "out" / "00000.png"))) == {0, 1}


# ----------------------------------------------------------------------------- evaluate


@pytest.fixture
def davis(tmp_path):
    root = make_davis2017(tmp_path / "davis", {"a": 2}, num_frames=4)
    results = tmp_path / "results" / "a"
    results.mkdir(parents=True)
    for p in sorted((root / "Annotations" / "480p" / "a").iterdir()):
        results.joinpath(p.name).write_bytes(p.read_bytes())
    return root, tmp_path / "results"


def evaluate(capsys, root, results, out, *extra):
    return cli(capsys, "evaluate", "--davis", root, "--results", results, "--out", out, "--no-progress",
               "--processes", "1", *extra)


def test_evaluate_2016_reads_01_grayscale_as_one_object(tmp_path, capsys, davis):
    """Defect 6: a 0/1 grayscale result under the 2016 protocol is the object, not an empty mask."""
    root, results = davis
    for p in (results / "a").iterdir():
        Image.fromarray((read_mask(p) > 0).astype(np.uint8)).save(p)  # values 0 and 1, mode L
    (root / "ImageSets" / "2016").mkdir()
    (root / "ImageSets" / "2016" / "val.txt").write_text("a\n")
    assert evaluate(capsys, root, results, tmp_path / "csv", "--year", "2016")[0] == 0
    row = (tmp_path / "csv" / "global_results-val.csv").read_text().splitlines()[1]
    assert float(row.split(",")[0]) == 1.0  # J&F of the ground truth itself


def test_evaluate_2017_refuses_ids_absent_from_ground_truth(tmp_path, capsys, davis):
    """Defect 6: id 5 is no object of the ground truth: an error naming the file (official toolkit)."""
    root, results = davis
    bad = results / "a" / "00001.png"
    ids = read_mask(bad)
    ids[0, 0] = 5
    write_mask(bad, ids)
    before = checksums(root, results)
    code, err = evaluate(capsys, root, results, tmp_path / "csv")
    assert code == 1
    assert_error(err, bad, "[5]")
    assert checksums(root, results) == before


def test_evaluate_out_that_is_a_file_fails_before_scoring(tmp_path, capsys, davis, monkeypatch):
    """Defect 11: --out an existing file: refused at once (the evaluation never starts)."""
    import lipnb.cli.evaluate as metrics_cli

    root, results = davis
    target = tmp_path / "scores.csv"
    target.write_text("keep me")
    monkeypatch.setattr(metrics_cli, "evaluate", lambda *a, **k: pytest.fail("evaluation started"))
    code, err = evaluate(capsys, root, results, target)
    assert code == 2
    assert_error(err, target)
    assert target.read_text() == "keep me"


def test_evaluate_out_inside_the_davis_root_is_refused(tmp_path, capsys, davis):
    root, results = davis
    before = checksums(root, results)
    code, err = evaluate(capsys, root, results, root / "Annotations")
    assert code == 2
    assert_error(err, root)
    assert checksums(root, results) == before


@pytest.mark.parametrize("kind", ["empty", "jpeg"])
def test_evaluate_names_a_damaged_png(tmp_path, capsys, davis, kind):
    """Defect 11: a 0-byte PNG and a JPEG saved as .png: what the file is, not Pillow's internals."""
    root, results = davis
    bad = results / "a" / "00002.png"
    if kind == "empty":
        bad.write_bytes(b"")
    else:
        Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(bad, format="JPEG")
    before = checksums(root, results)
    code, err = evaluate(capsys, root, results, tmp_path / "csv")
    assert code == 1
    assert_error(err, bad, "0 bytes" if kind == "empty" else "not a PNG file (it holds a JPEG image)")
    assert "_io.BytesIO" not in err and "mode 'RGB'" not in err
    assert checksums(root, results) == before


# ----------------------------------------------------------------------------- infer


@pytest.fixture
def davis_videos(tmp_path):
    return generate_davis(tmp_path / "davis", seed=4, splits={"val": 2}, num_frames=5, height=64, width=96,
                          occlusion_frames=1)


def infer(capsys, root, out, *extra):
    return cli(capsys, "infer", "--davis", root, "--split", "val", "--random-weights", "smoke", "--out", out,
               "--no-evaluate", *QUICK, *extra)


@pytest.mark.parametrize("where", ["root", "inside"])
def test_infer_never_writes_into_the_davis_root(capsys, davis_videos, where):
    out = davis_videos if where == "root" else davis_videos / "Annotations" / "480p"
    before = checksums(davis_videos)
    code, err = infer(capsys, davis_videos, out)
    assert code == 2
    assert_error(err, davis_videos, "--davis")
    assert checksums(davis_videos) == before


def test_infer_failure_leaves_a_partial_run_that_resume_finishes(tmp_path, capsys, davis_videos):
    """Defect 4/7 for infer: a non-empty --out needs --overwrite; a failure keeps OUT.partial, marked,
    and the earlier OUT; --resume checks the settings, then keeps the finished sequence."""
    out = tmp_path / "online"
    out.mkdir()
    (out / "earlier.txt").write_text("earlier run")
    code, err = infer(capsys, davis_videos, out)
    assert code == 2
    assert_error(err, out, "--overwrite")

    code, err = infer(capsys, davis_videos, out, "--overwrite", "--resume")
    assert code == 2
    assert_error(err, "nothing to resume", tmp_path / "online.partial")

    bad = davis_videos / "JPEGImages" / "480p" / "val-001" / "00002.jpg"
    good = bad.read_bytes()
    bad.write_bytes(good[:-300])
    before = checksums(davis_videos, out)
    code, err = infer(capsys, davis_videos, out, "--overwrite")
    assert code == 1
    assert_error(err, bad, tmp_path / "online.partial", "FAILED.txt")
    assert checksums(davis_videos, out) == before
    partial = tmp_path / "online.partial"
    assert [r["name"] for r in json.loads((partial / "timing.json").read_text())] == ["val-000"]
    finished = checksums(partial / "val-000")

    bad.write_bytes(good)
    code, err = infer(capsys, davis_videos, out, "--overwrite", "--resume", "--set", "max_iters=2")
    assert code == 2
    assert_error(err, partial, "online_config")
    code, err = infer(capsys, davis_videos, out, "--overwrite", "--resume")
    assert code == 0, err
    assert not partial.exists() and not (out / "earlier.txt").exists() and not (out / "FAILED.txt").exists()
    assert [r["name"] for r in json.loads((out / "timing.json").read_text())] == ["val-000", "val-001"]
    assert checksums(out / "val-000") == {k.replace(str(partial), str(out)): v for k, v in finished.items()}


# ----------------------------------------------------------------------------- train


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return ensure_procedural(SPEC, cache_dir=tmp_path_factory.mktemp("proc")).coco


def train(capsys, coco, out, *extra):
    return cli(capsys, "train", "--stage", "pretrain", "--data", coco, "--out", out, *TRAIN_SET, *extra)


def test_train_refuses_to_replace_a_finished_run(tmp_path, capsys, coco):
    """Defect 2: train into a folder with a checkpoint needs --resume or --overwrite."""
    out = tmp_path / "run"
    assert train(capsys, coco, out, "--max-iters", "1")[0] == 0
    before = checksums(out)
    code, err = train(capsys, coco, out, "--max-iters", "1")
    assert code == 2
    assert_error(err, out, "last.pt", "--resume", "--overwrite")
    assert checksums(out) == before
    code, err = train(capsys, coco, out, "--max-iters", "1", "--overwrite")
    assert code == 0 and load_checkpoint(out / "last.pt")["step"] == 1


def test_train_resume_with_nothing_to_resume(tmp_path, capsys, coco):
    code, err = train(capsys, coco, tmp_path / "run", "--max-iters", "1", "--resume")
    assert code == 2
    assert_error(err, "nothing to resume", tmp_path / "run" / "last.pt")
    assert not (tmp_path / "run").exists()


def test_train_counts_one_message_per_bad_value(tmp_path, capsys, coco):
    """Defect 5 for train: every bad count is named, each on its own line, before any work."""
    code, err = cli(capsys, "train", "--stage", "pretrain", "--data", coco, "--out", tmp_path / "run",
                    "--max-iters", "0", "--batch-size", "-1", "--ckpt-every", "0", "--no-progress")
    assert code == 2
    assert_error(err, "--max-iters 0", "--batch-size -1", "--ckpt-every 0", lines=3)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("how", ["init", "resume", "missing-init"])
def test_train_damaged_or_missing_checkpoint(tmp_path, capsys, coco, how):
    """Defect 8: one line naming the checkpoint; never torch's weights_only=False advice."""
    out = tmp_path / "run"
    ckpt = out / "last.pt" if how == "resume" else tmp_path / "init.pt"
    ckpt.parent.mkdir(exist_ok=True)
    if how != "missing-init":
        ckpt.write_bytes(os.urandom(3000))
    before = checksums(tmp_path)
    extra = ["--resume"] if how == "resume" else ["--init", ckpt]
    code, err = train(capsys, coco, out, "--max-iters", "1", *extra)
    assert code in (1, 2)
    assert_error(err, ckpt)
    assert checksums(tmp_path) == before


def test_train_out_holding_the_init_checkpoint_is_refused(tmp_path, capsys, coco):
    init = tmp_path / "pretrain" / "model.pt"
    init.parent.mkdir()
    init.write_bytes(b"not read")
    code, err = train(capsys, coco, tmp_path, "--max-iters", "1", "--init", init)
    assert code == 2
    assert_error(err, init, "--init")
    assert init.read_bytes() == b"not read"


def test_kill_during_the_checkpoint_write_then_resume_is_exact(tmp_path, capsys, coco, monkeypatch):
    """A crash between writing the temporary checkpoint and renaming it leaves last.pt whole; the
    leftover temporary file is cleared and --resume ends bit-exactly where a straight run ends."""
    straight = tmp_path / "straight"
    assert train(capsys, coco, straight, "--max-iters", "2", "--ckpt-every", "1")[0] == 0

    out = tmp_path / "killed"
    real_replace, calls = os.replace, []

    def killed_on_second_checkpoint(src, dst):
        calls.append(dst)
        if str(dst).endswith("last.pt") and sum(str(c).endswith("last.pt") for c in calls) == 2:
            Path(out / ".last.pt.leftover.tmp").write_bytes(Path(src).read_bytes()[:1000])  # what kill -9 leaves
            raise KeyboardInterrupt  # the process dies before the rename
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed_on_second_checkpoint)
    code, err = train(capsys, coco, out, "--max-iters", "2", "--ckpt-every", "1")
    assert code == 130
    assert_error(err, "interrupted by Ctrl-C")
    monkeypatch.undo()
    assert load_checkpoint(out / "last.pt")["step"] == 1 and (out / ".last.pt.leftover.tmp").exists()

    assert train(capsys, coco, out, "--max-iters", "2", "--ckpt-every", "1", "--resume")[0] == 0
    assert not list(out.glob(".last.pt.*.tmp"))
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(out / "last.pt")
    assert a["step"] == b["step"] == 2
    assert all(np.array_equal(a["model"][k].numpy(), b["model"][k].numpy()) for k in a["model"])


# ----------------------------------------------------------------------------- reproduce


@pytest.fixture
def fake_notebooks(monkeypatch):
    """The runner without notebooks: every notebook 'fails' at once, after writing a file."""
    def execute(notebook, dest, params, log_output=False):
        (dest / "ran.txt").write_text(json.dumps(params["pretrain_iters"]))
        raise pipeline.NotebookFailed(f"notebook {notebook} failed in cell 1", notebook, 1, dest / notebook)

    monkeypatch.setattr(pipeline, "execute", execute)
    monkeypatch.setattr(pipeline, "ensure_kernel", lambda *a: None)


def test_reproduce_rejects_bad_values_one_line_each(tmp_path, capsys):
    """Defect 5: -p num_sequences -1 (and every other bad value) is refused before any work."""
    code, err = cli(capsys, "reproduce", "--results-dir", tmp_path, "-p", "num_sequences", "-1",
                    "-p", "pretrain_iters", "0", "-p", "coco", tmp_path / "nowhere", "-p", "online_lr", "-1")
    assert code == 2
    assert_error(err, "-p num_sequences -1", "-p pretrain_iters 0", tmp_path / "nowhere", "-p online_lr -1",
                 lines=4)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("record", ["parameters.json", "papermill metadata"])
def test_reproduce_resume_checks_the_parameters_of_the_run(tmp_path, capsys, fake_notebooks, record):
    """Defect 3: a run failed with pretrain_iters 10 cannot be resumed with -p pretrain_iters 5."""
    failed = tmp_path / "smoke.failed"
    failed.mkdir()
    params = {**pipeline.notebook_parameters("smoke"), "pretrain_iters": 10}
    if record == "parameters.json":
        (failed / "parameters.json").write_text(json.dumps(params))
    else:  # a run of an older version: only its executed notebook records them
        nb = {"cells": [], "metadata": {"papermill": {"parameters": params}}, "nbformat": 4, "nbformat_minor": 5}
        (failed / pipeline.NOTEBOOKS[0]).write_text(json.dumps(nb))
    before = checksums(tmp_path)
    code, err = cli(capsys, "reproduce", "--results-dir", tmp_path, "--resume", "-p", "pretrain_iters", "5")
    assert code == 2
    assert_error(err, failed, "pretrain_iters 10", "-p pretrain_iters 10")
    assert checksums(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["smoke.failed"]

    code, err = cli(capsys, "reproduce", "--results-dir", tmp_path, "--resume", "-p", "pretrain_iters", "10")
    assert code == 1 and "resuming in" in STDOUT[-1]
    assert json.loads((failed / "ran.txt").read_text()) == 10  # resumed in the failed run's folder


def test_reproduce_keeps_earlier_failed_and_interrupted_runs(tmp_path, capsys, fake_notebooks):
    """Defect 9: a fresh run that fails keeps the earlier .failed run (and names it); an interrupted
    staging folder is kept, not deleted; --resume with nothing to resume says so."""
    failed, staging = tmp_path / "smoke.failed", tmp_path / ".staging-smoke"
    failed.mkdir()
    (failed / "checkpoint.pt").write_bytes(b"hours of training")
    before = checksums(failed)
    code, err = cli(capsys, "reproduce", "--results-dir", tmp_path)
    assert code == 1 and str(tmp_path / "smoke.failed-2") in err
    assert checksums(tmp_path / "smoke.failed-2") == {k.replace("smoke.failed", "smoke.failed-2"): v
                                                       for k, v in before.items()}
    staging.mkdir()
    (staging / "interrupted.pt").write_bytes(b"interrupted")
    code, err = cli(capsys, "reproduce", "--results-dir", tmp_path)
    assert code == 1 and "kept the interrupted run" in STDOUT[-1]
    assert (tmp_path / "smoke.failed-3" / "interrupted.pt").read_bytes() == b"interrupted"

    empty = tmp_path / "empty"
    code, err = cli(capsys, "reproduce", "--results-dir", empty, "--resume")
    assert code == 1 and "nothing to resume" in STDOUT[-1]


# ============================================================================= issue 24: symlinked inputs,
# concurrent and killed runs, ambiguous masks and frames, values, errors that name the file


import errno
import shutil
import signal
import subprocess
import sys
import time

from lipnb.cli.safety import lock_path, out_lock

REPO = Path(__file__).resolve().parent.parent
NEVER_STOP = ["--set", 'stop_thresholds={"rpn": 0, "id": 0, "box": 0, "mask": 0}']


def relink(folder: Path, elsewhere: Path) -> Path:
    """Move ``folder`` to ``elsewhere`` and leave a symbolic link in its place; returns ``elsewhere``."""
    elsewhere.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(folder), str(elsewhere))
    folder.symlink_to(elsewhere, target_is_directory=True)
    return elsewhere


def dead_pid() -> int:
    """The pid of a process that has ended."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# ----------------------------------------------------------------------------- first masks and frames


def test_grey_first_mask_of_three_levels_is_refused_unless_grey_levels_says_how(capsys, clip, video):
    """0, 128 and 255: two objects, or an object and void? Refused with advice; --grey-levels objects
    reads two objects, --grey-levels ids reads 255 as void (one object)."""
    ids = video[1][0]
    grey = clip / "grey.png"
    Image.fromarray(np.choose(np.clip(ids, 0, 2), [0, 128, 255]).astype(np.uint8)).save(grey)
    assert set(np.unique(np.asarray(Image.open(grey)))) == {0, 128, 255}
    before = checksums(clip)
    code, err = segment(capsys, clip, clip / "out", mask=grey)
    assert code == 2
    assert_error(err, grey, "3 grey levels", "--grey-levels objects", "--grey-levels ids")
    assert checksums(clip) == before and not (clip / "out").exists()
    assert segment(capsys, clip, clip / "out", "--grey-levels", "objects", mask=grey)[0] == 0
    assert "2 object(s)" in STDOUT[-1]
    assert segment(capsys, clip, clip / "ids", "--grey-levels", "ids", mask=grey)[0] == 0
    assert "1 object(s)" in STDOUT[-1]


def test_anti_aliased_first_mask_is_snapped_with_one_warning_line(capsys, clip):
    """A smooth-edged 0/255 disc is one object, not one per grey level; one warning: line names the file."""
    yy, xx = np.mgrid[:64, :96]
    radius = np.hypot(yy - 32, xx - 48)
    soft = (np.clip(20.5 - radius, 0, 1) * 255).round().astype(np.uint8)  # a 1-pixel anti-aliased rim
    assert len(np.unique(soft)) > 3
    smooth = clip / "smooth.png"
    Image.fromarray(soft).save(smooth)
    before = checksums(clip / "frames", smooth)
    code, err = segment(capsys, clip, clip / "out", mask=smooth)
    assert code == 0, err
    warnings_ = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings_) == 1 and str(smooth) in warnings_[0] and "anti-aliased" in warnings_[0]
    assert "1 object(s)" in STDOUT[-1]
    assert checksums(clip / "frames", smooth) == before


def test_frames_are_in_natural_order_and_ambiguous_names_are_refused(capsys, clip):
    """0.jpg ... 11.jpg come in numeric order; 1.jpg beside 01.jpg is refused, naming both."""
    from lipnb.cli.segment import list_frames

    numbered = clip / "numbered"
    numbered.mkdir()
    source = (clip / "frames" / "00000.jpg").read_bytes()
    for i in range(12):
        (numbered / f"{i}.jpg").write_bytes(source)
    assert [p.stem for p in list_frames(numbered)] == [str(i) for i in range(12)]
    (numbered / "01.jpg").write_bytes(source)
    before = checksums(clip)
    code, err = segment(capsys, clip, clip / "out", frames=numbered)
    assert code == 2
    assert_error(err, "01.jpg", "1.jpg", numbered, "ambiguous")
    assert checksums(clip) == before and not (clip / "out").exists()


@pytest.mark.parametrize("kind", ["pipe", "loop"])
def test_a_pipe_or_link_loop_among_the_frames_is_refused_at_once(capsys, clip, kind):
    """A named pipe would hang the run forever; a link loop gives advice: one line naming it, exit 2."""
    odd = clip / "frames" / "00002.jpg"
    odd.unlink()
    if kind == "pipe":
        os.mkfifo(odd)
    else:
        odd.symlink_to(odd)
    before = checksums(clip / "first.png")
    start = time.perf_counter()
    code, err = segment(capsys, clip, clip / "out")
    assert code == 2 and time.perf_counter() - start < 30
    assert_error(err, odd, "named pipe" if kind == "pipe" else "symbolic link loop")
    assert checksums(clip / "first.png") == before and not (clip / "out").exists()


def test_pillow_pixel_limit_applies_to_frames(capsys, clip, monkeypatch):
    """A frame declaring more pixels than PIL.Image.MAX_IMAGE_PIXELS is refused before decoding it."""
    big = clip / "frames" / "00003.jpg"
    Image.open(big).resize((960, 640)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 96 * 64)
    before = checksums(clip)
    code, err = segment(capsys, clip, clip / "out")
    assert code == 2
    assert_error(err, big, "614400 pixels", "MAX_IMAGE_PIXELS")
    assert checksums(clip) == before and not (clip / "out").exists()


# ----------------------------------------------------------------------------- outputs never inside inputs


def test_infer_out_inside_a_symlinked_annotations_folder_is_refused(tmp_path, capsys, davis_videos):
    """DAVIS root whose Annotations is a link to another disk: --out ROOT/Annotations/480p (even with
    --overwrite) would have replaced the ground truth."""
    real = relink(davis_videos / "Annotations", tmp_path / "disk2" / "Annotations")
    before = checksums(real, davis_videos / "JPEGImages")
    for out in (davis_videos / "Annotations" / "480p", real / "480p", real.parent):
        code, err = infer(capsys, davis_videos, out, "--overwrite")
        assert code == 2
        assert_error(err, out, "--davis", real)
    assert checksums(real, davis_videos / "JPEGImages") == before


def test_evaluate_out_inside_a_symlinked_data_folder_is_refused(tmp_path, capsys, davis):
    root, results = davis
    real = relink(root / "Annotations", tmp_path / "disk2" / "Annotations")
    before = checksums(real, results)
    code, err = evaluate(capsys, root, results, real / "480p" / "a")
    assert code == 2
    assert_error(err, real, "--davis")
    (tmp_path / "rlink").symlink_to(results, target_is_directory=True)
    code, err = evaluate(capsys, root, results, tmp_path / "rlink" / "a")
    assert code == 2
    assert_error(err, "inside the results folder", "cache")
    assert checksums(real, results) == before and not list(real.rglob("*.csv")) and not list(results.rglob("*.csv"))


def test_segment_out_through_a_link_to_the_frames_is_refused(capsys, clip):
    (clip / "view").symlink_to(clip / "frames", target_is_directory=True)
    before = checksums(clip / "frames")
    code, err = segment(capsys, clip, clip / "view" / "masks")
    assert code == 2
    assert_error(err, clip / "view" / "masks", "--frames")
    assert checksums(clip / "frames") == before and not (clip / "frames" / "masks").exists()


def test_train_out_inside_the_data_through_a_link_is_refused(tmp_path, capsys, coco):
    (tmp_path / "data").symlink_to(coco, target_is_directory=True)
    before = checksums(coco)
    code, err = train(capsys, coco, tmp_path / "data" / "run", "--max-iters", "1")
    assert code == 2
    assert_error(err, "--data", coco)
    assert checksums(coco) == before and not (coco / "run").exists()


# ----------------------------------------------------------------------------- one run per output folder


@pytest.mark.parametrize("command", ["segment", "infer", "train", "reproduce", "ablation"])
def test_a_second_run_into_a_locked_output_names_the_holder(tmp_path, capsys, clip, davis_videos, coco,
                                                            fake_notebooks, command):
    """Another run holds --out (here: this test process): refused before any work, naming its pid."""
    earlier = tmp_path / "earlier"
    runs = {
        "segment": (earlier, lambda: segment(capsys, clip, earlier, "--overwrite")),
        "infer": (earlier, lambda: infer(capsys, davis_videos, earlier, "--overwrite")),
        "train": (earlier, lambda: train(capsys, coco, earlier, "--max-iters", "1", "--overwrite")),
        "reproduce": (tmp_path / "smoke", lambda: cli(capsys, "reproduce", "--results-dir", tmp_path)),
        "ablation": (tmp_path / "smoke-ablation",
                     lambda: cli(capsys, "ablation", "--results-dir", tmp_path, "--seeds", "0")),
    }
    out, call = runs[command]
    out.mkdir()
    (out / "last.pt").write_bytes(b"an earlier run")
    before = checksums(tmp_path, clip / "frames", davis_videos)
    with out_lock(out):
        assert lock_path(out).read_text().strip() == str(os.getpid())
        code, err = call()
    assert code == 2
    assert_error(err, out, f"process {os.getpid()}", "in use")
    assert checksums(tmp_path, clip / "frames", davis_videos) == before
    assert not lock_path(out).exists()


def test_a_stale_lock_of_a_killed_run_is_taken_over_with_a_note(capsys, clip):
    out = clip / "out"
    pid = dead_pid()
    lock_path(out).write_text(f"{pid}\n")
    inputs = checksums(clip / "frames", clip / "first.png")
    code, err = segment(capsys, clip, out)
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "stale lock" in notes[0] and str(pid) in notes[0]
    assert not lock_path(out).exists() and (out / "00000.png").is_file()
    assert checksums(clip / "frames", clip / "first.png") == inputs


# ----------------------------------------------------------------------------- interrupted and killed runs


def test_sigint_and_sigterm_leave_a_visible_partial_and_one_line(tmp_path, clip):
    """Ctrl-C (SIGINT, exit 130) and SIGTERM (exit 143) during segment: OUT.partial marked FAILED.txt,
    the earlier OUT untouched, no staging folder, no lock, no traceback. Both runs at once (one wait)."""
    runs = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        out = tmp_path / f"out-{sig.name}"
        out.mkdir()
        (out / "keep.txt").write_text("earlier run")
        argv = [sys.executable, "-m", "lipnb", "segment", "--frames", clip / "frames", "--first-mask",
                clip / "first.png", "--random-weights", "smoke", "--out", out, "--overwrite", "--no-progress",
                "--threads", "1", "--set", "max_iters=1000000", *NEVER_STOP]
        runs[sig] = (out, subprocess.Popen([str(a) for a in argv], cwd=REPO, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True,
                                           env={**os.environ, "OMP_NUM_THREADS": "1"},
                                           # as typed in a terminal, even under a runner that ignores SIGINT
                                           # (a background job's children inherit SIG_IGN)
                                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)))
    before = checksums(clip / "frames", clip / "first.png")
    deadline = time.monotonic() + 60
    pending = dict(runs)
    while pending and time.monotonic() < deadline:  # signal each once its staging folder exists
        for sig, (out, proc) in list(pending.items()):
            if list(tmp_path.glob(f".{out.name}.staging-*")) or proc.poll() is not None:
                time.sleep(0.3)  # inside the fine-tuning loop
                proc.send_signal(sig)
                del pending[sig]
        time.sleep(0.05)
    for sig, (out, proc) in runs.items():
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"{sig.name}: the run did not end")
        assert proc.returncode == 128 + sig, (sig, err)
        assert_error(err, "Ctrl-C" if sig == signal.SIGINT else "SIGTERM", f"{out.name}.partial", "FAILED.txt")
        partial = tmp_path / f"{out.name}.partial"
        mark = (partial / "FAILED.txt").read_text()
        assert ("interrupted by Ctrl-C" if sig == signal.SIGINT else "terminated by SIGTERM") in mark
        assert (out / "keep.txt").read_text() == "earlier run" and sorted(p.name for p in out.iterdir()) == ["keep.txt"]
        assert not list(tmp_path.glob(f".{out.name}.staging-*")) and not lock_path(out).exists()
    assert checksums(clip / "frames", clip / "first.png") == before


def test_resume_finds_the_staging_folder_of_a_killed_run(tmp_path, capsys, davis_videos):
    """kill -9 leaves .OUT.staging-PID unmarked: the next run names it and keeps it as OUT.partial;
    --resume keeps its finished sequence."""
    out = tmp_path / "online"
    bad = davis_videos / "JPEGImages" / "480p" / "val-001" / "00002.jpg"
    good = bad.read_bytes()
    bad.write_bytes(good[:-300])
    assert infer(capsys, davis_videos, out)[0] == 1  # val-000 finished, then a failure: online.partial
    bad.write_bytes(good)
    pid = dead_pid()
    killed = tmp_path / f".online.staging-{pid}"  # what kill -9 leaves: the staging folder, no mark
    os.rename(tmp_path / "online.partial", killed)
    (killed / "FAILED.txt").unlink()
    finished = checksums(killed / "val-000")
    inputs = checksums(davis_videos)

    code, err = infer(capsys, davis_videos, out, "--resume")
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and str(killed) in notes[0] and str(pid) in notes[0] and "online.partial" in notes[0]
    assert [r["name"] for r in json.loads((out / "timing.json").read_text())] == ["val-000", "val-001"]
    assert checksums(out / "val-000") == {k.replace(str(killed), str(out)): v for k, v in finished.items()}
    assert not killed.exists() and not (tmp_path / "online.partial").exists()
    assert checksums(davis_videos) == inputs


def test_a_fresh_run_names_the_partial_it_finds(capsys, clip):
    partial = clip / "out.partial"
    partial.mkdir()
    (partial / "FAILED.txt").write_text("this run failed and is incomplete: boom\n")
    code, err = segment(capsys, clip, clip / "out")
    assert code == 0
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and str(partial) in notes[0] and "boom" in notes[0]
    assert partial.is_dir()


# ----------------------------------------------------------------------------- values checked before any work


def test_online_set_values_are_checked_for_type_and_range(capsys, clip):
    before = checksums(clip)
    code, err = segment(capsys, clip, clip / "out", "--set", "max_iters=-3", "--set", "memory_alpha=NaN",
                        "--set", "refresh=2", "--set", "milestones=[1.5]", "--set", "mask_threshold=1.5")
    assert code == 2
    assert_error(err, "--set max_iters=-3", "integer >= 0", "--set memory_alpha=NaN", "in [0, 1]",
                 "--set refresh=2", "true or false", "--set milestones=[1.5]", "--set mask_threshold=1.5", lines=5)
    assert checksums(clip) == before and not (clip / "out").exists()


def test_train_set_values_are_checked_for_type_and_range(tmp_path, capsys, coco):
    code, err = train(capsys, coco, tmp_path / "run", "--set", "max_iters=-3", "--set", "lr=Infinity",
                      "--set", "flip=1", "--set", "scales=[]", "--model-set", "width=NaN")
    assert code == 2
    assert_error(err, "--set max_iters=-3", "--set lr=Infinity", "> 0", "--set flip=1", "--set scales=[]",
                 "--model-set width=NaN", lines=5)
    assert not (tmp_path / "run").exists() and not any(p.name.endswith(".lock") for p in tmp_path.iterdir())


def test_reproduce_parameters_are_checked_for_type_and_range(tmp_path, capsys, fake_notebooks):
    code, err = cli(capsys, "reproduce", "--results-dir", tmp_path, "-p", "online_lr", "NaN",
                    "-p", "pretrain_iters", "1.5", "-p", "threads", "true", "-p", "frames_resolution", "7")
    assert code == 2
    assert_error(err, "-p online_lr nan", "finite", "-p pretrain_iters 1.5", "-p threads True",
                 "-p frames_resolution 7", lines=4)
    assert not any(tmp_path.iterdir())


def test_duplicate_sequences_are_refused(tmp_path, capsys, davis, davis_videos):
    root, results = davis
    before = checksums(root, results)
    code, err = evaluate(capsys, root, results, tmp_path / "csv", "--sequences", "a", "a")
    assert code == 2
    assert_error(err, "--sequences", "a given more than once")
    assert checksums(root, results) == before and not (tmp_path / "csv").exists()
    code, err = infer(capsys, davis_videos, tmp_path / "online", "--sequences", "val-000,val-001,val-000")
    assert code == 2
    assert_error(err, "--sequences", "val-000 given more than once")
    assert not (tmp_path / "online").exists()


# ----------------------------------------------------------------------------- errors that name the file


def test_checkpoint_of_another_profile_says_which(tmp_path, capsys, coco):
    """A smoke checkpoint as --init of a davis-cpu run: one line with both profiles and architectures."""
    import torch

    model = random_model(model_config("smoke"))
    init = tmp_path / "smoke.pt"
    torch.save({"model": model.state_dict(), "model_config": model.cfg.to_dict(),
                "config": {"profile_name": "smoke"}}, init)
    before = checksums(tmp_path)
    code, err = train(capsys, coco, tmp_path / "run", "--profile", "davis-cpu", "--max-iters", "1", "--init", init)
    assert code in (1, 2)
    assert_error(err, init, "profile 'smoke'", "'davis-cpu' model", "efficientnet")
    assert len(err) < 1000
    assert checksums(tmp_path) == before and not (tmp_path / "run").exists()

    run = tmp_path / "run"  # --resume of a smoke run with --profile davis-cpu
    assert train(capsys, coco, run, "--max-iters", "1")[0] == 0
    before = checksums(tmp_path)
    code, err = train(capsys, coco, run, "--profile", "davis-cpu", "--max-iters", "2", "--resume")
    assert code == 2
    assert_error(err, run / "last.pt", "profile 'smoke'", "'davis-cpu' model", "efficientnet")
    assert len(err) < 1000 and checksums(tmp_path) == before


def test_a_write_failure_names_the_path(capsys, clip, monkeypatch):
    """No space left on device: the path written, advice, and where the partial output is."""
    import lipnb.data.davis as davis_module

    def full_disk(path, ids):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    out = clip / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier run")
    monkeypatch.setattr(davis_module, "write_mask", full_disk)
    before = checksums(clip)
    code, err = segment(capsys, clip, out, "--overwrite")
    assert code == 1
    assert_error(err, "00000.png", "No space left on device", "out.partial")
    assert checksums(clip / "frames", clip / "first.png", out) == {k: v for k, v in before.items()
                                                                  if "out.partial" not in k}


def test_malformed_coco_annotation_names_file_image_and_annotation(tmp_path, capsys, coco):
    data = tmp_path / "coco"
    shutil.copytree(coco, data)
    ann_file = data / "annotations" / "instances_train2017.json"
    doc = json.loads(ann_file.read_text())
    doc["annotations"][0]["category_id"] = 99999
    ann_file.write_text(json.dumps(doc))
    before = checksums(data)
    code, err = train(capsys, data, tmp_path / "run", "--max-iters", "1")
    assert code == 1
    a = doc["annotations"][0]
    assert_error(err, ann_file, f"image {a['image_id']}", f"annotation {a['id']}", "99999")
    assert "--debug" not in err
    assert checksums(data) == before and not (tmp_path / "run").exists()


def test_every_profile_default_passes_the_value_checks():
    """The ranges of lipnb.cli.values refuse no value a profile or config ships with."""
    from lipnb.cli.values import ONLINE, TRAIN, field_specs, problem
    from lipnb.profiles import TRAIN as PROFILE_STAGES, train_config
    from lipnb.train.config import TrainConfig

    online, specs = OnlineConfig(), field_specs(OnlineConfig, ONLINE)
    assert [p for k, s in specs.items() if (p := problem(k, getattr(online, k), s))] == []
    specs = field_specs(TrainConfig, TRAIN)
    for profile, stage in PROFILE_STAGES:
        cfg = train_config(profile, stage)
        assert [p for k, s in specs.items() if (p := problem(k, getattr(cfg, k), s))] == [], (profile, stage)
