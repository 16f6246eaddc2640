"""J, F and their statistics on small hand-made masks (answers derived by hand in comments),
plus a brute-force cross-check of the fast F against a direct transcription of the DAVIS
definition on random masks."""

import math

import numpy as np
import pytest

from lipnb.metrics import f_measure, jaccard, mean_recall_decay, seg2bmap
from lipnb.metrics.boundary import boundary_radius, dilate_disk, disk_half_widths
from lipnb.metrics.statistics import decay_bins


def square(shape, y0, x0, size):
    m = np.zeros(shape, dtype=bool)
    m[y0:y0 + size, x0:x0 + size] = True
    return m


def outline(shape, y0, y1, x0, x1):
    """Pixels on the border of the box rows y0..y1, cols x0..x1 (inclusive)."""
    m = np.zeros(shape, dtype=bool)
    m[y0, x0:x1 + 1] = m[y1, x0:x1 + 1] = m[y0:y1 + 1, x0] = m[y0:y1 + 1, x1] = True
    return m


# ----------------------------------------------------------------------------- J


def test_jaccard_hand_made():
    empty = np.zeros((20, 20), dtype=bool)
    assert jaccard(empty, empty) == 1.0  # both empty: 1
    assert jaccard(square((20, 20), 5, 5, 4), empty) == 0.0
    pixel = np.zeros((20, 20), dtype=bool)
    pixel[3, 3] = True
    assert jaccard(pixel, pixel) == 1.0
    # 4x4 square vs the same moved right by 1: intersection 4x3 = 12, union 4x5 = 20
    assert jaccard(square((20, 20), 5, 5, 4), square((20, 20), 5, 6, 4)) == pytest.approx(0.6, abs=0)


# ----------------------------------------------------------------------------- boundaries


def test_seg2bmap_square_is_outline_shifted_towards_origin():
    # a pixel is on the boundary when it differs from its right, lower or lower-right
    # neighbour: the 4x4 square rows/cols 5..8 gives the outline of rows/cols 4..8
    assert (seg2bmap(square((20, 20), 5, 5, 4)) == outline((20, 20), 4, 8, 4, 8)).all()


def test_seg2bmap_one_pixel():
    # pixel (10, 10): itself (right neighbour differs), (9, 10) (lower), (10, 9) (right),
    # (9, 9) (lower-right): the 2x2 block ending at the pixel
    m = np.zeros((20, 20), dtype=bool)
    m[10, 10] = True
    expected = np.zeros_like(m)
    expected[9:11, 9:11] = True
    assert (seg2bmap(m) == expected).all()


def test_seg2bmap_last_row_and_column_rules():
    # bottom-right pixel: never itself; (1, 2) by the last-column rule (lower differs),
    # (2, 1) by the last-row rule (right differs), (1, 1) by its lower-right neighbour
    m = np.zeros((3, 3), dtype=bool)
    m[2, 2] = True
    assert seg2bmap(m).astype(int).tolist() == [[0, 0, 0], [0, 1, 1], [0, 1, 0]]
    # a full mask has no boundary at all (nothing differs, the border is not a boundary)
    assert not seg2bmap(np.ones((5, 7), dtype=bool)).any()
    # last column full: only the interior neighbour to its left sees a difference
    m = np.zeros((4, 4), dtype=bool)
    m[:, 3] = True
    assert seg2bmap(m).astype(int).tolist() == [[0, 0, 1, 0]] * 4


def test_radius_and_disk():
    assert boundary_radius((480, 854)) == 8  # ceil(0.008 * 979.6) = ceil(7.84)
    assert boundary_radius((240, 427)) == 4  # ceil(3.92)
    assert boundary_radius((1080, 1920)) == 18  # ceil(17.62)
    assert boundary_radius((10, 10), bound_th=3) == 3  # >= 1: pixels
    # dx^2 + dy^2 <= 8^2 -> half-widths per row offset
    assert disk_half_widths(8) == [8, 7, 7, 7, 6, 6, 5, 3, 0]
    one = np.zeros((5, 5), dtype=bool)
    one[2, 2] = True
    plus = [[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]
    assert dilate_disk(one, 1).astype(int).tolist() == plus
    assert dilate_disk(one, 2).sum() == 13  # the 13 offsets with dx^2 + dy^2 <= 4


# ----------------------------------------------------------------------------- F


def test_f_empty_and_one_sided():
    empty = np.zeros((20, 20), dtype=bool)
    pixel = empty.copy()
    pixel[10, 10] = True
    assert f_measure(empty, empty) == 1.0  # both boundaries empty
    assert f_measure(pixel, empty) == 0.0  # exactly one empty
    assert f_measure(empty, pixel) == 0.0
    assert f_measure(pixel, pixel) == 1.0
    # a full mask has an empty boundary: full vs empty is F = 1 (and J = 0), as the toolkit
    full = np.ones((20, 20), dtype=bool)
    assert f_measure(full, empty) == 1.0 and jaccard(full, empty) == 0.0


def test_f_one_pixel_objects_within_and_beyond_tolerance():
    gt = np.zeros((20, 20), dtype=bool)
    gt[10, 10] = True
    pred = np.zeros_like(gt)
    pred[10, 13] = True
    # boundaries: gt {9,10} x {9,10}, pred {9,10} x {12,13}; tolerance 2 px:
    # pred columns 12 are 2 away from gt column 10 (matched), columns 13 are 3 away (not)
    # -> P = 2/4, R = 2/4 (symmetric), F = 0.5
    assert f_measure(gt, pred, bound_th=2) == 0.5
    assert f_measure(gt, pred, bound_th=3) == 1.0
    assert f_measure(gt, pred, bound_th=1) == 0.0


def test_f_shifted_squares():
    gt = square((20, 20), 5, 5, 4)  # boundary: outline of rows 4..8, cols 4..8 (16 px)
    # moved right by 1, exact matching (radius 0): the top and bottom rows share 4 pixels
    # each, the side columns none -> P = R = 8/16
    assert f_measure(gt, square((20, 20), 5, 6, 4), bound_th=0) == 0.5
    # ... with a 1-pixel tolerance every pixel has a partner -> 1
    assert f_measure(gt, square((20, 20), 5, 6, 4), bound_th=1) == 1.0
    # moved right by 2, tolerance 1: pred outline cols 6..10. Top and bottom rows: 4 of 5
    # (col 10 is 2 away); left column (5..7, 6): rows 5 and 7 touch gt rows 4 and 8, row 6
    # does not; right column (5..7, 10): none -> P = (4 + 4 + 2 + 0) / 16, R the same by
    # symmetry, F = 10/16
    assert f_measure(gt, square((20, 20), 5, 7, 4), bound_th=1) == 10 / 16


def test_f_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        f_measure(np.zeros((3, 4), bool), np.zeros((4, 3), bool))


# ----------------------------------------------------------------------------- F vs a direct transcription


def _direct_bmap(seg):
    """The DAVIS definition, written out on the whole image."""
    right, down, down_right = (np.zeros_like(seg) for _ in range(3))
    right[:, :-1], down[:-1, :], down_right[:-1, :-1] = seg[:, 1:], seg[1:, :], seg[1:, 1:]
    b = (seg ^ right) | (seg ^ down) | (seg ^ down_right)
    b[-1, :] = seg[-1, :] ^ right[-1, :]
    b[:, -1] = seg[:, -1] ^ down[:, -1]
    b[-1, -1] = False
    return b


def _direct_dilate(b, r):
    """Union of copies of ``b`` moved by every (dy, dx) with dx^2 + dy^2 <= r^2."""
    h, w = b.shape
    padded = np.zeros((h + 2 * r, w + 2 * r), dtype=bool)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy <= r * r:
                padded[r + dy: r + dy + h, r + dx: r + dx + w] |= b
    return padded[r: r + h, r: r + w]


def _direct_f(gt, pred, r):
    gb, pb = _direct_bmap(gt), _direct_bmap(pred)
    n_gt, n_pred = gb.sum(), pb.sum()
    if n_gt == 0 and n_pred == 0:
        return 1.0
    if n_gt == 0 or n_pred == 0:
        return 0.0
    p = (pb & _direct_dilate(gb, r)).sum() / float(n_pred)
    rc = (gb & _direct_dilate(pb, r)).sum() / float(n_gt)
    return 0.0 if p + rc == 0 else 2 * p * rc / (p + rc)


def test_fast_f_equals_direct_definition_on_random_masks():
    rng = np.random.default_rng(0)
    for trial in range(60):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 140))
        if trial % 3 == 0:  # noise, touching every border
            gt, pred = rng.random((h, w)) < 0.3, rng.random((h, w)) < 0.3
        else:  # boxes that may touch the last row / column
            gt, pred = np.zeros((h, w), bool), np.zeros((h, w), bool)
            for m in (gt, pred):
                y, x = rng.integers(0, h), rng.integers(0, w)
                m[y:y + rng.integers(1, 20), x:x + rng.integers(1, 70)] = True
        assert (seg2bmap(gt) == _direct_bmap(gt)).all()
        for r in (0, 1, 3, 8) if trial % 20 else (66,):  # 66: more than one 64-bit word
            assert (dilate_disk(seg2bmap(gt), r) == _direct_dilate(seg2bmap(gt), r)).all()
            assert f_measure(gt, pred, bound_th=r) == _direct_f(gt, pred, r)


# ----------------------------------------------------------------------------- statistics


def test_decay_bins_are_the_toolkits():
    # L = 8: round(linspace(1, 8, 5) + 1e-10) - 1 = round([1, 2.75, 4.5, 6.25, 8]) - 1
    #      = [0, 2, 4, 5, 7]; bins v[0:3], v[2:5], v[4:6], v[5:8] (neighbours share a frame)
    assert decay_bins(8) == [slice(0, 3), slice(2, 5), slice(4, 6), slice(5, 8)]
    assert decay_bins(1) == [slice(0, 1)] * 4


def test_mean_recall_decay_by_hand():
    v = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=float)
    assert mean_recall_decay(v) == (0.5, 0.5, 1.0)  # decay = mean(v[0:3]) - mean(v[5:8])
    # recall counts values strictly above 0.5
    assert mean_recall_decay(np.array([0.5, 0.5, 0.9]))[1] == pytest.approx(1 / 3)
    assert mean_recall_decay(np.ones(40)) == (1.0, 1.0, 0.0)
    assert mean_recall_decay(np.array([0.25])) == (0.25, 0.0, 0.0)
    assert all(math.isnan(x) for x in mean_recall_decay(np.array([])))
