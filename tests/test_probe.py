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


# ----------------------------------------------------------------------------- spatial convention


def test_trunk_puts_a_stride_s_feature_on_pixel_i_times_s():
    """The premise of the probe's sampling: with symmetric padding the impulse response of the
    trunk (made linear, with equal positive kernels) is mirror-symmetric about feature ``i`` when
    the impulse sits on pixel ``i * s``, at every level. TensorFlow's "SAME" padding (one more
    pixel at the bottom / right) would break the symmetry."""
    import torch
    from torch import nn

    from lipnb.model.efficientnet_lite import EfficientNetLite0

    model = EfficientNetLite0().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0 / m.weight[0].numel())
            elif m.__class__.__name__ == "FrozenBatchNorm2d":
                m.weight.fill_(1), m.bias.fill_(0), m.running_mean.fill_(0), m.running_var.fill_(1 - 1e-3)
            elif isinstance(m, nn.ReLU6):
                m.forward = lambda x: x  # linear
        x = torch.zeros(1, 3, 129, 129)
        x[..., 64, 64] = 1.0  # pixel 64 = feature 64 / s at every stride s
        for r, s in zip(model.trunk(x), (4, 8, 16, 32)):
            r = r[0].sum(0).double()
            c = 64 // s
            assert r.shape == (-(-129 // s),) * 2
            assert tuple(np.unravel_index(int(r.argmax()), r.shape)) == (c, c)
            assert torch.allclose(r, r.flip(0), rtol=1e-5, atol=1e-12)  # symmetric about feature c
            assert torch.allclose(r, r.flip(1), rtol=1e-5, atol=1e-12)


def _peak(img):
    return np.unravel_index(int(img.argmax()), img.shape)


def test_sampling_puts_each_feature_where_the_trunk_does():
    """A stride-s map with one peak at feature (i, j) -> sampled at the 480p pixels of a 240p frame:
    the peak lands on 480p pixel 2 * s * (i, j) (+0.5: the centre of 240p pixel s * i is 480p pixel
    2 s i + 0.5), within 1 px at every stride. ``F.interpolate(align_corners=False)`` puts it
    (s - 1) / 2 frame pixels further, s - 1 at 480p: 3 px at stride 4, 31 px at stride 32."""
    import torch

    frame, size = (240, 427), (480, 854)
    for s in (4, 8, 16, 32):
        h, w = -(-frame[0] // s), -(-frame[1] // s)
        i, j = h // 2, w // 3
        maps = torch.zeros(1, 1, h, w)
        maps[..., i, j] = 1.0
        up = P.to_pixels(maps, s, frame, size)[0, 0]
        assert up.shape == size
        y, x = _peak(up.numpy())
        assert abs(y - (2 * s * i + 0.5)) <= 1 and abs(x - (2 * s * j + 0.5)) <= 1, (s, (y, x), (2 * s * i, 2 * s * j))
        # the same map at the frame's own resolution: peak on pixel s * (i, j) exactly
        assert _peak(P.to_pixels(maps, s, frame, frame)[0, 0].numpy()) == (s * i, s * j)


def test_stride4_features_sample_each_level_where_it_sits():
    """stride4_features' own resampling: a fake trunk whose C3..C5 each have one peak at feature
    (i, j) of stride s -> the stride-4 grid peaks at index s (i, j) / 4 (pixel s i, not s i + (s - 1) / 2)."""
    import torch
    from torch import nn

    frame = np.zeros((240, 427, 3), np.uint8)
    peaks = {4: (30, 50), 8: (15, 25), 16: (7, 13), 32: (3, 6)}

    class FakeTrunk(nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(1))

        def trunk(self, x):
            maps = []
            for s, c in zip((4, 8, 16, 32), (24, 40, 112, 320)):
                m = torch.zeros(1, c, -(-x.shape[-2] // s), -(-x.shape[-1] // s))
                m[:, :, peaks[s][0], peaks[s][1]] = 1.0
                maps.append(m)
            return maps

    feats = P.stride4_features(FakeTrunk(), frame)
    assert feats.shape == (496, 60, 107)
    starts = {4: 0, 8: 24, 16: 64, 32: 176}
    for s, (i, j) in peaks.items():
        level = feats[starts[s]].numpy()
        assert _peak(level) == (s * i // 4, s * j // 4), s
        assert abs(level[s * i // 4, s * j // 4] - 1.0) < 1e-4  # on a stride-4 node: no blur


def test_probe_scales_features_without_centring():
    """Features are divided by frame 0's per-channel std, not centred: zero features give the bias."""
    import torch

    torch.manual_seed(0)
    first = torch.rand(8, 5, 6) * 3 + 2  # positive, far from zero mean
    probe = P.LinearProbe(first, 3)
    assert not hasattr(probe, "mean")
    assert torch.allclose(probe.std.flatten(), first.std((1, 2)) + 1e-6)
    with torch.no_grad():
        assert torch.allclose(probe(torch.zeros_like(first))[0], probe.classify.bias[:, None, None].expand(3, 5, 6))
        expected = torch.nn.functional.conv2d((first / probe.std)[None], probe.classify.weight, probe.classify.bias)
        assert torch.allclose(probe(first), expected, atol=1e-6)


def test_probe_on_two_processes_writes_the_same_masks(tmp_path):
    """``jobs=2``: one process per sequence (lipnb.online.pool), results in the sequences' order."""
    davis = DavisDataset(ensure_procedural(ProceduralSpec(seed=0)).davis, "2017", "val")
    names = list(davis.sequences)[:2]
    cfg = P.ProbeConfig(steps=5)
    one = P.probe_davis(davis, tmp_path / "one", names, cfg, progress=False)
    two = P.probe_davis(davis, tmp_path / "two", names, cfg, progress=False, jobs=2)
    assert [t["name"] for t in two] == [t["name"] for t in one] == names
    pngs = sorted((tmp_path / "one").glob("*/*.png"))
    assert pngs and all(np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(
        tmp_path / "two" / p.relative_to(tmp_path / "one")))) for p in pngs)
