"""DAVIS evaluation: region similarity J, contour accuracy F, their statistics and the
semi-supervised protocol over a results folder. numpy + Pillow only (no torch).

    from lipnb.metrics import evaluate
    ev = evaluate(DavisDataset(root, year="2016"), "results/my-method")
    ev.global_results()["J&F-Mean"]
"""

from lipnb.metrics.boundary import f_measure, seg2bmap
from lipnb.metrics.evaluation import (Evaluation, MissingResultsError, SequenceScores, evaluate,
                                      evaluate_sequence, score_frame)
from lipnb.metrics.region import jaccard
from lipnb.metrics.statistics import mean_recall_decay

__all__ = ["jaccard", "f_measure", "seg2bmap", "mean_recall_decay", "score_frame", "evaluate",
           "evaluate_sequence", "Evaluation", "SequenceScores", "MissingResultsError"]
