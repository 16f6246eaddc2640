"""``--set KEY=VALUE``: each value checked for type and range before any work, one line per bad value.

The type of a field is that of its default in the config (:class:`~lipnb.online.OnlineConfig`,
:class:`~lipnb.train.TrainConfig`, :class:`~lipnb.model.LIPConfig`); the range, where one has a
meaning, is in :data:`ONLINE` and :data:`TRAIN` below. A spec is a tuple:

- ``("int", m)``: an integer (not a bool) >= m;
- ``("real", low, high, open_low)``: a finite number (an integer is one) >= low (> low when
  ``open_low``) and <= high (None: no bound);
- ``("bool",)``: true or false; ``("str", choices)``: a string (one of ``choices`` if given);
- ``("ints", m, nonempty)``: a list of integers >= m; ``("reals",)``: a list of finite numbers;
  ``("strs",)``: a list of strings; ``("weights", low)``: a dict of finite numbers >= low;
- ``("optional", spec)``: null or ``spec``; ``("any",)``: not checked.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers

UNIT = ("real", 0, 1, False)  # a probability, IoU, score or fraction: [0, 1]
POSITIVE = ("real", 0, None, True)  # > 0
NONNEGATIVE = ("real", 0, None, False)  # >= 0

ONLINE = {  # OnlineConfig field -> spec
    "max_iters": ("int", 0), "lr": POSITIVE, "momentum": UNIT, "weight_decay": NONNEGATIVE,
    "warmup_iters": ("int", 0), "warmup_factor": ("real", 0, 1, True), "milestones": ("ints", 0, False),
    "gamma": POSITIVE, "loss_weights": ("weights", 0), "stop_thresholds": ("weights", 0), "sticky_stop": ("bool",),
    "focal_gamma": NONNEGATIVE, "box_expand": NONNEGATIVE, "seed": ("int", 0), "warm_first_frame": ("int", 0),
    "memory_alpha": UNIT, "min_score": UNIT, "top_k": ("int", 1), "continuity_score": UNIT, "continuity_iou": UNIT,
    "mask_threshold": UNIT, "refresh": ("bool",), "refresh_iters": ("int", 0), "refresh_score": UNIT,
    "refresh_lr": POSITIVE, "refresh_stop": NONNEGATIVE, "refresh_fg_iou": UNIT,
}

TRAIN = {  # TrainConfig field -> spec
    "stage": ("str", ("pretrain", "finetune")), "profile_name": ("str", None), "model": ("any",),
    "data": ("str", None), "procedural_seed": ("int", 0), "coco_split": ("str", None),
    "davis_year": ("str", ("2016", "2017")), "davis_split": ("str", None), "davis_resolution": ("str", None),
    "scales": ("ints", 1, True), "max_size": ("int", 1), "flip": ("bool",), "clip_length": ("int", 1),
    "clip_stride": ("int", 1), "reverse_clips": ("bool",), "box_expand": NONNEGATIVE, "num_workers": ("int", 0),
    "static_memory": ("optional", ("bool",)), "freeze": ("strs",), "init": ("optional", ("str", None)),
    "rois_per_image": ("int", 1), "roi_positive_fraction": UNIT, "bptt_cut": ("optional", ("int", 1)),
    "warmup_frames": ("int", 0), "checkpoint_activations": ("bool",),
    "memory_recurrent_init": ("optional", ("str", ("zero",))), "memory_gate_shift": ("optional", ("real", None, None, False)),
    "batch_size": ("int", 1),
    "micro_batch": ("int", 1), "lr": POSITIVE, "momentum": UNIT, "weight_decay": NONNEGATIVE, "max_iters": ("int", 1),
    "milestones": ("ints", 0, False), "gamma": POSITIVE, "warmup_iters": ("int", 0),
    "warmup_factor": ("real", 0, 1, True), "grad_clip": ("optional", POSITIVE), "seed": ("int", 0),
    "device": ("str", None), "amp": ("str", ("none", "bf16", "fp16")), "log_every": ("int", 1),
    "ckpt_every": ("int", 1),
}


def spec_from_default(default) -> tuple:
    """The spec of a field without a table entry: its default's type (integers >= 0)."""
    if isinstance(default, bool):
        return ("bool",)
    if isinstance(default, numbers.Integral):
        return ("int", 0)
    if isinstance(default, numbers.Real):
        return ("real", None, None, False)
    if isinstance(default, str):
        return ("str", None)
    if isinstance(default, (tuple, list)):  # numbers stay numbers; an empty default says nothing
        return ("reals",) if default and all(_number(v) for v in default) else ("any",)
    return ("any",)


def field_specs(config_class, table: dict | None = None) -> dict:
    """{field: spec} of a dataclass: ``table``'s entry, else from the field's default."""
    specs = {}
    for f in dataclasses.fields(config_class):
        if table and f.name in table:
            specs[f.name] = table[f.name]
        elif f.default is not dataclasses.MISSING:
            specs[f.name] = spec_from_default(f.default) if f.default is not None else ("any",)
        else:
            specs[f.name] = ("any",)
    return specs


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _range_text(low, high, open_low) -> str:
    if low is not None and high is not None:
        return f" in {'(' if open_low else '['}{low}, {high}]"
    if low is not None:
        return f" {'>' if open_low else '>='} {low}"
    return ""


def problem(shown: str, value, spec: tuple) -> str | None:
    """``None`` if ``value`` fits ``spec``, else ``"<shown>: must be ..."``."""
    kind = spec[0]
    if kind == "any":
        return None
    if kind == "optional":
        return None if value is None else (None if problem(shown, value, spec[1]) is None
                                           else problem(shown, value, spec[1]) + " (or null)")
    if kind == "int":
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < spec[1]:
            return f"{shown}: must be an integer >= {spec[1]}"
        return None
    if kind == "real":
        _, low, high, open_low = spec
        bad = (not _number(value) or not math.isfinite(value)
               or (low is not None and (value <= low if open_low else value < low))
               or (high is not None and value > high))
        return f"{shown}: must be a finite number{_range_text(low, high, open_low)}" if bad else None
    if kind == "bool":
        return None if isinstance(value, bool) else f"{shown}: must be true or false"
    if kind == "str":
        choices = spec[1]
        if not isinstance(value, str) or (choices and value not in choices):
            return f"{shown}: must be " + (f"one of {list(choices)}" if choices else "a string")
        return None
    if kind == "ints":
        _, low, nonempty = spec
        good = (isinstance(value, (list, tuple)) and (value or not nonempty)
                and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low for v in value))
        example = f"[{max(low, 1) * 100}]"
        return None if good else f"{shown}: must be a {'non-empty ' * bool(nonempty)}list of integers >= {low}, e.g. {example}"
    if kind == "reals":
        good = isinstance(value, (list, tuple)) and all(_number(v) and math.isfinite(v) for v in value)
        return None if good else f"{shown}: must be a list of finite numbers, e.g. [0.5, 1.0]"
    if kind == "strs":
        good = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        return None if good else f"{shown}: must be a list of strings, e.g. [\"backbone\"]"
    if kind == "weights":
        good = isinstance(value, dict) and all(_number(v) and math.isfinite(v) and v >= spec[1] for v in value.values())
        return None if good else f"{shown}: must be a dict of finite numbers >= {spec[1]}, e.g. {{\"id\": 0.1}}"
    raise ValueError(f"unknown spec {spec!r}")


def _wants_text(spec: tuple) -> bool:
    return spec[0] == "str" or (spec[0] == "optional" and spec[1][0] == "str")


def parse_pairs(pairs: list[str], option: str, specs: dict, what: str) -> tuple[dict, list[str]]:
    """``["key=value", ...]`` -> ({field: value}, problems): values parsed as JSON where they parse
    (a string field keeps the text as typed), each checked against ``specs``; an unknown key or a
    pair without ``=`` is a problem too (``what`` names the config in its message)."""
    values, problems = {}, []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in specs:
            problems.append(f"{option} {pair!r}: expected KEY=VALUE with KEY a field of {what}: "
                            f"{', '.join(sorted(specs))}")
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        null_ok = value is None and specs[key][0] == "optional"
        if _wants_text(specs[key]) and not isinstance(value, str) and not null_ok:
            value = raw  # a text field keeps the text as typed: davis_year=2016 is "2016"
        values[key] = value
        problems.append(problem(f"{option} {key}={raw}", value, specs[key]))
    return values, [p for p in problems if p]
