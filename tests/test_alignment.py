"""One spatial convention (issue 22): feature ``i`` of a stride-``s`` map sits on image pixel
``s * i``, where the trunk's symmetric padding puts it; a stage that moves features between
grids must keep them within a pixel of it (:mod:`lipnb.lab.alignment` measures each stage).

The authors' resampling (``cfg.resampling="authors"``: the FPN's nearest-neighbour top-down
upsampling, the path augmentation's bilinear 1/2) is measured off by one fine stride
(4/8/16 px at P2/P3/P4) and half a fine stride (2/4/8/16 px at N3..N6); a test keeps that
measure honest by asserting it.
"""

import pytest

from lipnb.lab import alignment
from lipnb.model import LIP
from lipnb.profiles import model_config


@pytest.fixture(scope="module", params=["smoke", "davis-cpu"])
def model(request):
    return LIP(model_config(request.param, backbone_checkpoint=None))


def test_the_trunk_pads_every_strided_layer_symmetrically(model):
    assert alignment.unpadded_strided_layers(model.backbone.body) == []


def test_the_padding_check_can_fail():
    from torch import nn

    same = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 8, 3, stride=2), nn.Conv2d(8, 8, 4, 2, 1))
    assert len(alignment.unpadded_strided_layers(same)) == 3


def rows(model, stage):
    return [r for r in alignment.measure(model) if r["stage"] == stage]


@pytest.mark.parametrize("stage", ["anchors", "roi_align box", "roi_align mask", "p6"])
def test_stage_keeps_features_within_a_pixel(model, stage):
    found = rows(model, stage)
    assert found and [r for r in found if r["max_offset_px"] > 1.0] == []


def test_fpn_top_down_within_a_pixel(model):
    found = rows(model, "fpn")
    assert len(found) == 3 and [r for r in found if r["max_offset_px"] > 1.0] == []


def test_path_augmentation_within_a_pixel(model):
    found = rows(model, "path_aug")
    assert len(found) == 4 and [r for r in found if r["max_offset_px"] > 1.0] == []


def test_the_authors_resampling_is_measured_off_by_a_stride():
    authors = LIP(model_config("smoke", resampling="authors", backbone_checkpoint=None))
    assert [r["max_offset_px"] for r in rows(authors, "fpn")] == [4.0, 8.0, 16.0]
    assert [r["max_offset_px"] for r in rows(authors, "path_aug")] == [2.0, 4.0, 8.0, 16.0]

