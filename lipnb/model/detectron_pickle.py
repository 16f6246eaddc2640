"""Detectron (Caffe2) weight pickles -> a ``.pt`` of plain tensors, without running pickled code.

Detectron's ImageNet models (``R-101-GN.pkl``, the paper's initialisation) are Python 2 pickles
of ``{"blobs": {name: numpy array}}`` (some hold the name -> array dict directly), with Caffe2
names: ``conv1_w``, ``conv1_gn_s``, ``res2_0_branch2a_w``, ``res2_0_branch1_gn_b``, ...,
``pred_w``. ``pickle.load`` would call whatever a file names; :func:`read_detectron_pickle`
allows only the few numpy constructors an array needs and refuses anything else.
:func:`convert_detectron_pickle` turns the blobs into torchvision ResNet names once (conv1 from
BGR to RGB input; see :func:`lipnb.model.backbone.convert_resnet_state_dict`) and writes a file
that ``torch.load(weights_only=True)`` reads::

    convert_detectron_pickle("R-101-GN.pkl", "R-101-GN.pt", expect=ResNetBody(101))
    torch.load("R-101-GN.pt", weights_only=True)  # {"conv1.weight": tensor, "layer1.0.conv1.weight": ...}
"""

from __future__ import annotations

import codecs
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import torch


class RefusedPickle(pickle.UnpicklingError):
    """The pickle names something other than a numpy array part; nothing of it was run."""


def _numpy_parts() -> dict:
    """``(module, name)`` -> object for everything a pickled numpy array may name (numpy 1 and 2
    spell the core module differently; Python 3 pickles of bytes at protocol 2 use ``_codecs``)."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    parts = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): codecs.encode}
    for core in ("numpy.core", "numpy._core"):
        parts[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        parts[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        parts[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol 5
    return parts


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` (latin1, for Python 2 files) whose globals are numpy array parts only."""

    def __init__(self, file, path):
        super().__init__(file, encoding="latin1")
        self.path = path
        self.allowed = _numpy_parts()

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise RefusedPickle(f"{self.path}: refused to load {module}.{name}: a weights pickle may hold only "
                                f"numpy arrays; is this a Detectron weights file?") from None


def read_detectron_pickle(path: str | Path) -> dict:
    """The blobs of a Detectron/Caffe2 weights pickle: ``{name: numpy array}`` (non-array entries
    such as an iteration counter are dropped). Raises :class:`RefusedPickle` for a file naming
    anything but numpy array parts, ``ValueError`` for one that is not a dict of arrays."""
    with open(path, "rb") as f:
        data = _NumpyOnlyUnpickler(f, path).load()
    if isinstance(data, dict) and isinstance(data.get("blobs"), dict):
        data = data["blobs"]
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of numpy arrays (optionally under 'blobs'), got {type(data).__name__}")
    # writable copies, so that torch.as_tensor can share them without a warning
    return {str(k): v if v.flags.writeable else v.copy() for k, v in data.items() if isinstance(v, np.ndarray)}


def _check_fits(state: dict, expect: torch.nn.Module, src) -> None:
    """One-line ``ValueError`` unless ``state`` has exactly ``expect``'s tensors, in its shapes."""
    want = {k: tuple(v.shape) for k, v in expect.state_dict().items()}
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    misshaped = [f"{k} {tuple(state[k].shape)} vs {want[k]}" for k in want
                 if k in state and tuple(state[k].shape) != want[k]]
    problems = [f"{label} {len(keys)} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
                for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if keys]
    if problems:
        raise ValueError(f"{src}: does not fit {type(expect).__name__}: {'; '.join(problems)}")


def convert_detectron_pickle(src: str | Path, dest: str | Path, expect: torch.nn.Module | None = None) -> Path:
    """Read the Detectron pickle ``src`` (safely) and write its ResNet weights to ``dest``.

    ``dest`` holds ``{torchvision ResNet name: tensor}`` (``conv1.weight`` RGB, ``bn1.weight``,
    ``layer1.0.conv1.weight``, ``layer1.0.downsample.1.bias``, ...; classifier and momentum blobs
    dropped), for ``torch.load(weights_only=True)``. With ``expect`` (e.g. ``ResNetBody(101)``) the
    tensors must match its state dict exactly (names and shapes) or nothing is written. Written to
    a temporary file beside ``dest`` and renamed, so ``dest`` is complete or absent. Returns ``dest``.
    """
    from lipnb.model.backbone import convert_resnet_state_dict

    state = convert_resnet_state_dict(read_detectron_pickle(src))
    if not state:
        raise ValueError(f"{src}: no ResNet weights (conv1_w, res2_0_branch2a_w, ...) found")
    if expect is not None:
        _check_fits(state, expect, src)
    state = {k: v.detach().clone().contiguous() for k, v in state.items()}  # own storage, not numpy's
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
