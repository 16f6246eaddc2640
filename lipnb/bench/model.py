"""``python -m lipnb.bench model``: LIP against torchvision's plain Mask R-CNN on the same backbone.

For each network: parameters, eval frames/s (frame by frame, the state carried), the time of one
training clip (forward + backward + SGD step over ``--clip`` frames, BPTT cut as configured) and
peak memory (CUDA: ``max_memory_allocated``; CPU: the process's peak RSS). Each network runs in its
own subprocess so the memory figures do not mix. The ratios LIP / Mask R-CNN are the cost of the
visual memory, path augmentation and shortcut.

    python -m lipnb.bench model                                  # smoke profile on CPU
    python -m lipnb.bench model --device cuda --profile paper --amp bf16    # 854x480 on a GPU

GPU targets (paper profile, 480p): >= 25 frames/s in eval (bf16 autocast allowed) and the memory
module's cost <= 20% over plain Mask R-CNN; they are checked and printed when ``--device cuda``.
Random weights: ``--score-thresh 0`` (default) sends ``detections_per_img`` boxes to the mask head.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time

DEFAULT_SIZE = {"smoke": (128, 224), "davis-cpu": (240, 427), "davis-gpu": (240, 427), "paper": (480, 854)}  # (H, W)


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m lipnb.bench model", description=__doc__.split("\n")[0])
    p.add_argument("--profile", default="smoke", choices=["smoke", "davis-cpu", "davis-gpu", "paper"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--batch", type=int, default=1, help="clips per batch")
    p.add_argument("--frames", type=int, default=8, help="timed eval frames")
    p.add_argument("--clip", type=int, default=8, help="frames per training clip")
    p.add_argument("--train-reps", type=int, default=1, help="timed training clips")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="CPU intra-op threads")
    p.add_argument("--score-thresh", type=float, default=0.0)
    p.add_argument("--bptt-cut", type=int, default=-1,
                   help="detach the state every N frames in the training clip (0: full BPTT; default: the profile's 4)")
    p.add_argument("--estimate", action="store_true",
                   help="also time a pre-training step (2 images, zero state) and estimate the paper's schedule")
    p.add_argument("--no-train", action="store_true")
    p.add_argument("--models", default="lip,maskrcnn")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------ networks
def build(name, cfg):
    """``lip``: LIP(cfg). ``maskrcnn``: torchvision MaskRCNN with the same backbone, RPN and head
    shapes (class-specific predictors, torchvision's default), no memory / path augmentation / shortcut."""
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    from lipnb.model import LIP
    from lipnb.model.backbone import resnet_fpn
    from lipnb.model.heads import box_head, mask_head
    from lipnb.model.rpn import anchor_generator

    if name == "lip":
        return LIP(cfg)
    c = cfg.fpn_channels
    model = MaskRCNN(
        resnet_fpn(cfg), num_classes=None,
        min_size=cfg.test_min_size, max_size=cfg.test_max_size,
        image_mean=list(cfg.image_mean), image_std=list(cfg.image_std),
        rpn_anchor_generator=anchor_generator(cfg),
        rpn_pre_nms_top_n_train=cfg.rpn_pre_nms_top_n_train, rpn_pre_nms_top_n_test=cfg.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_train=cfg.rpn_post_nms_top_n_train, rpn_post_nms_top_n_test=cfg.rpn_post_nms_top_n_test,
        rpn_batch_size_per_image=cfg.rpn_batch_size_per_image,
        box_head=box_head(cfg, c), box_predictor=FastRCNNPredictor(cfg.representation_size, cfg.num_ids + 1),
        box_score_thresh=cfg.box_score_thresh, box_nms_thresh=cfg.box_nms_thresh,
        box_detections_per_img=cfg.detections_per_img, box_batch_size_per_image=cfg.roi_batch_size_per_image,
        mask_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], cfg.mask_roi_size, 2),
        mask_head=mask_head(cfg, c),
        mask_predictor=MaskRCNNPredictor(cfg.mask_head_channels, cfg.mask_head_channels, cfg.num_ids + 1),
    )
    model.transform._skip_resize = True  # as LIP: the data pipeline scales training clips
    return model


def synthetic_clip(T, B, H, W, num_ids, device, seed=0):
    """``T`` frames of ``B`` random images, each with 2 boxes and box-filling masks."""
    import torch

    g = torch.Generator().manual_seed(seed)
    frames, targets = [], []
    for _ in range(T):
        imgs, tgts = [], []
        for _ in range(B):
            xy = torch.rand(2, 2, generator=g) * torch.tensor([W * 0.6, H * 0.6])
            wh = (0.15 + 0.25 * torch.rand(2, 2, generator=g)) * torch.tensor([W, H])
            boxes = torch.cat([xy, xy + wh], 1).round()
            masks = torch.zeros(2, H, W, dtype=torch.uint8)
            for k, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
                masks[k, y0:y1, x0:x1] = 1
            imgs.append(torch.rand(3, H, W, generator=g).to(device))
            tgts.append({"boxes": boxes.to(device), "labels": torch.tensor([1, min(2, num_ids)], device=device),
                         "masks": masks.to(device)})
        frames.append(imgs)
        targets.append(tgts)
    return frames, targets


# ------------------------------------------------------------------------------------ measuring
def measure(name, args) -> dict:
    import torch

    from lipnb.model import LIPConfig

    torch.manual_seed(0)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    H, W = args.height, args.width
    cfg = LIPConfig.profile(args.profile, box_score_thresh=args.score_thresh,
                            test_min_size=min(H, W), test_max_size=max(H, W))
    model = build(name, cfg).to(device)
    amp = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.amp]

    def autocast():
        return torch.autocast(device.type, dtype=amp) if amp is not None else contextlib.nullcontext()

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def peak_mb():
        if cuda:
            return torch.cuda.max_memory_allocated() / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    result = {"model": name, "params": sum(p.numel() for p in model.parameters()),
              "device": torch.cuda.get_device_name() if cuda else f"cpu x{args.threads} threads"}
    frames, targets = synthetic_clip(max(args.frames, args.clip) + args.warmup, args.batch, H, W,
                                     cfg.num_ids, device)

    # eval: frame by frame, the state carried (plain Mask R-CNN has none)
    model.eval()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    state = None
    with torch.inference_mode():
        for t, images in enumerate(frames[: args.warmup + args.frames]):
            if t == args.warmup:
                sync()
                t0 = time.perf_counter()
            with autocast():
                if name == "lip":
                    out, state = model(images, state=state)
                else:
                    out = model(images)
        sync()
    elapsed = time.perf_counter() - t0
    result["eval_frames_per_s"] = args.frames * args.batch / elapsed
    result["eval_peak_mb"] = peak_mb()
    result["detections_per_frame"] = sum(len(o["boxes"]) for o in out) / len(out)

    if not args.no_train:
        model.train()
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)
        clip_f, clip_t = frames[: args.clip], targets[: args.clip]
        bptt_cut = cfg.bptt_cut if args.bptt_cut < 0 else (args.bptt_cut or None)
        result["bptt_cut"] = bptt_cut
        if cuda:
            torch.cuda.reset_peak_memory_stats()

        def clip_losses():
            if name == "lip":
                return model.forward_clip(clip_f, clip_t, bptt_cut=bptt_cut)
            losses = {}
            for images, tgts in zip(clip_f, clip_t):
                for k, v in model(images, tgts).items():
                    losses[k] = losses.get(k, 0.0) + v / len(clip_f)
            return losses

        result["train_clip_s"] = best_step_seconds(clip_losses, opt, autocast, sync, args.train_reps)
        result["train_peak_mb"] = peak_mb()
        if args.estimate and name == "lip":  # one pre-training micro-batch: 2 images, hidden state at zero
            images, tgts = [frames[0][0], frames[1][0]], [targets[0][0], targets[1][0]]
            model.hold_hidden_at_zero()
            result["pretrain_step_s"] = best_step_seconds(lambda: model(images, tgts)[0], opt, autocast, sync, 3)
            model.hold_hidden_at_zero(False)
    return result


def best_step_seconds(losses_fn, opt, autocast, sync, reps: int) -> float:
    """Fastest of ``reps`` training steps (forward, backward, SGD step) after one warm-up step."""
    times = []
    for _ in range(1 + reps):
        sync()
        t0 = time.perf_counter()
        with autocast():
            loss = sum(losses_fn().values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
        times.append(time.perf_counter() - t0)
    return min(times[1:])


def schedule_estimate(r: dict) -> list[str]:
    """The paper's schedule (§5.1) from measured step times: 270K pre-training steps of 16 images
    (8 micro-batches of 2) and 12K fine-tuning clips, on 1 GPU and split over 8 (ideal scaling)."""
    pre = 270_000 * 8 * r["pretrain_step_s"]
    fine = 12_000 * r["train_clip_s"]
    return [f"paper schedule estimate (measured steps x counts, no data loading): pre-training 270K x 16 images "
            f"= {pre / 3600:.1f} h on 1 device, {pre / 8 / 3600:.1f} h on 8; fine-tuning 12K clips = "
            f"{fine / 3600:.1f} h on 1 device ({r['pretrain_step_s']:.3f} s per 2-image step, "
            f"{r['train_clip_s']:.3f} s per clip)"]


# ------------------------------------------------------------------------------------ report
def report(results: list, args) -> str:
    lines = [f"LIP vs torchvision Mask R-CNN | profile {args.profile} | {args.height}x{args.width} | batch "
             f"{args.batch} | amp {args.amp} | {results[0]['device']}",
             f"{'model':<10} {'params (M)':>10} {'eval fps':>9} {'train clip s':>13} {'eval peak MB':>13} "
             f"{'train peak MB':>14}"]
    for r in results:
        lines.append(f"{r['model']:<10} {r['params'] / 1e6:>10.2f} {r['eval_frames_per_s']:>9.2f} "
                     f"{r.get('train_clip_s', float('nan')):>13.2f} {r['eval_peak_mb']:>13.0f} "
                     f"{r.get('train_peak_mb', float('nan')):>14.0f}")
    lines.append(f"(train clip = {args.clip} frames forward + backward + SGD step, BPTT cut "
                 f"{results[0].get('bptt_cut') or 'none'}; eval over {args.frames} frames; "
                 f"{results[0]['detections_per_frame']:.0f} detections/frame)")
    for r in results:
        if "train_clip_s" in r:
            lines.append(f"{r['model']}: {args.batch / r['train_clip_s']:.2f} training clips/s")
        if "pretrain_step_s" in r:
            lines += schedule_estimate(r)
    by = {r["model"]: r for r in results}
    if {"lip", "maskrcnn"} <= set(by):
        a, b = by["lip"], by["maskrcnn"]
        eval_cost = b["eval_frames_per_s"] / a["eval_frames_per_s"] - 1
        lines.append(f"LIP / Mask R-CNN: params x{a['params'] / b['params']:.3f}, eval time x{1 + eval_cost:.3f}"
                     + (f", train clip time x{a['train_clip_s'] / b['train_clip_s']:.3f}" if "train_clip_s" in a else "")
                     + f", eval peak memory x{a['eval_peak_mb'] / b['eval_peak_mb']:.3f}")
        if args.device.startswith("cuda"):
            ok_fps = a["eval_frames_per_s"] >= 25
            ok_cost = eval_cost <= 0.20
            lines.append(f"target eval >= 25 frames/s: {a['eval_frames_per_s']:.1f} -> {'PASS' if ok_fps else 'FAIL'}")
            lines.append(f"target memory-module cost <= 20%: {100 * eval_cost:+.1f}% -> {'PASS' if ok_cost else 'FAIL'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse(list(sys.argv[1:] if argv is None else argv))
    h, w = DEFAULT_SIZE[args.profile]
    args.height, args.width = args.height or h, args.width or w
    if args.worker:
        print("RESULT " + json.dumps(measure(args.worker, args)))
        return 0
    results = []
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
    for name in args.models.split(","):
        cmd = [sys.executable, "-m", "lipnb.bench", "model", *passthrough, "--worker", name,
               "--height", str(args.height), "--width", str(args.width)]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            print(proc.stdout + proc.stderr, file=sys.stderr)
            return proc.returncode or 1
        results.append(json.loads(line[-1][len("RESULT "):]))
    print(report(results, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)
    return 0
