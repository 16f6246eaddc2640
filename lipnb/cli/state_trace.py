"""``python -m lipnb.cli.state_trace CHECKPOINT SEQUENCE ... --out TRACE.csv``: how fast the memory
fills on DAVIS 2016 val sequences (240p frames), frame by frame and level by level
(:func:`lipnb.lab.memory_stats.state_trace`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lipnb.cli.state_trace", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a fine-tuned model (work/finetune/last.pt of a reproduction)")
    p.add_argument("sequences", nargs="+", help="DAVIS 2016 val sequence names, e.g. blackswan")
    p.add_argument("--out", required=True, help="CSV: sequence, frame, level, norm_ratio, cosine")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    from lipnb import paths
    from lipnb.data.davis import DavisDataset
    from lipnb.lab.memory_stats import state_trace
    from lipnb.online import load_model

    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint)
    data = DavisDataset(paths.davis2016_root(), "2016", "val", "480p", "240p")
    unknown = [s for s in args.sequences if s not in data.sequences]
    if unknown:
        p.error(f"not DAVIS 2016 val sequences: {unknown}; choose from {list(data.sequences)}")
    table = pd.DataFrame([{"sequence": s, **row} for s in args.sequences for row in state_trace(model, data[s])])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False, float_format="%.4f")
    wide = table.pivot_table(index="frame", columns="level", values="norm_ratio").round(2)
    print("||H_t|| carried / zero state, mean over the sequences:")
    print(wide.loc[[t for t in (0, 1, 2, 3, 5, 8, 11, 15, 20, 30, 40) if t in wide.index]].to_string())
    print(f"[state_trace] {len(table)} rows -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
