"""``python -m lipnb.bench <name> [args]``: each benchmark module has ``main(argv) -> int``."""

import importlib
import sys

BENCHMARKS = {
    "evaluate": "lipnb.bench.evaluate",  # J&F evaluator: frames/s, wall time
    "model": "lipnb.bench.model",  # LIP vs plain Mask R-CNN: params, frames/s, clip time, memory
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in BENCHMARKS:
        print(f"usage: python -m lipnb.bench {{{','.join(BENCHMARKS)}}} [options]", file=sys.stderr)
        return 2
    return int(importlib.import_module(BENCHMARKS[argv[0]]).main(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
