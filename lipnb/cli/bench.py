"""``python -m lipnb bench model|evaluate``: the speed benches (:mod:`lipnb.lab.bench`).

    python -m lipnb bench model                                  # LIP vs plain Mask R-CNN, smoke profile on CPU
    python -m lipnb bench model --profile davis-cpu --repeats 5  # EfficientNet-Lite0 trunk, 240x427
    python -m lipnb bench model --device cuda --profile paper --amp bf16    # 854x480 on a GPU
    python -m lipnb bench evaluate                               # the J&F evaluator on DAVIS 2016 val
"""

from __future__ import annotations

import argparse

from lipnb import paths
from lipnb.errors import fail
from lipnb.profiles import PROFILES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="bench", required=True)
    p = sub.add_parser("model", help="LIP against torchvision's plain Mask R-CNN on the same backbone")
    p.add_argument("--profile", default="smoke", choices=PROFILES)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--batch", type=int, default=1, help="clips per batch")
    p.add_argument("--frames", type=int, default=8, help="eval frames per timed repeat")
    p.add_argument("--clip", type=int, default=8, help="frames per training clip")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed repeats (eval: passes over --frames frames; training: clips); the median is reported")
    p.add_argument("--warmup", type=int, default=2, help="untimed eval frames first (training: one untimed clip)")
    p.add_argument("--train-backbone", action="store_true",
                   help="train the backbone (trunk + FPN) in the training clip; default: frozen, as DAVIS fine-tuning")
    p.add_argument("--threads", type=int, default=2, help="CPU intra-op threads")
    p.add_argument("--score-thresh", type=float, default=0.0)
    p.add_argument("--bptt-cut", type=int, default=-1,
                   help="detach the state every N frames in the training clip (0: full BPTT; default: the profile's 4)")
    p.add_argument("--estimate", action="store_true",
                   help="also time a pre-training step (2 images, zero state) and estimate the paper's schedule")
    p.add_argument("--no-train", action="store_true")
    p.add_argument("--models", default="lip,maskrcnn")
    p.add_argument("--json", default=None, help="write the results here")
    parser = sub.add_parser("evaluate", help="speed of the J&F evaluator, I/O included")
    parser.add_argument("--davis", default=str(paths.davis2016_root()), help="DAVIS root (default: %(default)s)")
    parser.add_argument("--year", default="2016", choices=["2016", "2017"])
    parser.add_argument("--split", default="val")
    parser.add_argument("--resolution", default="480p")
    parser.add_argument("--repeat", type=int, default=5, help="timed evaluations (default: %(default)s)")
    parser.add_argument("--processes", type=int, default=None, help="worker processes (default: one per core)")


def run(args: argparse.Namespace) -> int:
    if args.bench == "model":
        from lipnb.lab.bench import model

        if args.repeats < 3:
            fail("--repeats must be at least 3 (the median of fewer does not discount a disturbed repeat)")
        return model.run(args)
    from lipnb.lab.bench import evaluate

    return evaluate.run(args)
