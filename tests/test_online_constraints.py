"""One maximum and location continuity on hand-made detections (paper §3.3, §5.1)."""

import torch

from lipnb.online.compose import compose_label_map
from lipnb.online.constraints import Kept, select_instances


def scores(rows):
    """id-score matrix [D, 3] (background, id 1, id 2) from per-detection (id1, id2) pairs."""
    t = torch.tensor(rows, dtype=torch.float32)
    return torch.cat([1 - t.sum(1, keepdim=True), t], 1)


BOXES = torch.tensor([[0, 0, 10, 10], [50, 50, 60, 60], [2, 2, 12, 12], [100, 0, 110, 10]], dtype=torch.float32)


def test_one_maximum_keeps_the_best_detection_per_id():
    kept = select_instances(BOXES, scores([[0.3, 0], [0.6, 0], [0.5, 0], [0.25, 0]]), [1, 2])
    assert set(kept) == {1}  # id 2 has no detection above 0.2
    assert kept[1].index == 1 and abs(kept[1].score - 0.6) < 1e-6


def test_scores_at_or_below_threshold_are_not_candidates():
    kept = select_instances(BOXES, scores([[0.2, 0], [0.1, 0], [0.0, 0], [0.0, 0]]), [1])
    assert kept == {}


def test_only_top_k_candidates_are_considered():
    # the best-scoring detection is far from the previous box; with top_k=1 nothing else is tried
    previous = {1: Kept(0, 0.9, (0.0, 0.0, 10.0, 10.0))}
    s = scores([[0.5, 0], [0.7, 0], [0.3, 0], [0.0, 0]])
    assert select_instances(BOXES, s, [1], previous, top_k=1) == {}
    assert select_instances(BOXES, s, [1], previous, top_k=10)[1].index == 0


def test_location_continuity_drops_far_candidates_of_a_confident_id():
    previous = {1: Kept(0, 0.9, (0.0, 0.0, 10.0, 10.0))}
    kept = select_instances(BOXES, scores([[0.3, 0], [0.8, 0], [0.5, 0], [0.0, 0]]), [1], previous)
    # detection 1 (score 0.8) has IoU 0 with the previous box; detection 2 has IoU 64/136 = 0.47 >= 0.3
    assert kept[1].index == 2


def test_location_continuity_ignores_a_previous_detection_with_low_score():
    previous = {1: Kept(0, 0.4, (0.0, 0.0, 10.0, 10.0))}  # not > 0.4
    kept = select_instances(BOXES, scores([[0.3, 0], [0.8, 0], [0.5, 0], [0.0, 0]]), [1], previous)
    assert kept[1].index == 1


def test_an_id_absent_in_the_previous_frame_is_not_suppressed():
    previous = {2: Kept(3, 0.9, (100.0, 0.0, 110.0, 10.0))}  # id 1 was not found
    kept = select_instances(BOXES, scores([[0.0, 0], [0.8, 0], [0.0, 0], [0.0, 0.7]]), [1, 2], previous)
    assert kept[1].index == 1 and kept[2].index == 3


def test_two_ids_competing_for_one_box():
    # detection 0 is the best for both ids; id 1 is surer of it, so id 2 takes its next candidate
    s = scores([[0.6, 0.35], [0.0, 0.3], [0.0, 0.0], [0.0, 0.0]])
    kept = select_instances(BOXES, s, [1, 2])
    assert kept[1].index == 0 and kept[2].index == 1
    # without another candidate, id 2 is not found in this frame
    s = scores([[0.6, 0.35], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    assert set(select_instances(BOXES, s, [1, 2])) == {1}


def test_compose_paints_higher_scores_on_top_and_resizes():
    masks = torch.zeros(2, 4, 4)
    masks[0, :2, :] = 0.9  # id 1, top half
    masks[1, 1:3, :] = 0.8  # id 2, middle rows, overlaps row 1
    out = compose_label_map(masks, [1, 2], [0.5, 0.7], (4, 4))
    assert out[0].tolist() == [1] * 4 and out[1].tolist() == [2] * 4 and out[2].tolist() == [2] * 4
    assert out[3].tolist() == [0] * 4
    out = compose_label_map(masks, [1, 2], [0.9, 0.7], (8, 8))
    assert out.shape == (8, 8) and out.dtype == torch.uint8 and out[2, 0] == 1
    assert compose_label_map(masks[:0], [], [], (3, 5)).sum() == 0


def test_detections_of_one_source_are_one_object():
    # detections 0 and 2 come from the same RoI (id 1's and id 2's boxes of it): one object
    s = scores([[0.6, 0.0], [0.0, 0.3], [0.0, 0.5], [0.0, 0.0]])
    kept = select_instances(BOXES, s, [1, 2], sources=torch.tensor([7, 8, 7, 9]))
    assert kept[1].index == 0 and kept[2].index == 1  # id 2 may not take RoI 7 again
    assert select_instances(BOXES, s, [1, 2])[2].index == 2  # without sources: distinct detections
