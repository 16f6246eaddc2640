"""``python -m lipnb infer``: online fine-tuning + inference over a DAVIS split, then evaluation.

    python -m lipnb infer --davis ../shared/data/davis2016 --split val --frames-resolution 240p \\
        --checkpoint runs/davis-cpu/finetune/last.pt --out results/davis-cpu/online
    python -m lipnb infer --davis procedural --split val --random-weights smoke --out /tmp/online

``--davis procedural`` is the embedded procedural DAVIS-format set (generated on first use).
Writes ``OUT/<sequence>/<frame>.png`` at the annotations' resolution, ``OUT/timing.{json,csv}``
(per sequence: fine-tuning seconds, inference frames/s, ...), ``OUT/online_config.json`` and,
unless ``--no-evaluate``, ``OUT/evaluation.json`` (J&F as ``lipnb evaluate`` computes it).
``--oracle`` adds ``OUT/oracle-boxes/`` and ``OUT/oracle-proposals/``, each with its own
``evaluation.json`` (see :mod:`lipnb.online.oracle`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lipnb.online.cli_common import add_model_arguments, build_model, fail, online_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--davis", required=True, metavar="ROOT", help="DAVIS root, or 'procedural'")
    p.add_argument("--split", default="val")
    p.add_argument("--year", choices=["auto", "2016", "2017"], default="auto",
                   help="mask format / sequence list (auto: 2016 when ImageSets/2016/<split>.txt exists "
                        "and ImageSets/2017/<split>.txt does not)")
    p.add_argument("--resolution", default="480p", help="annotations (and results) resolution folder")
    p.add_argument("--frames-resolution", help="frames folder, e.g. 240p (default: --resolution)")
    p.add_argument("--sequences", help="comma-separated subset of the split")
    p.add_argument("--out", required=True, metavar="DIR", help="results folder")
    p.add_argument("--no-evaluate", action="store_true", help="only write the masks")
    p.add_argument("--oracle", action="store_true",
                   help="also segment with ground-truth boxes and with the best proposal per object "
                        "(DIR/oracle-boxes, DIR/oracle-proposals): where J&F is lost")
    add_model_arguments(p)


def open_dataset(args):
    from lipnb.data.davis import DavisDataset, DavisFormatError

    root, year = args.davis, args.year
    if root == "procedural":
        from lipnb.data.procedural import ensure_procedural

        root, year = ensure_procedural(progress=not args.no_progress).davis, "2017"
    root = Path(root)
    if year == "auto":
        has = lambda y: (root / "ImageSets" / y / f"{args.split}.txt").is_file()  # noqa: E731
        year = "2016" if has("2016") and not has("2017") else "2017"
    try:
        return DavisDataset(root, year, args.split, args.resolution, args.frames_resolution)
    except DavisFormatError as e:
        fail(str(e))


def evaluate_results(dataset, out: Path, names: list, progress: bool) -> dict:
    from lipnb.metrics import evaluate

    ev = evaluate(dataset, out, sequences=names, processes=1, progress=progress)
    report = {"global": ev.global_results(),
              "per_object": [{"name": n, "J-Mean": j, "F-Mean": f} for n, j, f in ev.per_sequence_results()]}
    (out / "evaluation.json").write_text(json.dumps(report, indent=1))
    return report


def run(args) -> int:
    from lipnb.online.inference import infer_davis
    from lipnb.online.oracle import MODES

    dataset = open_dataset(args)
    names = [s.strip() for s in args.sequences.split(",") if s.strip()] if args.sequences else dataset.sequences
    unknown = [n for n in names if n not in dataset]
    if unknown:
        fail(f"sequences {unknown} are not in {dataset.split_file}")
    for name in names:  # a first mask without objects fails before any work
        seq = dataset[name]
        if not seq.first_mask().any():
            fail(f"{seq.annotation_paths[0]}: first mask has no object")
    cfg = online_config(args)
    model = build_model(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "online_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    results = infer_davis(model, dataset, out, cfg, names, progress=not args.no_progress, oracle=args.oracle)
    for r in results:
        print(f"[lipnb infer] {r.name}: {r.num_frames} frames, {r.num_objects} object(s), fine-tuning "
              f"{r.finetune_iters} it / {r.finetune_s:.1f}s, inference {r.inference_fps:.2f} frames/s")
    if not args.no_evaluate:
        for folder in [out] + ([out / mode for mode in MODES] if args.oracle else []):
            g = evaluate_results(dataset, folder, names, not args.no_progress)["global"]
            label = "" if folder == out else f"{folder.name}: "
            print(f"[lipnb infer] {label}" + "  ".join(f"{k} {v:.3f}" for k, v in g.items()))
    return 0
