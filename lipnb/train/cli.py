"""``python -m lipnb train``: pre-train or fine-tune LIP.

    python -m lipnb train --stage pretrain --profile smoke --out runs/smoke/pretrain
    python -m lipnb train --stage finetune --profile smoke --init runs/smoke/pretrain/last.pt \\
        --out runs/smoke/finetune
    python -m lipnb train --stage pretrain --profile smoke --out runs/smoke/pretrain --resume
    torchrun --nproc_per_node=8 -m lipnb train --stage pretrain --profile paper --data data/coco \\
        --out runs/paper/pretrain --amp bf16

``--data`` is ``procedural`` (the default of ``smoke``), a COCO root (pre-training) or a DAVIS
root (fine-tuning). Any :class:`TrainConfig` field can be set with ``--set key=value`` and any
model field with ``--model-set key=value`` (values parsed as JSON when they parse).
"""

from __future__ import annotations

import argparse

from lipnb.report.profiles import PROFILES
import json

FLAGS = {  # option -> TrainConfig field
    "data": "data", "init": "init", "max_iters": "max_iters", "batch_size": "batch_size",
    "micro_batch": "micro_batch", "lr": "lr", "device": "device", "amp": "amp", "num_workers": "num_workers",
    "seed": "seed", "procedural_seed": "procedural_seed", "ckpt_every": "ckpt_every",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stage", required=True, choices=["pretrain", "finetune"])
    p.add_argument("--profile", default="smoke", choices=PROFILES)
    p.add_argument("--out", required=True, help="run folder: last.pt, log.csv, log.jsonl, config.json")
    p.add_argument("--data", help="'procedural', a COCO root (pretrain) or a DAVIS root (finetune)")
    p.add_argument("--init", help="checkpoint to start from (fine-tuning: the pre-trained model)")
    p.add_argument("--resume", action="store_true", help="continue exactly from <out>/last.pt")
    p.add_argument("--stop-at", type=int, help="end after this many steps, as if interrupted")
    p.add_argument("--max-iters", type=int)
    p.add_argument("--batch-size", type=int, help="samples per step over all processes")
    p.add_argument("--micro-batch", type=int, help="samples per forward pass")
    p.add_argument("--lr", type=float)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], help="autocast dtype (GPU); logged at start")
    p.add_argument("--num-workers", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--procedural-seed", type=int)
    p.add_argument("--ckpt-every", type=int)
    p.add_argument("--full-bptt", action="store_true",
                   help="back-propagate through all clip frames, with activation checkpointing")
    p.add_argument("--threads", type=int, help="torch.set_num_threads")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any TrainConfig field")
    p.add_argument("--model-set", action="append", default=[], metavar="KEY=VALUE", help="any LIPConfig field")


def _parse_pairs(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"expected KEY=VALUE, got {pair!r}")
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value
    return out


def config_from_args(args):
    from lipnb.train.config import TrainConfig

    overrides = {field: getattr(args, flag) for flag, field in FLAGS.items() if getattr(args, flag) is not None}
    overrides.update(_parse_pairs(args.set))
    if args.model_set:
        overrides["model_overrides"] = _parse_pairs(args.model_set)
    if args.full_bptt:
        overrides.update(bptt_cut=None, checkpoint_activations=True)
    return TrainConfig.profile(args.profile, args.stage, **overrides)


def run(args) -> int:
    import torch

    from lipnb.train.loop import train

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = config_from_args(args)
    summary = train(cfg, args.out, resume=args.resume, stop_at=args.stop_at, progress=not args.no_progress)
    if summary.get("first_loss") is not None:
        print(f"[lipnb train] {summary['steps_run']} steps in {summary['wall_s']:.1f}s; "
              f"loss {summary['first_loss']:.4f} -> {summary['last_loss']:.4f}; {args.out}")
    return 0
