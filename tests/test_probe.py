"""The feature-only baseline of Table 1: frozen ImageNet features + a first-frame linear probe."""

import numpy as np
from PIL import Image

from lipnb.data.davis import DavisDataset
from lipnb.data.procedural import ProceduralSpec, ensure_procedural
from lipnb.lab import probe as P


def test_probe_learns_the_first_mask_and_follows_it(tmp_path):
    davis = DavisDataset(ensure_procedural(ProceduralSpec(seed=0)).davis, "2017", "val")
    seq = davis[davis.sequences[0]]
    trunk = P.imagenet_trunk()
    feats = P.stride4_features(trunk, seq.read_frame(0))
    h, w = seq.frame_size
    assert feats.shape == (496, -(-h // 4), -(-w // 4))
    timings = P.probe_davis(davis, tmp_path, [seq.name], P.ProbeConfig(steps=60), progress=False)
    assert timings[0]["frames"] == seq.num_frames
    first, predicted = seq.first_mask(), np.asarray(Image.open(seq.result_path(tmp_path, 0)))
    assert set(np.unique(predicted)) <= set(np.unique(first))  # only the first mask's ids

    def iou(i):
        truth, mask = seq.read_mask(i) > 0, np.asarray(Image.open(seq.result_path(tmp_path, i))) > 0
        return (mask & truth).sum() / (mask | truth).sum()

    assert iou(0) > 0.7 and iou(1) > 0.4  # fits frame 0 and carries over to the next frame (measured 0.75, 0.58)


def test_probe_cli_refuses_a_folder_in_use(tmp_path, capsys):
    from lipnb.cli import main

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.png").write_bytes(b"x")
    assert main(["probe", "--davis", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out") and "not an empty folder" in err
    assert (tmp_path / "out" / "keep.png").read_bytes() == b"x"
