"""``python -m lipnb probe``: Table 1's feature-only baseline on a DAVIS split (:mod:`lipnb.lab.probe`).

    python -m lipnb probe --davis ../shared/data/davis2016 --year 2016 --frames-resolution 240p --out runs/probe

``--out`` may not be, contain or lie inside the DAVIS root or its annotation and frame folders
(paths resolved, links followed); ``--sequences`` names each sequence once.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from lipnb.data.davis import DavisDataset
from lipnb.errors import fail
from lipnb.lab.probe import ProbeConfig, probe_davis


def add_arguments(p) -> None:
    p.add_argument("--davis", required=True, help="DAVIS root")
    p.add_argument("--year", default="2016", choices=["2016", "2017"])
    p.add_argument("--split", default="val")
    p.add_argument("--resolution", default="480p", help="annotations folder (results are written at its size)")
    p.add_argument("--frames-resolution", default=None)
    p.add_argument("--sequences", default=None, help="comma-separated names (default: the whole split)")
    p.add_argument("--out", required=True, help="a new or empty folder for the masks")
    for key, value in asdict(ProbeConfig()).items():
        p.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    p.add_argument("--threads", type=int, default=0)


def run(args) -> int:
    from lipnb.cli.infer import check_sequences, davis_inputs
    from lipnb.cli.safety import check_out_apart

    names = [s.strip() for s in args.sequences.split(",") if s.strip()] if args.sequences else None
    check_sequences(names or [])
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        fail(f"--out {out} exists and is not an empty folder; choose a new --out")
    check_out_apart(args.out, davis_inputs(Path(args.davis), (args.resolution, args.frames_resolution)))
    if args.threads:
        torch.set_num_threads(args.threads)
    davis = DavisDataset(args.davis, args.year, args.split, args.resolution, args.frames_resolution)
    cfg = ProbeConfig(**{k: getattr(args, k) for k in asdict(ProbeConfig())})
    timings = probe_davis(davis, out, names, cfg)
    (out / "probe.json").write_text(json.dumps({"config": asdict(cfg), "sequences": timings}, indent=1))
    print(f"{len(timings)} sequences in {sum(t['total_s'] for t in timings):.0f} s -> {out}; "
          f"score with: python -m lipnb evaluate --davis {args.davis} --year {args.year} --results {out}")
    return 0
