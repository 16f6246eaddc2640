"""Offline training of LIP (paper §4.1, §5.1): COCO pre-training and DAVIS fine-tuning.

    from lipnb import profiles
    from lipnb.train import TrainConfig, train
    summary = train(profiles.train_config("smoke", "pretrain"), "runs/smoke/pretrain")
    summary = train(profiles.train_config("smoke", "finetune", init="runs/smoke/pretrain/last.pt"),
                    "runs/smoke/finetune")

Files: ``config.py`` (TrainConfig, the paper's values), ``build.py`` (data, model, optimiser,
schedule), ``loop.py`` (the loop), ``checkpoint.py`` (atomic, weights-only checkpoints),
``distributed.py`` (torchrun / DDP), ``log.py`` (per-step CSV/JSONL). The command line is
``python -m lipnb train`` (:mod:`lipnb.cli.train`).
"""

from lipnb.train.config import TrainConfig
from lipnb.train.loop import train

__all__ = ["TrainConfig", "train"]
