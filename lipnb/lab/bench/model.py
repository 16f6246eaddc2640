"""``python -m lipnb bench model``: LIP against torchvision's plain Mask R-CNN on the same backbone.

For each network: parameters, eval frames/s (frame by frame, the state carried), the time of one
training clip (forward + backward + SGD step over ``--clip`` frames, BPTT cut as configured) and
peak memory (CUDA: ``max_memory_allocated``; CPU: the process's peak RSS). Each network runs in its
own subprocess so the memory figures do not mix. The ratios LIP / Mask R-CNN are the cost of the
visual memory, path augmentation and shortcut.

Timings are the median of ``--repeats`` (at least 3) timed repeats after a warm-up, with their
spread (min-max) printed so that a run disturbed by another process shows: an eval repeat is one
pass over ``--frames`` frames (the state carried through the warm-up and all passes), a training
repeat one clip. The ratios are taken between medians. The training clip freezes the backbone
(trunk + FPN), as DAVIS fine-tuning does, so no backward pass runs through it; ``--train-backbone``
trains it as built (EfficientNet-Lite0: its stem and first stages stay frozen), as pre-training does.

    python -m lipnb bench model                                  # smoke profile on CPU
    python -m lipnb bench model --profile davis-cpu --repeats 5  # EfficientNet-Lite0 trunk, 240x427
    python -m lipnb bench model --device cuda --profile paper --amp bf16    # 854x480 on a GPU

GPU targets (paper profile, 480p): >= 25 frames/s in eval (bf16 autocast allowed) and the memory
module's cost <= 20% over plain Mask R-CNN; they are checked (on the medians) and printed when
``--device cuda``. Random weights: ``--score-thresh 0`` (default) sends ``detections_per_img``
boxes to the mask head.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace

from lipnb.lab.bench.parts import frame_parts, parts_table
from lipnb.profiles import lab_setting, model_config


# ------------------------------------------------------------------------------------ networks
def build(name, cfg):
    """``lip``: LIP(cfg). ``maskrcnn``: torchvision MaskRCNN with the same backbone, RPN and head
    shapes (class-specific predictors, torchvision's default), no memory / path augmentation / shortcut."""
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    from lipnb.model import LIP
    from lipnb.model.backbone import trunk_fpn
    from lipnb.model.heads import box_head, mask_head
    from lipnb.model.rpn import anchor_generator

    if name == "lip":
        return LIP(cfg)
    c = cfg.fpn_channels
    model = MaskRCNN(
        trunk_fpn(cfg), num_classes=None,
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
    cfg = model_config(args.profile, box_score_thresh=args.score_thresh,
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
              "backbone_params": sum(p.numel() for p in model.backbone.parameters()),
              "device": torch.cuda.get_device_name() if cuda else f"cpu x{args.threads} threads"}
    frames, targets = synthetic_clip(max(args.frames, args.clip) + args.warmup, args.batch, H, W,
                                     cfg.num_ids, device)

    # eval: frame by frame, the state carried (plain Mask R-CNN has none)
    model.eval()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    pass_s, out = eval_pass_seconds(model, name, frames, args, autocast, sync)
    record(result, "eval_pass_s", pass_s)
    record(result, "eval_frames_per_s", [args.frames * args.batch / s for s in pass_s])
    result["eval_peak_mb"] = peak_mb()
    result["detections_per_frame"] = sum(len(o["boxes"]) for o in out) / len(out)
    if name == "lip":  # where a frame's time goes, part by part (hooks: timed apart from the passes above)
        result["eval_parts_s"] = frame_parts(model, frames[: args.warmup + args.frames], args.warmup, autocast, sync)

    if not args.no_train:
        model.train()
        as_built = [p.requires_grad for p in model.backbone.parameters()]
        if not args.train_backbone:
            model.backbone.requires_grad_(False)  # as DAVIS fine-tuning: no backward through trunk + FPN
        result["backbone_trained"] = args.train_backbone
        result["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        opt = sgd(model)
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

        record(result, "train_clip_s", step_seconds(clip_losses, opt, autocast, sync, args.repeats))
        result["train_peak_mb"] = peak_mb()
        if args.estimate and name == "lip":  # one pre-training micro-batch: 2 images, hidden state at zero
            for p, trainable in zip(model.backbone.parameters(), as_built):
                p.requires_grad_(trainable)  # pre-training trains the backbone as built
            images, tgts = [frames[0][0], frames[1][0]], [targets[0][0], targets[1][0]]
            model.hold_hidden_at_zero()
            record(result, "pretrain_step_s",
                   step_seconds(lambda: model(images, tgts)[0], sgd(model), autocast, sync, args.repeats))
            model.hold_hidden_at_zero(False)
    return result


def sgd(model):
    """SGD over the parameters that require grad (frozen ones get no update and no momentum)."""
    import torch

    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)


def record(result: dict, key: str, values: list) -> None:
    """``result[key]``: the median of ``values``; ``key_range``: [min, max]; ``key_repeats``: all of them."""
    result[key] = statistics.median(values)
    result[f"{key}_range"] = [min(values), max(values)]
    result[f"{key}_repeats"] = list(values)


def eval_pass_seconds(model, name, frames, args, autocast, sync) -> tuple[list, list]:
    """Seconds of each of ``args.repeats`` passes over the same ``args.frames`` frames, after
    ``args.warmup`` untimed frames; LIP's state is carried through the warm-up and all passes (one
    stream). Returns the times and the last frame's detections."""
    import torch

    state, out = None, None

    def step(images):
        nonlocal state
        with autocast():
            if name == "lip":
                detections, state = model(images, state=state)
                return detections
            return model(images)

    times = []
    with torch.inference_mode():
        for images in frames[: args.warmup]:
            out = step(images)
        for _ in range(args.repeats):
            sync()
            t0 = time.perf_counter()
            for images in frames[args.warmup: args.warmup + args.frames]:
                out = step(images)
            sync()
            times.append(time.perf_counter() - t0)
    return times, out


def step_seconds(losses_fn, opt, autocast, sync, reps: int) -> list[float]:
    """Seconds of each of ``reps`` training steps (forward, backward, SGD step) after one warm-up step."""
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
    return times[1:]


def schedule_estimate(r: dict) -> list[str]:
    """The paper's schedule (§5.1) from measured step times (medians): 270K pre-training steps of 16
    images (8 micro-batches of 2) and 12K fine-tuning clips, on 1 GPU and split over 8 (ideal scaling)."""
    pre = 270_000 * 8 * r["pretrain_step_s"]
    fine = 12_000 * r["train_clip_s"]
    return [f"paper schedule estimate (median steps x counts, no data loading): pre-training 270K x 16 images "
            f"= {pre / 3600:.1f} h on 1 device, {pre / 8 / 3600:.1f} h on 8; fine-tuning 12K clips = "
            f"{fine / 3600:.1f} h on 1 device ({r['pretrain_step_s']:.3f} s per 2-image step, "
            f"{r['train_clip_s']:.3f} s per clip)"]


# ------------------------------------------------------------------------------------ report
TIMED = {"eval_frames_per_s": "eval fps", "train_clip_s": "train clip s", "pretrain_step_s": "pre-training step s"}


def span(r: dict, key: str) -> str:
    """``min-max`` of a recorded measurement, or ``-`` when it was not measured."""
    if f"{key}_range" not in r:
        return "-"
    lo, hi = r[f"{key}_range"]
    return f"{lo:.2f}-{hi:.2f}"


def disturbed(results: list, limit: float = 0.10) -> list[str]:
    """The timings whose spread (max - min) exceeds ``limit`` of their median, e.g. ``lip eval fps 23%``."""
    out = []
    for r in results:
        for key, label in TIMED.items():
            if f"{key}_range" in r:
                lo, hi = r[f"{key}_range"]
                if hi - lo > limit * r[key]:
                    out.append(f"{r['model']} {label} {100 * (hi - lo) / r[key]:.0f}%")
    return out


def backbone_line(results: list, args) -> str:
    """Whether the training clip trained the backbone, with each network's trainable parameters."""
    counts = ", ".join(f"{r['model']} {r['trainable_params'] / 1e6:.2f} M" for r in results)
    if args.train_backbone:
        return f"backbone (trunk + FPN) trained as built (--train-backbone); trainable params: {counts}"
    return (f"backbone (trunk + FPN) frozen, as in DAVIS fine-tuning: no backward pass through it "
            f"(--train-backbone trains it); trainable params: {counts}")


def report(results: list, args) -> str:
    lines = [f"LIP vs torchvision Mask R-CNN | profile {args.profile} | {args.height}x{args.width} | batch "
             f"{args.batch} | amp {args.amp} | {results[0]['device']}",
             f"timings: median of {args.repeats} timed repeats after a warm-up, spread min-max beside each",
             f"{'model':<10} {'params (M)':>10} {'eval fps':>9} {'(min-max)':>13} {'train clip s':>13} "
             f"{'(min-max)':>13} {'eval peak MB':>13} {'train peak MB':>14}"]
    for r in results:
        lines.append(f"{r['model']:<10} {r['params'] / 1e6:>10.2f} {r['eval_frames_per_s']:>9.2f} "
                     f"{span(r, 'eval_frames_per_s'):>13} {r.get('train_clip_s', float('nan')):>13.2f} "
                     f"{span(r, 'train_clip_s'):>13} {r['eval_peak_mb']:>13.0f} "
                     f"{r.get('train_peak_mb', float('nan')):>14.0f}")
    lines.append(f"(eval repeat = a pass over {args.frames} frames, {args.warmup} warm-up frames first, the state "
                 f"carried throughout; {results[0]['detections_per_frame']:.0f} detections/frame)")
    if not args.no_train:
        lines.append(f"(train repeat = one {args.clip}-frame clip, forward + backward + SGD step, after one "
                     f"warm-up clip; BPTT cut {results[0].get('bptt_cut') or 'none'})")
        lines.append(backbone_line(results, args))
    for r in results:
        if "eval_parts_s" in r:
            lines.append(f"{r['model']} eval, where a frame's time goes (mean over {args.frames} frames, "
                         "forward hooks):\n" + parts_table(r["eval_parts_s"]))
    for r in results:
        if "train_clip_s" in r:
            lines.append(f"{r['model']}: {args.batch / r['train_clip_s']:.2f} training clips/s")
        if "pretrain_step_s" in r:
            lines.append(f"{r['model']}: pre-training step (2 images, backbone as built) {r['pretrain_step_s']:.3f} s "
                         f"({span(r, 'pretrain_step_s')})")
            lines += schedule_estimate(r)
    noisy = disturbed(results)
    if noisy:
        lines.append(f"spread over 10% of the median ({', '.join(noisy)}): the machine was probably busy; "
                     f"compare medians, or rerun with more --repeats")
    by = {r["model"]: r for r in results}
    if {"lip", "maskrcnn"} <= set(by):
        a, b = by["lip"], by["maskrcnn"]
        eval_cost = b["eval_frames_per_s"] / a["eval_frames_per_s"] - 1
        lines.append(f"LIP / Mask R-CNN (medians): params x{a['params'] / b['params']:.3f}, "
                     f"eval time x{1 + eval_cost:.3f}"
                     + (f", train clip time x{a['train_clip_s'] / b['train_clip_s']:.3f}" if "train_clip_s" in a else "")
                     + f", eval peak memory x{a['eval_peak_mb'] / b['eval_peak_mb']:.3f}")
        if args.device.startswith("cuda"):
            ok_fps = a["eval_frames_per_s"] >= 25
            ok_cost = eval_cost <= 0.20
            lines.append(f"target eval >= 25 frames/s: {a['eval_frames_per_s']:.1f} -> {'PASS' if ok_fps else 'FAIL'}")
            lines.append(f"target memory-module cost <= 20%: {100 * eval_cost:+.1f}% -> {'PASS' if ok_cost else 'FAIL'}")
    return "\n".join(lines)


def run(args) -> int:
    """Both networks, each measured in its own process (:func:`work`), then the report."""
    h, w = lab_setting(args.profile, "bench_size")
    args.height, args.width = args.height or h, args.width or w
    results = []
    for name in args.models.split(","):
        settings = json.dumps({**vars(args), "worker": name})
        cmd = [sys.executable, "-c", "import json, sys; from lipnb.lab.bench.model import work; "
                                     "work(json.loads(sys.argv[1]))", settings]
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
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "handler"}, "results": results}, f,
                      indent=2)
    return 0


def work(settings: dict) -> None:
    """One network's measurements in this process (``run`` starts one process per network)."""
    args = SimpleNamespace(**settings)
    print("RESULT " + json.dumps(measure(args.worker, args)))
