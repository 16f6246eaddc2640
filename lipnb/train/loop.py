"""The offline training loop (paper §4.1): pre-training on images, fine-tuning on clips.

One loop for both stages, for one process or many (``torchrun``, DDP)::

    summary = train(profiles.train_config("smoke", "pretrain"), "runs/pretrain")

A step reads ``cfg.batch_size`` samples (images or 8-frame clips) spread over the processes;
each process runs its share in micro-batches of ``cfg.micro_batch``, accumulating gradients
(DDP averages them over processes), then SGD steps and the schedule advances.

What makes runs reproducible, resumable and independent of the number of processes:
the samples of step ``s`` are the stream positions ``[s*G, (s+1)*G)``
(:mod:`lipnb.data.stream`), and each micro-batch runs under a torch generator seeded from
its first position (the model's random RoI sampling), so a step computes the same thing
whether it runs straight, after ``--resume``, or split across processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint
from torch.utils.data import DataLoader, Sampler

from lipnb.data.stream import step_positions
from lipnb.train import distributed as D
from lipnb.train.build import build_data, build_model, build_optimizer, build_scheduler
from lipnb.train.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from lipnb.train.config import TrainConfig
from lipnb.train.log import StepLog

CHECKPOINT_NAME = "last.pt"


class StageForward(nn.Module):
    """The forward pass of a training step, as one module so DDP can wrap it.

    pretrain: ``(images [B] of [3,H,W], targets [B]) -> losses`` (one frame, state zero; with
    ``pretrain_warm_passes`` the state the same images carried through 0..that many earlier passes);
    finetune: ``(frames [T][B], targets [T][B]) -> losses`` averaged over the T frames, the
    state detached after every ``bptt_cut`` frames (None: full BPTT, optionally with each
    frame's activations recomputed in the backward pass to save memory).
    """

    def __init__(self, model: nn.Module, stage: str, bptt_cut, checkpoint_frames: bool = False, warmup: int = 0,
                 pretrain_warm_passes: int = 0):
        super().__init__()
        self.model, self.stage, self.bptt_cut, self.checkpoint_frames = model, stage, bptt_cut, checkpoint_frames
        self.warmup, self.pretrain_warm_passes = warmup, pretrain_warm_passes

    def forward(self, inputs, targets, warmup: int | None = None) -> dict:
        """``warmup``: this batch's warm-up frames (a drawn warm-up, ``TrainConfig.warmup_frames_max``);
        None: the stage's fixed ``self.warmup``."""
        if self.stage == "pretrain":
            passes = int(torch.randint(0, self.pretrain_warm_passes + 1, ())) if self.pretrain_warm_passes else 0
            return self.model(inputs, targets, self.model.warm_up([inputs] * passes))[0]
        warmup = self.warmup if warmup is None else int(warmup)
        if not self.checkpoint_frames:
            return self.model.forward_clip(inputs, targets, bptt_cut=self.bptt_cut, warmup=warmup)
        return self._clip_checkpointed(inputs, targets, warmup)

    def _clip_checkpointed(self, frames, targets, warmup: int) -> dict:
        from lipnb.model import detach_state

        totals, state = {}, self.model.warm_up(frames[:warmup])
        frames, targets = frames[warmup:], targets[warmup:]
        for t, (images, tgts) in enumerate(zip(frames, targets), start=1):
            losses, state = activation_checkpoint(self.model, images, tgts, state, use_reentrant=False)
            for k, v in losses.items():
                totals[k] = totals.get(k, 0.0) + v
            if self.bptt_cut and t % self.bptt_cut == 0:
                state = detach_state(state)
        return {k: v / len(frames) for k, v in totals.items()}


class StepSampler(Sampler):
    """Yields, for steps ``start..stop-1``, the stream positions this process reads."""

    def __init__(self, start: int, stop: int, global_batch: int, rank: int, world_size: int):
        self.start, self.stop, self.g, self.rank, self.world = start, stop, global_batch, rank, world_size

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield step_positions(step, self.g, self.rank, self.world)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def sample_seed(seed: int, position: int) -> int:
    """Seed of the torch generator for the micro-batch starting at stream ``position``."""
    digest = hashlib.blake2b(f"lipnb-step-{seed}-{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def to_device(obj, device):
    if torch.is_tensor(obj):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, stop_at: int | None = None,
          progress: bool = True) -> dict:
    """Run (or continue) training; returns a summary dict (also written to ``summary.json``).

    ``out_dir`` receives ``last.pt`` (every ``cfg.ckpt_every`` steps and at the end),
    ``log.csv``/``log.jsonl`` and ``config.json``. ``resume`` continues from ``last.pt``;
    ``stop_at`` ends the run after that many steps as if interrupted (checkpoint written).
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    dist = D.setup(cfg.device)
    device, main = dist.device, dist.is_main
    ckpt_path = out_dir / CHECKPOINT_NAME
    ckpt = load_checkpoint(ckpt_path) if resume else None
    if ckpt is not None:
        _check_compatible(cfg, ckpt, ckpt_path)

    # ---- data, model, optimiser
    data = build_data(cfg)
    model = build_model(cfg, data.num_ids, load_init=ckpt is None).to(device)
    optimizer = build_optimizer(cfg, model)
    scheduler = build_scheduler(cfg, optimizer)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    start = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        restore_rng(ckpt["rng"])
        start = int(ckpt["step"])
    stop = min(cfg.max_iters, stop_at if stop_at is not None else cfg.max_iters)
    forward = StageForward(model, cfg.stage, cfg.bptt_cut, cfg.checkpoint_activations, cfg.clip_warmup,
                           cfg.pretrain_warm_passes)
    if dist.enabled:
        forward = nn.parallel.DistributedDataParallel(
            forward, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)

    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(
            {"train": cfg.to_dict(), "model": model.cfg.to_dict(), "world_size": dist.world_size,
             "device": str(device), "amp": cfg.amp, "data_root": str(data.root), "num_ids": data.num_ids},
            indent=1, default=str))
        print(f"[lipnb train] {cfg.stage}/{cfg.profile_name}: {dist.world_size} process(es) on {device}, "
              f"AMP {cfg.amp}, {cfg.batch_size} samples/step (micro-batch {cfg.micro_batch}), "
              f"steps {start}->{stop} of {cfg.max_iters}, {data.num_ids} ids, data {data.root}", flush=True)
    log = StepLog(out_dir, resume_from_step=start, enabled=main)
    loader = DataLoader(data.stream, batch_sampler=StepSampler(start, stop, cfg.batch_size, dist.rank,
                                                               dist.world_size),
                        collate_fn=list, num_workers=cfg.num_workers, generator=torch.Generator(),
                        pin_memory=device.type == "cuda")
    bar = tqdm(total=cfg.max_iters, initial=start, disable=not (main and progress), desc=cfg.stage,
               dynamic_ncols=True)

    # ---- the loop
    model.train()
    t_run = t_last = time.time()
    for step, samples in enumerate(loader, start=start):
        positions = step_positions(step, cfg.batch_size, dist.rank, dist.world_size)
        lr = optimizer.param_groups[0]["lr"]
        chunks = [range(i, min(i + cfg.micro_batch, len(samples))) for i in range(0, len(samples), cfg.micro_batch)]
        totals: dict = {}
        for ci, chunk in enumerate(chunks):
            inputs, targets, *extra = to_device(data.collate([samples[i] for i in chunk]), device)
            sync = contextlib.nullcontext() if not dist.enabled or ci == len(chunks) - 1 else forward.no_sync()
            with sync, torch.random.fork_rng(devices=[device.index] if device.type == "cuda" else []):
                torch.manual_seed(sample_seed(cfg.seed, positions[chunk[0]]))
                with _autocast(cfg, device):
                    losses = forward(inputs, targets, **(extra[0] if extra else {}))
                loss = sum(losses.values()) / len(chunks)
                scaler.scale(loss).backward()
            for k, v in losses.items():
                totals[k] = totals.get(k, 0.0) + float(v.detach()) / len(chunks)
        if cfg.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()

        totals = D.mean_over_processes(totals, dist)
        total, now = sum(totals.values()), time.time()
        if (step + 1) % cfg.log_every == 0 or step + 1 == stop:  # sec: the step, data loading included
            log.append({"step": step + 1, "lr": lr, "loss": total, **totals, "sec": now - t_last,
                        "samples": cfg.batch_size})
        t_last = now
        bar.update(1)
        bar.set_postfix(loss=f"{total:.3f}", lr=f"{lr:.2g}")
        if (step + 1) % cfg.ckpt_every == 0 or step + 1 == stop:
            _save(ckpt_path, step + 1, model, optimizer, scheduler, scaler, cfg, data, main)
            D.barrier(dist)
    bar.close()
    if start >= stop and main:
        print(f"[lipnb train] nothing to do: checkpoint at step {start}, stop at {stop}")

    summary = _summary(log.rows, cfg, out_dir, start, stop, time.time() - t_run, dist.world_size)
    if main:
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    D.cleanup()
    return summary


def _save(path, next_step, model, optimizer, scheduler, scaler, cfg, data, main):
    if not main:
        return
    save_checkpoint({
        "step": next_step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": capture_rng(),
        "data": {"position": next_step * cfg.batch_size, "global_batch": cfg.batch_size, "seed": cfg.seed},
        "config": cfg.to_dict(),
        "model_config": model.cfg.to_dict(),
        "meta": data.meta,
    }, path)


def _check_compatible(cfg: TrainConfig, ckpt: dict, path: Path) -> None:
    """Resuming with a different stage, seed or batch would not continue the same run."""
    old = ckpt.get("config", {})
    for key in ("stage", "seed", "batch_size", "micro_batch", "data", "procedural_seed"):
        if key in old and old[key] != getattr(cfg, key):
            raise ValueError(f"cannot resume from {path}: it was trained with {key}={old[key]!r}, "
                             f"this run has {key}={getattr(cfg, key)!r}")


def _summary(rows, cfg, out_dir, start, stop, wall, world) -> dict:
    first, last = (rows[0] if rows else {}), (rows[-1] if rows else {})
    k = max(1, min(10, len(rows) // 4))
    mean = lambda rs, key: sum(r[key] for r in rs) / len(rs) if rs else None  # noqa: E731
    return {"stage": cfg.stage, "profile": cfg.profile_name, "out_dir": str(out_dir), "steps_run": stop - start,
            "final_step": stop, "wall_s": wall, "world_size": world,
            "first_loss": first.get("loss"), "last_loss": last.get("loss"),
            f"mean_loss_first_{k}": mean(rows[:k], "loss"), f"mean_loss_last_{k}": mean(rows[-k:], "loss"),
            "first": first, "last": last}
