"""The paper's ImageNet initialisation: Detectron weight pickles read without running pickled
code, converted once to a ``weights_only`` file, loaded strictly; the ``paper`` profile asks for
it, and ``python data/download.py r101-gn`` fetches it (here from ``file://`` URLs)."""

import os
import pickle
import struct
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lipnb.cli import download as D
from lipnb.model import LIPConfig
from lipnb.model.backbone import GroupNorm, ResNetBody, load_pretrained_trunk
from lipnb.model.detectron_pickle import RefusedPickle, convert_detectron_pickle, read_detectron_pickle
from lipnb.train import TrainConfig
from lipnb.train.build import build_model
from lipnb.profiles import model_config, train_config

TINY = dict(depth=18, width=0.25)  # channels 16..128, 2 blocks per stage


def tiny_body(seed=None):
    body = ResNetBody(TINY["depth"], TINY["width"], GroupNorm(32))
    if seed is not None:  # every tensor random, GN scales and biases included
        g = torch.Generator().manual_seed(seed)
        body.load_state_dict({k: torch.randn(v.shape, generator=g) for k, v in body.state_dict().items()})
    return body


def caffe2_name(key: str) -> str:
    """torchvision ResNet name -> Detectron's (written here independently of the code under test)."""
    kind = {"weight": "gn_s", "bias": "gn_b"}
    parts = key.split(".")
    if parts[0] == "conv1":
        return "conv1_w"
    if parts[0] == "bn1":
        return f"conv1_{kind[parts[1]]}"
    stage, block = int(parts[0][len("layer"):]) + 1, parts[1]
    prefix = f"res{stage}_{block}_"
    if parts[2] == "downsample":
        return prefix + ("branch1_w" if parts[3] == "0" else f"branch1_{kind[parts[4]]}")
    branch = "branch2" + "abc"[int(parts[2][-1]) - 1]
    return prefix + (f"{branch}_w" if parts[2].startswith("conv") else f"{branch}_{kind[parts[3]]}")


def detectron_pickle(path, body, protocol=2):
    """``body``'s weights as Detectron stores them: Caffe2 names, conv1 on BGR input, float32 numpy
    arrays under "blobs", plus blobs a converter must drop (classifier, momentum)."""
    blobs = {}
    for key, value in body.state_dict().items():
        value = value.numpy().astype(np.float32)
        blobs[caffe2_name(key)] = value[:, ::-1].copy() if key == "conv1.weight" else value
    blobs["conv1_w_momentum"] = np.zeros_like(blobs["conv1_w"])
    blobs["res2_0_branch2a_w_momentum"] = np.zeros_like(blobs["res2_0_branch2a_w"])
    blobs["pred_w"] = np.ones((10, 8 * body.out_channels[-1]), np.float32)
    blobs["pred_b"] = np.zeros(10, np.float32)
    with open(path, "wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=protocol)
    return path


def test_convert_and_load_strictly(tmp_path):
    body = tiny_body(seed=0)
    src = detectron_pickle(tmp_path / "R-18-tiny.pkl", body)
    out = convert_detectron_pickle(src, tmp_path / "out" / "R-18-tiny.pt", expect=tiny_body())
    assert out == tmp_path / "out" / "R-18-tiny.pt" and [p.name for p in out.parent.iterdir()] == [out.name]
    state = torch.load(out, weights_only=True)
    assert set(state) == set(body.state_dict())  # pred_*, *_momentum dropped
    fresh = tiny_body()
    fresh.load_state_dict(state, strict=True)
    for key, value in body.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0)
    bgr = read_detectron_pickle(src)["conv1_w"]  # channel 0 of the pickle is blue
    torch.testing.assert_close(state["conv1.weight"][:, 2], torch.from_numpy(bgr[:, 0]))
    torch.testing.assert_close(state["conv1.weight"][:, 0], torch.from_numpy(bgr[:, 2]))


def test_convert_refuses_a_file_of_another_network(tmp_path):
    src = detectron_pickle(tmp_path / "R-18-tiny.pkl", tiny_body(seed=0))
    with pytest.raises(ValueError, match="does not fit ResNetBody") as e:
        convert_detectron_pickle(src, tmp_path / "R-34.pt", expect=ResNetBody(34, 0.25))
    assert "missing" in str(e.value) and "\n" not in str(e.value) and str(src) in str(e.value)
    assert not list(tmp_path.glob("*.pt*"))  # nothing written, no temporary left


def _py2_pickle(name: str, array: np.ndarray) -> bytes:
    """``{"blobs": {name: array}}`` as Python 2's cPickle wrote it (protocol 2): 8-bit ``str`` for
    names and the array bytes (BINSTRING), ``numpy.core.multiarray._reconstruct``."""
    def s(b: bytes) -> bytes:  # SHORT_BINSTRING or BINSTRING
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<I", len(b)) + b

    dtype = (b"cnumpy\ndtype\n" + s(b"f4") + b"K\x00K\x01\x87R"  # dtype("f4", 0, 1), then its state:
             + b"(K\x03" + s(b"<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")  # (3, "<", None*3, -1, -1, 0)
    shape = b"(" + b"".join(b"J" + struct.pack("<i", n) for n in array.shape) + b"t"
    arr = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") + b"\x87R"
           + b"(K\x01" + shape + dtype + b"\x89" + s(array.astype("<f4").tobytes()) + b"tb")
    return b"\x80\x02}" + s(b"blobs") + b"}" + s(name.encode()) + arr + b"ss."


def test_reads_a_python2_pickle(tmp_path):
    w = np.random.default_rng(0).standard_normal((4, 3, 7, 7)).astype(np.float32)  # bytes >= 0x80 need latin1
    path = tmp_path / "py2.pkl"
    path.write_bytes(_py2_pickle("conv1_w", w))
    blobs = read_detectron_pickle(path)
    assert list(blobs) == ["conv1_w"]
    np.testing.assert_array_equal(blobs["conv1_w"], w)
    state = torch.load(convert_detectron_pickle(path, tmp_path / "py2.pt"), weights_only=True)
    torch.testing.assert_close(state["conv1.weight"], torch.from_numpy(w[:, ::-1].copy()))


class _RunsCode:
    def __init__(self, call, args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


@pytest.mark.parametrize("call", ["os.system", "subprocess.call"])
def test_refuses_pickled_code(tmp_path, call):
    marker = tmp_path / "ran"
    evil = (_RunsCode(os.system, (f"touch {marker}",)) if call == "os.system"
            else _RunsCode(subprocess.call, (["touch", str(marker)],)))
    src = tmp_path / "evil.pkl"
    with open(src, "wb") as f:
        pickle.dump({"blobs": {"conv1_w": np.zeros((2, 3, 7, 7), np.float32), "x": evil}}, f, protocol=2)
    with pytest.raises(RefusedPickle, match="refused to load") as e:
        convert_detectron_pickle(src, tmp_path / "evil.pt")
    assert str(src) in str(e.value) and ("system" in str(e.value) or "call" in str(e.value))
    assert not marker.exists() and not (tmp_path / "evil.pt").exists()


# ---- the paper profile


def test_paper_profile_asks_for_imagenet():
    assert model_config("paper").backbone_checkpoint == "imagenet"


def test_paper_profile_without_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPNB_IMAGENET_R101", str(tmp_path / "absent.pt"))
    with pytest.raises(FileNotFoundError) as e:
        build_model(train_config("paper", "pretrain"), 10)
    message = str(e.value)
    assert "\n" not in message and str(tmp_path / "absent.pt") in message
    assert "python data/download.py r101-gn" in message and "--model-set backbone_checkpoint=null" in message


def test_paper_profile_from_random_weights_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPNB_IMAGENET_R101", str(tmp_path / "absent.pt"))
    cfg = train_config("paper", "pretrain", model_overrides={"backbone_checkpoint": None})
    model = build_model(cfg, 10)
    assert model.cfg.backbone_checkpoint is None and model.cfg.depth == 101


def _imagenet_cfg(**kw):
    return SimpleNamespace(**{"backbone": "resnet", "backbone_checkpoint": "imagenet", "depth": 101, "width": 1.0, **kw})


def test_imagenet_file_is_loaded_strictly(tmp_path, monkeypatch):
    """The converted file, wherever LIPNB_IMAGENET_R101 points, goes into the trunk strictly (a
    tiny stand-in trunk here: the depth check reads cfg, the load reads the body)."""
    body = tiny_body(seed=1)
    converted = convert_detectron_pickle(detectron_pickle(tmp_path / "w.pkl", body), tmp_path / "w.pt")
    monkeypatch.setenv("LIPNB_IMAGENET_R101", str(converted))
    trunk = SimpleNamespace(body=tiny_body())
    assert load_pretrained_trunk(trunk, _imagenet_cfg()) == str(converted)
    torch.testing.assert_close(trunk.body.state_dict()["layer4.1.bn2.bias"], body.state_dict()["layer4.1.bn2.bias"])
    state = torch.load(converted, weights_only=True)
    del state["layer3.0.downsample.0.weight"]
    torch.save(state, converted)
    with pytest.raises(RuntimeError, match="layer3.0.downsample.0.weight"):
        load_pretrained_trunk(SimpleNamespace(body=tiny_body()), _imagenet_cfg())


@pytest.mark.parametrize("depth, width", [(50, 1.0), (101, 0.5)])
def test_no_imagenet_weights_for_other_resnets(depth, width):
    with pytest.raises(ValueError, match="no ImageNet weights are known for ResNet") as e:
        load_pretrained_trunk(SimpleNamespace(body=None), _imagenet_cfg(depth=depth, width=width))
    assert "\n" not in str(e.value) and "backbone_checkpoint=null" in str(e.value)


# ---- python data/download.py r101-gn


@pytest.fixture
def tiny_r101_gn(monkeypatch):
    """The ``r101-gn`` target, checked against the tiny ResNet instead of ResNet-101."""
    spec = D.PRETRAINED["r101-gn"]
    monkeypatch.setitem(D.PRETRAINED, "r101-gn", D.Weights(spec.archive, spec.converted, **TINY))
    return spec


def test_download_target_end_to_end(tmp_path, tiny_r101_gn, capsys):
    assert tiny_r101_gn.archive.url == "https://dl.fbaipublicfiles.com/detectron/ImageNetPretrained/47592356/R-101-GN.pkl"
    body = tiny_body(seed=2)
    src = detectron_pickle(tmp_path / "mirror.pkl", body)
    data = tmp_path / "data"
    assert D.main(["r101-gn", "--data-dir", str(data), "--url", f"R-101-GN.pkl={src.as_uri()}"]) == 0
    out = data / "pretrained" / "R-101-GN.pt"
    assert capsys.readouterr().out.strip() == str(out)
    assert not (data / "archives").exists()  # the .pkl is dropped without --keep-archives
    fresh = tiny_body()
    fresh.load_state_dict(torch.load(out, weights_only=True), strict=True)
    torch.testing.assert_close(fresh.state_dict()["conv1.weight"], body.state_dict()["conv1.weight"])
    # an existing converted file is kept; --keep-archives keeps the pickle
    assert D.fetch_pretrained("r101-gn", data, urls={"R-101-GN.pkl": "file:///nonexistent.pkl"}, progress=False) == out
    kept = tmp_path / "kept"
    D.fetch_pretrained("r101-gn", kept, urls={"R-101-GN.pkl": src.as_uri()}, keep_archives=True, progress=False)
    assert (kept / "archives" / "R-101-GN.pkl").read_bytes() == src.read_bytes()
    assert (kept / "pretrained" / "R-101-GN.pt").is_file()


def test_download_target_checks_resnet101(tmp_path):
    """The real target: a pickle that is not ResNet-101 is refused and nothing is installed."""
    src = detectron_pickle(tmp_path / "mirror.pkl", tiny_body(seed=3))
    data = tmp_path / "data"
    with pytest.raises(ValueError, match="does not fit ResNetBody"):
        D.fetch_pretrained("r101-gn", data, urls={"R-101-GN.pkl": src.as_uri()}, progress=False)
    assert not (data / "pretrained" / "R-101-GN.pt").exists()
