"""README tables generated from the committed results, so that a quoted number cannot go stale.

A README marks a table with two comments; everything between them is generated::

    <!-- table results/davis-cpu/table1.md paper=LIP columns=J&F-Mean,J-Mean,F-Mean -->
    | Method | Source | J&F-Mean | ...
    <!-- end table -->

``paper=LIP`` keeps, of the paper's rows, those whose method starts with ``LIP`` (``paper=all``
keeps all, default: none); every row this run measured (its baselines and earlier runs too) is
kept. ``columns=`` picks the metric columns (default: all). After ``results/<profile>/`` is
regenerated, refresh the READMEs with::

    python -m lipnb.cli.readme_tables            # rewrites README.md and results/README.md
    python -m lipnb.cli.readme_tables --check    # exit 1 if a README is out of date
"""

from __future__ import annotations

import re
from pathlib import Path

from lipnb.paths import REPO_ROOT

READMES = ("README.md", "results/README.md")
BLOCK = re.compile(r"(<!-- table (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- end table -->)", re.S)


def read_markdown_table(path: Path) -> tuple[list, list]:
    """The header and the rows (lists of cell strings) of the first Markdown table in ``path``."""
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break  # the first table ends here
    if len(lines) < 2:
        raise ValueError(f"{path}: no Markdown table")
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    return cells[0], cells[2:]


def render(spec: str, root: Path = REPO_ROOT) -> str:
    """The Markdown table a block's ``spec`` (``<path> [paper=...] [columns=...]``) stands for."""
    path, *options = spec.split()
    opts = dict(o.split("=", 1) for o in options)
    header, rows = read_markdown_table(root / path)
    paper = opts.get("paper", "")
    rows = [r for r in rows if r[1] != "paper" or paper == "all" or (paper and r[0].startswith(paper))]
    metrics = opts["columns"].split(",") if "columns" in opts else header[2:]
    unknown = [m for m in metrics if m not in header]
    if unknown:
        raise ValueError(f"{path}: no column {unknown[0]!r}; columns: {header}")
    keep = [0, 1] + [header.index(m) for m in metrics]
    out = ["| " + " | ".join(header[i] for i in keep) + " |", "|---|---|" + "---:|" * len(metrics)]
    out += ["| " + " | ".join(r[i] for i in keep) + " |" for r in rows]
    return "\n".join(out) + "\n"


def refresh(text: str, root: Path = REPO_ROOT) -> str:
    """``text`` with every table block regenerated."""
    return BLOCK.sub(lambda m: m.group(1) + render(m.group("spec"), root) + m.group(4), text)


def blocks(text: str) -> list:
    """``(spec, body)`` of every table block in ``text``."""
    return [(m.group("spec"), m.group("body")) for m in BLOCK.finditer(text)]


def outside_blocks(text: str) -> str:
    """``text`` without its generated tables (each block with the line end after it)."""
    return re.sub(BLOCK.pattern + r"\n?", "", text, flags=re.S)
