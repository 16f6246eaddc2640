"""``python -m lipnb.cli.memory_stats LABEL=RUN_FOLDER ... --out FIG.png``: did the memory learn?
(:mod:`lipnb.lab.memory_stats`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lipnb.lab.memory_stats import compare_runs, plot_memory_statistics
from lipnb.report.figures import save


def main(argv=None) -> int:
    """The memory statistics of several runs side by side (a figure, and the numbers as JSON beside it)."""
    p = argparse.ArgumentParser(prog="python -m lipnb.cli.memory_stats", description=main.__doc__)
    p.add_argument("runs", nargs="+", help="label=folder of a reproduction (its work/ must be there)")
    p.add_argument("--out", required=True, help="figure path (.png); the numbers go to the same name .json")
    args = p.parse_args(argv)
    runs = dict(r.split("=", 1) for r in args.runs)
    result = compare_runs(runs)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save(plot_memory_statistics(result["models"]), out)
    out.with_suffix(".json").write_text(json.dumps(
        {"sequences": result["sequences"], "runs": runs,
         "models": {k: {"gates_and_features": s, "weights_moved_by_finetuning": m,
                        "gates": result["gates"][k]} for k, (s, m) in result["models"].items()}},
        indent=1))
    for label, (stats, moved) in result["models"].items():
        print(label)
        for s, m, g in zip(stats, moved, result["gates"][label]):
            print(f"  {s['level']}: z {s['z_mean']:.3f} ± {s['z_std']:.3f}  r {s['r_mean']:.3f} ± {s['r_std']:.3f}  "
                  f"|N_t|/|N_0| {s['steady_over_first']:.2f}  W_h moved {m['W_h']:.4f}  W_hz {m['W_hz']:.4f}  "
                  f"GN_z gamma {g['z_gamma']:.3f} |beta| {g['z_abs_beta']:.3f}  z object - background "
                  f"{g['z_object_minus_background_pretrained']:+.3f} -> {g['z_object_minus_background_finetuned']:+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
