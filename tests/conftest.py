"""Shared fixtures. Tests that need ``../shared/data`` skip when it is absent, unless
``LIPNB_REQUIRE_SHARED=1`` (set by ``.ci/run``), where they fail instead."""

import os

import pytest

from lipnb import paths


def _require(path):
    if not path.exists():
        if os.environ.get("LIPNB_REQUIRE_SHARED") == "1":
            pytest.fail(f"shared data missing: {path}")
        pytest.skip(f"shared data not found: {path}")
    return path


@pytest.fixture(scope="session")
def davis2016_root():
    """``../shared/data/davis2016``: 240p frames, 480p masks for the 16 val sequences."""
    return _require(paths.davis2016_root())


@pytest.fixture(scope="session")
def coco_root():
    """``../shared/data/coco_tiny``: 80 train + 80 val COCO 2017 images with annotations."""
    return _require(paths.coco_root())


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread per test: the models in tests are tiny, and on a shared 2-core
    machine two spinning threads run many times slower than one."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
