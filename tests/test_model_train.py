"""A training step on an 8-frame clip of the `smoke` profile, and overfitting one clip on CPU."""

import time

import torch

from lipnb.model import LIP, LIPConfig
from lipnb.profiles import model_config


S = 96  # frame size of the test clip


def moving_clip(T=8):
    """Two objects on a dark background: id 1 slides right, id 2 stays (one clip, B = 1)."""
    frames, targets = [], []
    for t in range(T):
        img = torch.rand(3, S, S) * 0.2
        masks = torch.zeros(2, S, S, dtype=torch.uint8)
        x = 8 + 2 * t
        masks[0, 10:40, x:x + 30] = 1
        masks[1, 50:90, 50:90] = 1
        img[0][masks[0].bool()] = 0.9
        img[2][masks[1].bool()] = 0.9
        frames.append([img])
        targets.append([{"boxes": torch.tensor([[x, 10.0, x + 30, 40], [50, 50, 90, 90]]),
                         "labels": torch.tensor([1, 2]), "masks": masks}])
    return frames, targets


def test_smoke_clip_loss_falls_when_overfitting_one_clip():
    torch.manual_seed(0)
    model = LIP(model_config("smoke")).train()
    frames, targets = moving_clip()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history, times = [], []
    for _ in range(16):
        t0 = time.perf_counter()
        losses = model.forward_clip(frames, targets, bptt_cut=4)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        history.append(loss.item())
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_id", "loss_box_reg", "loss_mask"}
    assert all(torch.isfinite(torch.tensor(history)))
    assert sum(history[-3:]) / 3 < 0.4 * history[0], history
    assert sum(history[-3:]) < sum(history[1:4]), history
    # forward + backward of the 8-frame clip (`python -m lipnb bench model` measures it properly)
    print(f"smoke 8-frame clip, {S}x{S}: {min(times) / len(frames):.3f} s/frame (best of {len(times)} steps)")
