"""``python -m lipnb infer``: online fine-tuning + inference over a DAVIS split, then evaluation.

    python -m lipnb infer --davis ../shared/data/davis2016 --split val --frames-resolution 240p \\
        --checkpoint runs/davis-cpu/finetune/last.pt --out results/davis-cpu/online
    python -m lipnb infer --davis procedural --split val --random-weights smoke --out /tmp/online

``--davis procedural`` is the embedded procedural DAVIS-format set (generated on first use).
Writes ``OUT/<sequence>/<frame>.png`` at the annotations' resolution, ``OUT/timing.{json,csv}``
(per sequence: fine-tuning seconds, inference frames/s, ...), ``OUT/online_config.json`` and,
unless ``--no-evaluate``, ``OUT/evaluation.json`` (J&F as ``lipnb evaluate`` computes it).
``--oracle`` adds ``OUT/oracle-boxes/`` and ``OUT/oracle-proposals/``, each with its own
``evaluation.json`` (see :mod:`lipnb.lab.oracle`).

Before any work: every ``--set`` value is checked; ``--sequences`` names each sequence once;
``--out`` may not be, contain or lie inside the DAVIS root, its annotation and frame folders (each
resolved: a link to another disk counts) or the checkpoint; one run at a time holds ``--out`` (a
lock file ``OUT.lock`` beside it); a non-empty ``--out`` is replaced only with ``--overwrite``;
every first mask must have its frames' aspect ratio. The run writes to a staging folder swapped
in at the end; a failed or interrupted run (Ctrl-C: exit 130, SIGTERM: 143) leaves
``OUT.partial/`` (marked ``FAILED.txt``), and a run killed with ``kill -9`` a hidden
``.OUT.staging-PID`` that the next run turns into ``OUT.partial``; ``--resume`` continues it (same
model, data and settings, checked from its ``infer_run.json``), keeping the sequences it had
finished.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lipnb.cli.common import add_model_arguments, build_model, check_same_aspect, check_threads, fail, online_config

RUN_RECORD = "infer_run.json"  # what a partial run was started with, checked by --resume


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
    p.add_argument("--jobs", type=int, default=1,
                   help="sequences segmented at once on a CPU, each in its own process (not with --oracle)")
    p.add_argument("--oracle", action="store_true",
                   help="also segment with ground-truth boxes and with the best proposal per object "
                        "(DIR/oracle-boxes, DIR/oracle-proposals): where J&F is lost")
    p.add_argument("--resume", action="store_true",
                   help="continue the failed run left in OUT.partial (same model, data and settings)")
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


def davis_inputs(root: Path, resolutions) -> dict:
    """The folders of a DAVIS root an output must stay out of: the root and, resolved on their own
    (each may be a link to another disk), its annotation, frame and list folders."""
    root = Path(root)
    inputs = {"--davis": root}
    for part in ("Annotations", "JPEGImages", "ImageSets"):
        inputs[f"--davis {part}"] = root / part if (root / part).exists() else None
        for res in resolutions:
            if res and (root / part / res).exists():
                inputs[f"--davis {part}/{res}"] = root / part / res
    return inputs


def check_sequences(names: list, option: str = "--sequences") -> None:
    """Each sequence once: a name given twice would be run (and scored) twice."""
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        fail(f"{option}: {', '.join(twice)} given more than once; give each sequence once")


def run(args) -> int:
    from lipnb.online.inference import infer_davis
    from lipnb.lab.oracle import MODES, oracle_hook

    from lipnb.cli.safety import StagedFolder, check_out_apart, check_out_free, out_lock, recover_stagings

    check_threads(args)
    if args.jobs < 1 or (args.jobs > 1 and args.oracle):
        fail(f"--jobs {args.jobs}: must be >= 1, and 1 with --oracle (its hook runs in this process)")
    cfg = online_config(args)  # every --set value checked before any work
    dataset = open_dataset(args)
    names = [s.strip() for s in args.sequences.split(",") if s.strip()] if args.sequences else dataset.sequences
    check_sequences(names)
    unknown = [n for n in names if n not in dataset]
    if unknown:
        fail(f"sequences {unknown} are not in {dataset.split_file}")
    out = check_out_apart(args.out, {**davis_inputs(dataset.root, (dataset.resolution, dataset.frames_resolution)),
                                     "--checkpoint": args.checkpoint})
    for name in names:  # a first mask without objects, or of another aspect ratio, fails before any work
        seq = dataset[name]
        if not seq.first_mask().any():
            fail(f"{seq.annotation_paths[0]}: first mask has no object")
        check_same_aspect(f"first mask {seq.annotation_paths[0]}", seq.size, f"its frames ({seq.frame_paths[0]})",
                          seq.frame_size)
    record = {"davis": str(dataset.root.resolve()), "year": dataset.year, "split": dataset.split,
              "resolution": dataset.resolution, "frames_resolution": dataset.frames_resolution,
              "sequences": names, "oracle": args.oracle, "zero_hidden": args.zero_hidden,
              "checkpoint": str(Path(args.checkpoint).resolve()) if args.checkpoint else None,
              "random_weights": args.random_weights, "online_config": cfg.to_dict()}
    record = json.loads(json.dumps(record))  # as it reads back
    with out_lock(out):
        recover_stagings(out, "" if args.resume else "; --resume continues it")
        check_out_free(out, args.overwrite)
        resume_from = _resumable(out, record) if args.resume else None
        model = build_model(args)
        with StagedFolder(out, resume_from) as stage:
            (stage / RUN_RECORD).write_text(json.dumps(record, indent=1))
            (stage / "online_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
            hook = oracle_hook(dataset, names, stage, cfg.box_expand, cfg.mask_threshold) if args.oracle else None
            results = infer_davis(model, dataset, stage, cfg, names, progress=not args.no_progress,
                                  resume=resume_from is not None, on_sequence=hook, jobs=args.jobs)
            for r in results:
                print(f"[lipnb infer] {r.name}: {r.num_frames} frames, {r.num_objects} object(s), fine-tuning "
                      f"{r.finetune_iters} it / {r.finetune_s:.1f}s, inference {r.inference_fps:.2f} frames/s")
            if not args.no_evaluate:
                for folder in [stage] + ([stage / mode for mode in MODES] if args.oracle else []):
                    g = evaluate_results(dataset, folder, names, not args.no_progress)["global"]
                    label = "" if folder == stage else f"{folder.name}: "
                    print(f"[lipnb infer] {label}" + "  ".join(f"{k} {v:.3f}" for k, v in g.items()))
    print(f"[lipnb infer] results in {out}")
    return 0


def _resumable(out: Path, record: dict) -> Path:
    """``OUT.partial`` when it was started with ``record``'s settings, else a one-line error."""
    from lipnb.cli.safety import partial_path

    partial = partial_path(out.absolute())
    path = partial / RUN_RECORD
    if not path.is_file():
        fail(f"nothing to resume: {path} not found (a failed 'lipnb infer' leaves {partial}); run without --resume")
    earlier = json.loads(path.read_text())
    differ = [k for k in record if earlier.get(k) != record[k]]
    if differ:
        fail(f"cannot resume {partial}: it ran with other settings ({', '.join(differ)}: "
             f"{', '.join(repr(earlier.get(k)) for k in differ)}); use the same options, or run without --resume")
    return partial
