"""``python -m lipnb reproduce --profile smoke``: the embedded example, end to end."""

import csv

from lipnb.cli import main as lipnb_main
from lipnb.data.davis import DavisDataset


def test_reproduce_smoke(tmp_path, capsys):
    assert lipnb_main(["reproduce", "--profile", "smoke", "--results-dir", str(tmp_path)]) == 0
    out = tmp_path / "smoke"
    printed = capsys.readouterr().out
    assert "Global results for val" in printed and "crossing-discs_2" in printed
    dataset = DavisDataset(out / "example", year="2017", split="val")
    assert len(dataset) == 3 and dataset["three-shapes"].object_ids == [1, 2, 3]
    assert (out / "predictions" / "copy-first" / "box-and-disc" / "00011.png").is_file()
    with open(out / "global_results-val.csv") as f:
        header, values = list(csv.reader(f))
    assert header[0] == "J&F-Mean" and 0 < float(values[0]) < 1
    with open(out / "per-sequence_results-val.csv") as f:
        assert len(list(csv.reader(f))) == 1 + 7  # 2 + 2 + 3 objects

    # deterministic: a second run rewrites identical files
    first = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert lipnb_main(["reproduce", "--profile", "smoke", "--results-dir", str(tmp_path)]) == 0
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == first
