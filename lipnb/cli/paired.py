"""``python -m lipnb.cli.paired LABEL=A.json:B.json [...] [--out CSV]``: per-sequence J&F of A minus
B on DAVIS 2016 val, beside each sequence's motion and object size, and the rank correlation of the
difference with each (:mod:`lipnb.lab.paired`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lipnb.cli.paired", description=__doc__.split("\n\n")[0])
    p.add_argument("pairs", nargs="+", help="LABEL=A.json:B.json, each an evaluation.json (A minus B)")
    p.add_argument("--out", help="CSV of the table (sequence, traits, one column per pair)")
    args = p.parse_args(argv)
    from lipnb import paths
    from lipnb.data.davis import DavisDataset
    from lipnb.lab.paired import TRAITS, paired_differences, sequence_traits, spearman

    columns = {}
    for pair in args.pairs:
        label, _, files = pair.rpartition("=")
        a, sep, b = files.partition(":")
        if not (label and sep):
            p.error(f"{pair!r}: write LABEL=A.json:B.json")
        for f in (a, b):
            if not Path(f).is_file():
                p.error(f"{f}: no such evaluation file (an evaluation.json of lipnb infer / evaluate)")
        columns[label] = paired_differences(json.loads(Path(a).read_text()), json.loads(Path(b).read_text()))
    data = DavisDataset(paths.davis2016_root(), "2016", "val", "480p")
    names = sorted(set.intersection(*(set(c) for c in columns.values())))
    table = pd.DataFrame([{"sequence": s, **sequence_traits(data[s]), **{k: c[s] for k, c in columns.items()}}
                          for s in names]).sort_values("motion")
    print(table.round(3).to_string(index=False))
    for k, c in columns.items():
        d = np.array([c[s] for s in names])
        print(f"{k}: A - B {d.mean():+.2f} J&F (std over sequences {d.std(ddof=1):.2f}), A better on "
              f"{int((d > 0).sum())} of {len(d)} sequences")
    for trait in TRAITS:
        half = table.sort_values(trait)
        low, high = half.iloc[: len(half) // 2], half.iloc[len(half) // 2:]
        for k in columns:
            print(f"{k}: Spearman with {trait} {spearman(table[trait], table[k]):+.2f}; mean {np.mean(low[k]):+.2f} "
                  f"(lower {trait} half) vs {np.mean(high[k]):+.2f} (upper)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False, float_format="%.4f")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
