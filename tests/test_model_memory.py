"""The visual memory against the paper's equations 1a-1d, computed by hand from its own weights."""

import pytest
import torch

from lipnb.model import ConvGRUCell, LIP, LIPConfig, PathAugmentation, VisualMemory, detach_state
from lipnb.profiles import model_config


def group_norm_by_hand(x, gn):
    """GN [53]: normalise each group of channels over (channels of the group, H, W), then scale and shift."""
    b, c, h, w = x.shape
    g = x.reshape(b, gn.num_groups, -1)
    g = (g - g.mean(-1, keepdim=True)) / torch.sqrt(g.var(-1, unbiased=False, keepdim=True) + gn.eps)
    return g.reshape(b, c, h, w) * gn.weight[None, :, None, None] + gn.bias[None, :, None, None]


def conv(x, w):
    return torch.nn.functional.conv2d(x, w, padding=w.shape[-1] // 2)


def eq1_by_hand(cell, x, h):
    C = cell.hidden_channels
    W_xz, W_xr, W_x = cell.conv_x.weight.split(C)
    W_hz, W_hr = cell.conv_h_zr.weight.split(C)
    W_h = cell.conv_h.weight
    z = torch.sigmoid(group_norm_by_hand(conv(h, W_hz) + conv(x, W_xz), cell.gn_z))  # (1a)
    r = torch.sigmoid(group_norm_by_hand(conv(h, W_hr) + conv(x, W_xr), cell.gn_r))  # (1b)
    h_tilde = torch.tanh(group_norm_by_hand(conv(r * h, W_h) + conv(x, W_x), cell.gn_h))  # (1c)
    return (1 - z) * h + z * h_tilde, z, r  # (1d)


def random_cell(c_in=6, c_h=8, groups=4):
    torch.manual_seed(0)
    cell = ConvGRUCell(c_in, c_h, 3, groups).double()
    with torch.no_grad():  # non-trivial GN affine parameters, so the test sees them
        for gn in (cell.gn_z, cell.gn_r, cell.gn_h):
            gn.weight.uniform_(0.5, 1.5)
            gn.bias.uniform_(-0.5, 0.5)
    return cell


def test_conv_gru_cell_equals_equations_1a_1d():
    cell = random_cell()
    assert cell.conv_x.weight.shape[-2:] == (3, 3) and cell.conv_x.bias is None and cell.conv_h.bias is None
    assert cell.gn_z.num_groups == 4
    x, h = torch.randn(2, 6, 9, 11, dtype=torch.double), torch.randn(2, 8, 9, 11, dtype=torch.double)
    for got, want in zip(cell(x, h), eq1_by_hand(cell, x, h)):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_none_state_is_zero_state():
    cell = random_cell()
    x = torch.randn(2, 6, 9, 11, dtype=torch.double)
    zero = torch.zeros(2, 8, 9, 11, dtype=torch.double)
    for got, want in zip(cell(x, None), eq1_by_hand(cell, x, zero)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_static_mode_ignores_previous_state():
    torch.manual_seed(1)
    memory = VisualMemory(4, 8, num_levels=2, gn_groups=4, static=True)
    feats = [torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4)]
    state = [torch.randn(1, 8, 8, 8), torch.randn(1, 8, 4, 4)]
    h_none, _ = memory(feats, None)
    h_state, _ = memory(feats, state)
    for a, b in zip(h_none, h_state):
        assert torch.equal(a, b)
    memory.static = False  # dynamic: the state matters
    h_dyn, _ = memory(feats, state)
    assert not torch.allclose(h_dyn[0], h_none[0])


def test_static_model_output_independent_of_state():
    torch.manual_seed(2)
    model = LIP(model_config("smoke", static_memory=True)).eval()
    images = [torch.rand(3, 96, 128)]
    with torch.no_grad():
        ff0 = model.features(images, None)
        ff1 = model.features(images, [torch.randn_like(h) for h in ff0.state])
    for k in ff0.features:
        assert torch.equal(ff0.features[k], ff1.features[k])


def test_gradients_stop_where_bptt_is_cut():
    torch.manual_seed(3)
    memory = VisualMemory(4, 8, num_levels=1, gn_groups=4)
    xs = [torch.randn(1, 4, 6, 6, requires_grad=True) for _ in range(3)]

    def run(cut_after):
        state = None
        for t, x in enumerate(xs, start=1):
            hidden, _ = memory([x], state)
            state = detach_state(hidden) if t == cut_after else hidden
        hidden[0].sum().backward()
        grads = [None if x.grad is None else x.grad.abs().sum().item() for x in xs]
        for x in xs:
            x.grad = None
        return grads

    full = run(cut_after=None)
    assert all(g is not None and g > 0 for g in full)  # BPTT reaches every frame
    cut = run(cut_after=2)  # cut between frames 2 and 3: only frame 3 gets gradients
    assert cut[0] is None and cut[1] is None and cut[2] > 0


def test_forward_clip_detaches_state_at_bptt_cut():
    torch.manual_seed(4)
    model = LIP(model_config("smoke", rpn_post_nms_top_n_train=50, roi_batch_size_per_image=16)).train()
    seen = []
    forward = model.memory.forward

    def spy(features, state=None):
        seen.append(None if state is None else state[0].grad_fn is not None)
        return forward(features, state)

    model.memory.forward = spy
    frames = [[torch.rand(3, 64, 64)] for _ in range(4)]
    target = {"boxes": torch.tensor([[8.0, 8, 40, 40]]), "labels": torch.tensor([1]),
              "masks": torch.zeros(1, 64, 64, dtype=torch.uint8)}
    model.forward_clip(frames, [[target]] * 4, bptt_cut=2)
    # frame 1: no state; 2: state with history; 3: cut (detached); 4: history again
    assert seen == [None, True, False, True]


@pytest.mark.parametrize("resampling", ["aligned", "authors"])
def test_path_augmentation_formula(resampling):
    torch.manual_seed(5)
    hidden = [torch.randn(1, 3, 16, 16), torch.randn(1, 3, 8, 8), torch.randn(1, 3, 4, 4), torch.randn(1, 3, 2, 2)]
    out = PathAugmentation(resampling)(hidden)
    assert torch.equal(out[0], hidden[0])  # N2 = H2
    for i in range(1, 4):  # N(i+1) = H(i+1)/2 + down(N(i))/2
        if resampling == "aligned":  # feature k of the coarser map is feature 2k of the finer
            down = out[i - 1][..., ::2, ::2]
        else:  # the authors' bilinear resize by 1/2
            down = torch.nn.functional.interpolate(out[i - 1], scale_factor=0.5, mode="bilinear", align_corners=False)
        torch.testing.assert_close(out[i], hidden[i] / 2 + down / 2)
    odd = PathAugmentation(resampling)([torch.randn(1, 3, 5, 7), torch.randn(1, 3, 3, 4)])  # ceil-mode sizes fit
    assert odd[1].shape == (1, 3, 3, 4)


def test_carry_selects_h_or_n():
    torch.manual_seed(6)
    images = [torch.rand(3, 64, 64)]
    for carry in ("N", "H"):
        model = LIP(model_config("smoke", carry=carry)).eval()
        with torch.no_grad():
            ff = model.features(images)
            hidden, _ = model.memory(list(model.backbone(ff.images.tensors).values()))
        want = hidden if carry == "H" else PathAugmentation(model.cfg.resampling)(hidden)
        for a, b in zip(ff.state, want):
            torch.testing.assert_close(a, b)
        assert len(model.gates) == 5 and set(model.gates[0]) == {"z", "r"}
