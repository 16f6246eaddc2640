"""The committed results cannot drift from the code, nor the READMEs from the committed results.

``test_fresh_smoke_run_equals_the_committed_tables`` runs the whole ``smoke`` reproduction (the
five notebooks, about 160 s on 2 cores) into a temporary folder and compares its Tables 1-3 with
``results/smoke/table{1,2,3}.csv`` cell by cell, as printed (one decimal): the run is
deterministic on CPU, so no tolerance is allowed. It is marked ``reproduction`` and runs in
``make test``; ``pytest -m "not reproduction"`` leaves it out while iterating.

When a change of the code moves the numbers on purpose, regenerate and commit them::

    python -m lipnb reproduce --profile smoke      # rewrites results/smoke/
    python -m lipnb.cli.readme_tables           # the READMEs' tables from the committed ones
"""

import csv
import re

import pytest

from lipnb.paths import REPO_ROOT
from lipnb.repro import readme_tables
from lipnb.repro.pipeline import run_pipeline

TABLES = ("table1", "table2", "table3")
REGENERATE = "regenerate with `python -m lipnb reproduce --profile smoke` and commit results/smoke/"
QUOTED_PROFILES = ("smoke", "davis-cpu", "davis-cpu-scratch")  # the runs whose J&F numbers the README may quote


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _differences(fresh, committed) -> list:
    """Human-readable cell differences between two CSV tables (lists of rows)."""
    if len(fresh) != len(committed):
        return [f"{len(fresh)} rows, committed {len(committed)}"]
    out = []
    header = committed[0]
    for f_row, c_row in zip(fresh, committed):
        if f_row != c_row:
            cells = [f"{h}: {c} -> {f}" for h, f, c in zip(header, f_row, c_row) if f != c]
            out.append(f"{c_row[0]}: " + ", ".join(cells or [f"{c_row} -> {f_row}"]))
    return out


@pytest.mark.reproduction
def test_fresh_smoke_run_equals_the_committed_tables(tmp_path):
    out = run_pipeline("smoke", tmp_path, log=lambda *a: None)
    problems = []
    for name in TABLES:
        committed = REPO_ROOT / "results" / "smoke" / f"{name}.csv"
        for line in _differences(_rows(out / f"{name}.csv"), _rows(committed)):
            problems.append(f"{name}: {line}")
    assert not problems, "a fresh smoke run differs from results/smoke/ (" + REGENERATE + "):\n" + "\n".join(problems)


@pytest.mark.parametrize("readme", readme_tables.READMES)
def test_readme_tables_are_the_committed_tables(readme):
    text = (REPO_ROOT / readme).read_text()
    assert readme_tables.refresh(text) == text, (
        f"{readme}: a table differs from the committed results; run python -m lipnb.cli.readme_tables")


def test_the_readme_shows_the_current_davis_cpu_table():
    specs = [spec for spec, _ in readme_tables.blocks((REPO_ROOT / "README.md").read_text())]
    assert any(spec.startswith("results/davis-cpu/table1.md") for spec in specs)


def _committed_jf() -> set:
    """Every J&F-Mean value (as printed) of the committed tables of :data:`QUOTED_PROFILES`."""
    values = set()
    for profile in QUOTED_PROFILES:
        for path in (REPO_ROOT / "results" / profile).glob("table*.csv"):
            rows = _rows(path)
            if "J&F-Mean" in rows[0]:
                column = rows[0].index("J&F-Mean")
                values |= {row[column] for row in rows[1:]}
    return values


def test_every_jf_number_in_the_readme_prose_is_a_committed_one():
    """Outside the generated tables, a line of README.md that says J&F may only quote numbers
    (one decimal, as the tables print them; section numbers such as §5.2 aside) that are J&F values
    of a committed table."""
    known = _committed_jf()
    prose = readme_tables.outside_blocks((REPO_ROOT / "README.md").read_text())
    quoted = [(line, n) for line in prose.splitlines() if "J&F" in line
              for n in re.findall(r"(?<![\d.§])\d{1,3}\.\d(?![\d.])", line)]
    stale = [f"{n} in: {line.strip()}" for line, n in quoted if n not in known]
    assert not stale, "README.md quotes J&F numbers no committed table holds:\n" + "\n".join(stale)


def test_readme_table_rendering(tmp_path):
    table = tmp_path / "t.md"
    table.write_text("## T\n\n| Method | Source | J&F-Mean | J-Mean |\n|---|---|---:|---:|\n"
                     "| LIP (paper) | paper | 78.5 | 78.0 |\n| X (paper) | paper | 70.0 | 70.0 |\n"
                     "| LIP (this run) | this run | 22.6 | 22.2 |\n\n## Second\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    text = "intro\n<!-- table t.md paper=LIP columns=J&F-Mean -->\nold\n<!-- end table -->\nafter 22.6\n"
    new = readme_tables.refresh(text, tmp_path)
    assert new == ("intro\n<!-- table t.md paper=LIP columns=J&F-Mean -->\n| Method | Source | J&F-Mean |\n"
                   "|---|---|---:|\n| LIP (paper) | paper | 78.5 |\n| LIP (this run) | this run | 22.6 |\n"
                   "<!-- end table -->\nafter 22.6\n")
    assert readme_tables.outside_blocks(new) == "intro\nafter 22.6\n"
    with pytest.raises(ValueError, match="no column 'F-Mean'"):
        readme_tables.render("t.md columns=F-Mean", tmp_path)
