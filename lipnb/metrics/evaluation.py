"""Score a results folder against DAVIS ground truth: the semi-supervised protocol.

A results folder holds one indexed PNG per frame, ``RESULTS/<sequence>/<frame>.png``, at
the annotations' resolution, whose values are object ids. For every sequence of the split:

- the objects are the ids of the first ground-truth mask;
- frames 1..N-2 are scored (the first is given, the last is not scored, as the toolkit);
- each object gets J and F per frame: a prediction without that id scores it as empty;
  a prediction holding an id that is no object of the ground truth is an error (DAVIS 2017,
  as the official toolkit: "index higher than the number of objects");
- each object gets Mean, Recall and Decay of J and of F; the global figures average the
  objects of the whole set, and J&F-Mean = (J-Mean + F-Mean) / 2.

Sequences are scored in parallel (one process per core). Nothing is cached: every call
reads every PNG.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lipnb.data.davis import DavisDataset, DavisFormatError, DavisSequence, read_mask
from lipnb.metrics.boundary import BOUND_TH, bounding_box, boundary_crop, boundary_radius, f_crop
from lipnb.metrics.statistics import mean_recall_decay

GLOBAL_COLUMNS = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
SEQUENCE_COLUMNS = ["Sequence", "J-Mean", "F-Mean"]


class MissingResultsError(DavisFormatError):
    """The results folder lacks sequences or frames; the message lists them."""


# ----------------------------------------------------------------------------- one frame


def score_frame(gt: np.ndarray, pred: np.ndarray, object_ids: list[int],
                bound_th: float = BOUND_TH) -> tuple[np.ndarray, np.ndarray]:
    """J and F of every object in one frame.

    Args:
        gt, pred: object ids, uint8 [H, W].
        object_ids: the K objects to score.

    Returns:
        J, F: float64 [K].
    """
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
    radius = boundary_radius(gt.shape, bound_th)
    j_scores, f_scores = np.ones(len(object_ids)), np.ones(len(object_ids))
    box = bounding_box(gt | pred)  # of every object, predicted or true
    if box is None:  # nothing anywhere: J = F = 1
        return j_scores, f_scores
    rows, cols = boundary_crop(box, gt.shape)  # boxes in it, grown by 1 and clipped to it,
    gt, pred = gt[rows, cols], pred[rows, cols]  # are clipped to the image
    for k, object_id in enumerate(object_ids):
        gt_k, pred_k = gt == object_id, pred == object_id
        box = bounding_box(gt_k | pred_k)
        if box is None:  # both empty: J = F = 1
            continue
        rows, cols = boundary_crop(box, gt.shape)
        gt_k, pred_k = gt_k[rows, cols], pred_k[rows, cols]
        j_scores[k] = np.count_nonzero(gt_k & pred_k) / np.count_nonzero(gt_k | pred_k)
        f_scores[k] = f_crop(gt_k, pred_k, radius)
    return j_scores, f_scores


# ----------------------------------------------------------------------------- one sequence


@dataclass
class SequenceScores:
    """Per-frame scores of one sequence: ``J``, ``F`` float64 [K, N-2] for its K objects."""

    name: str
    object_ids: list[int]
    J: np.ndarray
    F: np.ndarray

    @property
    def object_names(self) -> list[str]:
        """``<sequence>_<object id>``, the toolkit's row names."""
        return [f"{self.name}_{i}" for i in self.object_ids]


def scored_frames(seq: DavisSequence) -> range:
    """Frames the semi-supervised protocol scores: all but the first and the last."""
    return range(1, seq.num_frames - 1)


def evaluate_sequence(seq: DavisSequence, results_dir: str | os.PathLike,
                      bound_th: float = BOUND_TH) -> SequenceScores:
    """Score ``results_dir/<seq.name>/`` against the ground truth of ``seq``."""
    if not seq.fully_annotated:
        raise DavisFormatError(f"sequence {seq.name!r} has ground truth for {len(seq.annotation_paths)} "
                               f"of {seq.num_frames} frames; cannot score it")
    object_ids = seq.object_ids
    frames = scored_frames(seq)
    j_scores = np.zeros((len(object_ids), len(frames)))
    f_scores = np.zeros((len(object_ids), len(frames)))
    for t, i in enumerate(frames):
        gt = seq.read_mask(i)
        path = seq.result_path(results_dir, i)
        pred = read_mask(path, seq.year)
        if pred.shape != gt.shape:
            raise DavisFormatError(f"{path}: prediction is {pred.shape[1]}x{pred.shape[0]}, the annotations "
                                   f"are {gt.shape[1]}x{gt.shape[0]}; write results at the annotations' resolution")
        if seq.year == "2017":
            _check_ids(path, pred, object_ids)
        j_scores[:, t], f_scores[:, t] = score_frame(gt, pred, object_ids, bound_th)
    return SequenceScores(seq.name, object_ids, j_scores, f_scores)


def _check_ids(path, pred: np.ndarray, object_ids: list[int]) -> None:
    present = np.flatnonzero(np.bincount(pred.ravel(), minlength=256))
    extra = sorted(set(present.tolist()) - set(object_ids) - {0})
    if extra:
        raise DavisFormatError(f"{path}: ids {extra} are not objects of the ground truth (objects {object_ids}); "
                               "the DAVIS 2017 protocol refuses them, as the official toolkit does: write only "
                               "the first mask's ids")


def _evaluate_task(task: tuple) -> SequenceScores:
    return evaluate_sequence(*task)


# ----------------------------------------------------------------------------- a results folder


@dataclass
class Evaluation:
    """Scores of a whole split: per-object statistics and the global table."""

    split: str
    sequences: list[SequenceScores]

    @property
    def num_frames(self) -> int:
        """Scored frames (each counted once, whatever its number of objects)."""
        return sum(s.J.shape[1] for s in self.sequences)

    def per_object(self) -> list[tuple[str, tuple[float, float, float], tuple[float, float, float]]]:
        """``(name, (J-Mean, J-Recall, J-Decay), (F-Mean, F-Recall, F-Decay))`` per object."""
        return [(name, mean_recall_decay(s.J[k]), mean_recall_decay(s.F[k]))
                for s in self.sequences for k, name in enumerate(s.object_names)]

    def global_results(self) -> dict[str, float]:
        """The toolkit's global table: every statistic averaged over all objects."""
        objects = self.per_object()
        j_stats = np.array([j for _, j, _ in objects]).reshape(-1, 3)
        f_stats = np.array([f for _, _, f in objects]).reshape(-1, 3)
        j_mean, j_recall, j_decay = j_stats.mean(axis=0)
        f_mean, f_recall, f_decay = f_stats.mean(axis=0)
        values = [(j_mean + f_mean) / 2.0, j_mean, j_recall, j_decay, f_mean, f_recall, f_decay]
        return dict(zip(GLOBAL_COLUMNS, map(float, values)))

    def per_sequence_results(self) -> list[tuple[str, float, float]]:
        """The toolkit's per-sequence table: ``(<seq>_<objid>, J-Mean, F-Mean)`` rows."""
        return [(name, j[0], f[0]) for name, j, f in self.per_object()]


def check_results(dataset: DavisDataset, results_dir: str | os.PathLike,
                  sequences: list[str] | None = None) -> None:
    """Raise :class:`MissingResultsError` listing every missing sequence folder and frame."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise MissingResultsError(f"results folder not found: {results_dir}")
    missing = []
    for name in sequences or dataset.sequences:
        seq = dataset[name]
        folder = results_dir / name
        if not folder.is_dir():
            missing.append(f"{folder}/ (whole sequence, {len(scored_frames(seq))} frames)")
            continue
        present = set(os.listdir(folder))
        missing += [str(seq.result_path(results_dir, i)) for i in scored_frames(seq)
                    if seq.result_path(results_dir, i).name not in present]
    if missing:
        shown = "\n  ".join(missing[:30]) + (f"\n  ... and {len(missing) - 30} more" if len(missing) > 30 else "")
        raise MissingResultsError(f"results folder {results_dir} is incomplete for "
                                  f"{dataset.split_file.name} ({len(missing)} missing):\n  {shown}")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def evaluate(dataset: DavisDataset, results_dir: str | os.PathLike, sequences: list[str] | None = None,
             processes: int | None = None, progress: bool = True, bound_th: float = BOUND_TH) -> Evaluation:
    """Score ``results_dir`` on ``dataset`` (all its sequences, or ``sequences``).

    Args:
        processes: worker processes (default: one per available core; 1 = in this process).
        progress: show a tqdm bar (frames) on stderr.
    """
    names = list(sequences or dataset.sequences)
    seqs = [dataset[name] for name in names]  # unknown names raise here
    check_results(dataset, results_dir, names)
    tasks = sorted(((s, results_dir, bound_th) for s in seqs), key=lambda t: -t[0].num_frames)  # longest first
    processes = min(processes or available_cores(), len(tasks))
    scores = {}
    if processes <= 1:
        iterator, pool = map(_evaluate_task, tasks), None
    else:
        methods = multiprocessing.get_all_start_methods()
        pool = multiprocessing.get_context("fork" if "fork" in methods else None).Pool(processes)
        iterator = pool.imap_unordered(_evaluate_task, tasks)
    from tqdm import tqdm

    try:
        with tqdm(total=sum(len(scored_frames(s)) for s in seqs), unit="frame", disable=not progress,
                  desc=f"evaluate {dataset.split}") as bar:
            for result in iterator:
                scores[result.name] = result
                bar.update(result.J.shape[1])
    finally:
        if pool is not None:
            pool.terminate()
    return Evaluation(dataset.split, [scores[name] for name in names])
