"""How online inference handles the visual memory's state (paper §3.3, Table 3).

Frame 0's state (its features at the test scale, zero input state, the same pass the first-frame
fine-tuning uses) goes into frame 1, each frame's state into the next, never reset; a static
(zero hidden state) model ignores it; the state stays bounded over long sequences.
"""

import numpy as np
import pytest
import torch

from lipnb.data.procedural_videos import render_sequence
from lipnb.model import LIP
from lipnb.online.checkpoint import random_model
from lipnb.online.config import OnlineConfig
from lipnb.online.inference import segment_sequence, to_image
from lipnb.profiles import model_config

QUICK = OnlineConfig(max_iters=1, refresh_iters=0)


@pytest.fixture(scope="module")
def video():
    frames, masks, _ = render_sequence(0, 0, num_frames=5, height=64, width=96, occlusion_frames=1, split="val")
    return frames, masks


def record_features(monkeypatch):
    """Wrap ``LIP.features`` (class level: ``segment_sequence`` works on a copy) -> list of
    ``(state_in, ff, static)`` per call."""
    calls, original = [], LIP.features

    def features(self, images, state=None, targets=None):
        ff = original(self, images, state, targets)
        calls.append((state, ff, self.memory.static))
        return ff

    monkeypatch.setattr(LIP, "features", features)
    return calls


@pytest.mark.parametrize("static", [False, True])
def test_state_goes_from_frame_0_to_every_next_frame(monkeypatch, video, static):
    frames, masks = video
    model = random_model(model_config("smoke"))
    model.memory.static = static
    with torch.no_grad():  # the reference: frame 0 alone, eval mode, zero state, test scale
        ref0 = model.features([to_image(frames[0], "cpu")], None)
    calls = record_features(monkeypatch)
    segment_sequence(model, lambda i: frames[i], len(frames), masks[0], lambda i, ids: None, QUICK,
                     progress=False)
    assert len(calls) == len(frames)  # frame 0 once (fine-tuning), then one call per frame
    assert calls[0][0] is None  # frame 0 starts from the zero state
    assert all(s == static for _, _, s in calls)  # static honoured on the fine-tuned copy
    for a, b in zip(calls[0][1].state, ref0.state):  # frame 0's state: the eval-mode, test-scale pass
        assert torch.allclose(a, b, atol=1e-6)
    for (_, prev, _), (state_in, ff, _) in zip(calls, calls[1:]):
        assert state_in is prev.state  # carried as is: no reset, no other frame's state
        assert [tuple(h.shape) for h in ff.state] == [tuple(h.shape) for h in prev.state]
        assert not any(h.requires_grad for h in ff.state)
    if static:  # zero hidden state: every frame's memory output equals a pass without state
        img = to_image(frames[-1], "cpu")
        with torch.no_grad():
            alone = model.features([img], None)
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(calls[-1][1].state, alone.state))
    else:  # dynamic: the carried state changes the features
        assert not all(torch.allclose(a, b, atol=1e-4) for a, b in zip(calls[2][1].state, calls[1][1].state))


def test_state_stays_bounded_over_a_long_sequence():
    """|h| <= 1 (eq. 1d is a convex mix of h and tanh) and N is an average of such: no drift past 1."""
    torch.manual_seed(0)
    model = random_model(model_config("smoke"))
    state = None
    with torch.no_grad():
        for _ in range(30):
            ff = model.features([torch.rand(3, 64, 96)], state)
            state = ff.state
            assert max(float(h.abs().max()) for h in state) <= 1.0 + 1e-6
    assert np.isfinite([float(h.abs().mean()) for h in state]).all()
