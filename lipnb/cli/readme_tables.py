"""``python -m lipnb.cli.readme_tables [--check]``: the READMEs' tables regenerated from the committed
results (:mod:`lipnb.repro.readme_tables`)."""

from __future__ import annotations

import argparse
import sys

from lipnb.paths import REPO_ROOT
from lipnb.repro.readme_tables import READMES, refresh


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="regenerate the READMEs' tables from results/<profile>/table*.md")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a README is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name in READMES:
        path = REPO_ROOT / name
        text = path.read_text()
        new = refresh(text)
        if new != text:
            stale.append(name)
            if not args.check:
                path.write_text(new)
                print(f"updated {name}")
    if args.check and stale:
        print(f"error: out of date: {', '.join(stale)}; run python -m lipnb.cli.readme_tables", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
