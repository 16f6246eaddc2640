"""Options shared by ``lipnb segment`` and ``lipnb infer``: the model and the online settings."""

from __future__ import annotations

import argparse

from lipnb.profiles import PROFILES, model_config


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", metavar="CKPT",
                        help="a model written by 'lipnb train' (last.pt); default: the released davis-cpu weights "
                             "(results/davis-cpu/weights.pt)")
    source.add_argument("--random-weights", metavar="PROFILE", choices=PROFILES,
                        help="an untrained model of this profile (checks the pipeline; results are noise)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any OnlineConfig field, e.g. max_iters=100 or stop_thresholds='{\"id\": 0.1}'")
    p.add_argument("--zero-hidden", action="store_true",
                   help="hold the Conv-GRU's input hidden state at zero on every frame (Table 3's static model)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0, help="random weights and sampling during fine-tuning")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--overwrite", action="store_true", help="replace the earlier run in a non-empty --out")


def online_config(args):
    """The OnlineConfig of ``--set`` (and ``--seed``): every value checked for type and range first,
    one ``error:`` line per bad value (see :mod:`lipnb.cli.values`). With the released model (no
    ``--checkpoint``), ``--set`` changes the online settings its reproduction chose for it;
    otherwise the paper's defaults."""
    from lipnb.cli.values import ONLINE, field_specs, parse_pairs, problem
    from lipnb.errors import raise_all
    from lipnb.online.config import OnlineConfig

    specs = field_specs(OnlineConfig, ONLINE)
    overrides, problems = parse_pairs(args.set, "--set", specs, "OnlineConfig")
    problems.insert(0, problem(f"--seed {args.seed}", args.seed, specs["seed"]))
    raise_all(problems)
    base = {}
    if not args.checkpoint and not args.random_weights:
        from lipnb.repro.release import RELEASED_PROFILE, recipe_name, released_recipe

        base = released_recipe(args.zero_hidden)
        if base:
            import sys

            print(f"online settings: those its reproduction chose on training videos (results/{RELEASED_PROFILE}/"
                  f"{recipe_name(args.zero_hidden)}); --set changes them", file=sys.stderr)
    overrides = {**base, "seed": args.seed, **overrides}
    try:
        return OnlineConfig(**overrides)
    except (TypeError, ValueError) as e:
        fail(f"--set: {e}")


def build_model(args):
    """The offline model from ``--checkpoint`` or ``--random-weights``; exits with a clear message."""
    import torch

    from lipnb.online.checkpoint import CheckpointError, load_model, random_model

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.random_weights:
        model = random_model(model_config(args.random_weights), seed=args.seed, device=args.device)
    else:
        checkpoint = args.checkpoint or released()
        try:
            model = load_model(checkpoint, device=args.device)
        except CheckpointError as e:
            fail(str(e))
    if args.zero_hidden:
        model.hold_hidden_at_zero()
    return model


def released():
    """The released weights (:mod:`lipnb.repro.release`), checked against their manifest, named on stderr."""
    import sys

    from lipnb.repro.release import released_weights

    path, info = released_weights()
    print(f"model: {path} (the released {info['profile']} model of commit {info['commit']}, {info['dtype']}, "
          f"{info['bytes'] / 1e6:.1f} MB, sha256 {info['sha256'][:12]}...; --checkpoint picks another)",
          file=sys.stderr)
    return path


def check_same_aspect(mask_label: str, mask_hw, frames_label: str, frames_hw, tolerance: float = 0.02) -> None:
    """A first mask is resized to the frames' size: refuse one of another aspect ratio (it would be
    stretched), naming both sizes."""
    (h0, w0), (h, w) = mask_hw[:2], frames_hw[:2]
    if abs(h0 * w - h * w0) > tolerance * max(h0 * w, h * w0):
        fail(f"{mask_label} is {w0}x{h0} but {frames_label} are {w}x{h}: another aspect ratio, the mask would be "
             f"stretched; give a mask of the frames' shape ({w}x{h} or a multiple)")


def check_threads(args) -> None:
    """``--threads`` must be >= 1 (one message per bad value)."""
    if args.threads is not None and args.threads < 1:
        fail(f"--threads {args.threads}: must be >= 1")


def fail(message: str):
    """Raise :class:`~lipnb.cli.errors.UserError`: ``lipnb`` prints ``error: <message>``, exit code 2."""
    from lipnb.errors import fail as raise_user_error

    raise_user_error(message)
