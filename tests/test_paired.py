"""lipnb.lab.paired: per-sequence differences of two evaluations and the traits of a sequence."""

import numpy as np
import pytest

from lipnb.lab.paired import paired_differences, sequence_traits, spearman


def evaluation(scores):  # {object name: (J, F)}
    return {"per_object": [{"name": n, "J-Mean": j, "F-Mean": f} for n, (j, f) in scores.items()]}


def test_paired_differences_average_objects_and_keep_shared_sequences():
    a = evaluation({"dog_1": (0.8, 0.6), "cat_1": (0.5, 0.5), "cat_2": (0.7, 0.9), "owl_1": (1, 1)})
    b = evaluation({"dog_1": (0.6, 0.6), "cat_1": (0.6, 0.6), "cat_2": (0.6, 0.6)})
    d = paired_differences(a, b)
    assert set(d) == {"dog", "cat"}
    assert d["dog"] == pytest.approx(10.0) and d["cat"] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="share no sequence"):
        paired_differences(a, evaluation({"eel_1": (0, 0)}))


class Square:
    """A 20x20 frame with a 4x4 object that moves ``step`` pixels right per frame."""
    name = "square"

    def __init__(self, step, frames=6):
        self.step, self.num_frames, self.annotation_paths = step, frames, [None] * frames

    def read_mask(self, i):
        m = np.zeros((20, 20), np.uint8)
        m[8:12, self.step * i: self.step * i + 4] = 1
        return m


def test_sequence_traits_see_motion_and_size():
    still, moving = sequence_traits(Square(0)), sequence_traits(Square(2))
    assert still["motion"] == 0 and moving["motion"] == pytest.approx(1 - 2 / 6)  # IoU of 2 shifted 4x4 squares
    assert still["area"] == pytest.approx(16 / 400)
    seq = Square(1)
    seq.annotation_paths = [None]
    with pytest.raises(ValueError, match="every frame"):
        sequence_traits(seq)


def test_spearman_is_a_rank_correlation():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 1000]) == pytest.approx(1)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1)
