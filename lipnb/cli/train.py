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

A folder that already holds a run (``last.pt``, logs) is continued only with ``--resume`` and
replaced only with ``--overwrite``; ``--resume`` without ``last.pt`` is an error, and so is an
``--out`` that is, contains or lies inside ``--data`` or holds ``--init`` (paths resolved, links
followed). One run at a time trains into ``--out`` (a lock file ``OUT.lock`` beside it). Every
value given (flags, ``--set``, ``--model-set``) is checked for type and range before any work,
one message per bad value.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lipnb.profiles import PROFILES
import json
from lipnb.profiles import train_config
from lipnb.errors import UserError

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
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out (its last.pt and logs)")
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


RUN_FILES = ("last.pt", "log.csv", "log.jsonl", "config.json", "summary.json")  # what train() writes
COUNTS = {"max_iters": 1, "batch_size": 1, "micro_batch": 1, "num_workers": 0, "seed": 0, "procedural_seed": 0,
          "ckpt_every": 1, "log_every": 1}  # TrainConfig field -> smallest meaningful value


def _parse_pairs(pairs: list[str]) -> dict:
    from lipnb.errors import fail

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            fail(f"expected KEY=VALUE, got {pair!r}")
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value
    return out


def config_from_args(args):
    """The TrainConfig of the profile, the flags and ``--set`` / ``--model-set``: every value given
    checked for type and range first, one ``error:`` line per bad value."""
    from lipnb.cli.values import TRAIN, field_specs, parse_pairs, problem
    from lipnb.errors import raise_all
    from lipnb.model.config import LIPConfig
    from lipnb.train.config import TrainConfig

    specs = field_specs(TrainConfig, TRAIN)
    overrides = {field: getattr(args, flag) for flag, field in FLAGS.items() if getattr(args, flag) is not None}
    problems = [problem(f"--{flag.replace('_', '-')} {getattr(args, flag)}", getattr(args, flag), specs[field])
                for flag, field in FLAGS.items() if getattr(args, flag) is not None]
    values, set_problems = parse_pairs(args.set, "--set", specs, "TrainConfig")
    overrides.update(values)
    problems += set_problems
    if args.model_set:
        model_values, model_problems = parse_pairs(args.model_set, "--model-set", field_specs(LIPConfig), "LIPConfig")
        overrides["model_overrides"] = model_values
        problems += model_problems
    if args.stop_at is not None:
        problems.append(problem(f"--stop-at {args.stop_at}", args.stop_at, ("int", 0)))
    if args.threads is not None:
        problems.append(problem(f"--threads {args.threads}", args.threads, ("int", 1)))
    raise_all(problems)
    if args.full_bptt:
        overrides.update(bptt_cut=None, checkpoint_activations=True)
    try:
        return train_config(args.profile, args.stage, **overrides)
    except (TypeError, ValueError) as e:
        from lipnb.errors import fail

        fail(f"--set: {e}; see lipnb.train.TrainConfig for the fields")


def check_values(args, cfg) -> None:
    """Counts, the learning rate and the input paths of the whole config (the profile's values
    too); one message per bad value."""
    from lipnb.errors import count_problem, positive_problem, raise_all

    flag = {v: k.replace("_", "-") for k, v in FLAGS.items()}
    label = lambda field: f"--{flag[field]}" if field in flag and getattr(args, flag[field].replace("-", "_"), None) is not None else f"--set {field}"  # noqa: E501,E731
    problems = [count_problem(label(k), getattr(cfg, k), m) for k, m in COUNTS.items() if hasattr(cfg, k)]
    problems.append(positive_problem(label("lr"), cfg.lr))
    if cfg.init and not Path(cfg.init).is_file():
        problems.append(f"--init {cfg.init}: checkpoint not found; give a last.pt written by 'lipnb train'")
    raise_all([p for p in problems if p])


def check_out(args, cfg) -> Path:
    """Inputs are never written: ``--out`` may not be, contain or lie inside ``--data`` or hold
    ``--init`` (paths resolved, links inside them followed). Returns ``--out`` resolved."""
    from lipnb.cli.safety import check_out_apart

    from lipnb.cli.safety import data_folders

    return check_out_apart(args.out, {**data_folders("--data", cfg.data), "--init": cfg.init or None})


def check_run_folder(args, out: Path) -> None:
    """Under the lock: a run already in --out is continued or replaced only on request."""
    from lipnb.errors import fail

    if out.exists() and not out.is_dir():
        fail(f"--out {args.out} is a file, not a folder; choose a folder")
    ckpt = out / "last.pt"
    if args.resume:
        if not ckpt.is_file():
            fail(f"nothing to resume: {ckpt} not found; run without --resume to start")
        if args.overwrite:
            fail("--resume and --overwrite contradict each other; choose one")
    else:
        found = [n for n in RUN_FILES if (out / n).exists()]
        if found and not args.overwrite:
            fail(f"--out {out} already holds a training run ({', '.join(found)}); pass --resume to continue it, "
                 "--overwrite to replace it, or choose another --out")
        for name in found:
            (out / name).unlink()
        if found:
            print(f"[lipnb train] --overwrite: removed the earlier run's {', '.join(found)} in {out}")
    for tmp in out.glob(".last.pt.*.tmp") if out.is_dir() else []:  # a write killed before its rename
        tmp.unlink()
        print(f"[lipnb train] removed {tmp}, an unfinished checkpoint write (last.pt is intact)")


def _main_process() -> bool:
    """False in the other processes of a ``torchrun`` job (only the first one locks ``--out``)."""
    import os

    return int(os.environ.get("RANK", "0") or 0) == 0


def run(args) -> int:
    import contextlib

    import torch

    from lipnb.cli.safety import out_lock
    from lipnb.train.loop import train

    cfg = config_from_args(args)
    check_values(args, cfg)
    out = check_out(args, cfg)
    with out_lock(out) if _main_process() else contextlib.nullcontext(out):
        check_run_folder(args, out)
        if args.threads:
            torch.set_num_threads(args.threads)
        try:
            summary = train(cfg, out, resume=args.resume, stop_at=args.stop_at, progress=not args.no_progress)
        except RuntimeError as error:  # weights of another profile or architecture: say which
            if "Error(s) in loading state_dict" not in str(error) or not args.resume:
                raise
            from lipnb.train.checkpoint import mismatch_message

            raise UserError(mismatch_message(out / "last.pt", cfg.profile_name, cfg.model)) from error
        except ValueError as error:  # --init of another profile (lipnb.train.build): its one line, as is
            if "is a checkpoint of" not in str(error):
                raise
            raise UserError(str(error)) from error
    if summary.get("first_loss") is not None:
        print(f"[lipnb train] {summary['steps_run']} steps in {summary['wall_s']:.1f}s; "
              f"loss {summary['first_loss']:.4f} -> {summary['last_loss']:.4f}; {args.out}")
    return 0
