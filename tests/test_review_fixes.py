"""Regression tests for bugs found in review."""

import torch

from lipnb.model.backbone import GroupNorm, ResNetBody, convert_resnet_state_dict

torch.set_num_threads(1)


def _caffe2_names(state: dict) -> dict:
    """torchvision ResNet-18 names -> Detectron (Caffe2) blob names (BasicBlock: branch2a/2b)."""
    out = {}
    gn = {"weight": "gn_s", "bias": "gn_b"}
    for k, v in state.items():
        if k == "conv1.weight":
            out["conv1_w"] = v
        elif k.startswith("bn1."):
            out["conv1_" + gn[k.split(".")[1]]] = v
        else:
            layer, idx, part, *rest = k.split(".")
            prefix = f"res{int(layer[5]) + 1}_{idx}_"
            if part == "downsample":
                out[prefix + ("branch1_w" if rest[0] == "0" else "branch1_" + gn[rest[1]])] = v
            else:
                branch = "branch2" + "abc"[int(part[-1]) - 1]
                out[prefix + branch + ("_w" if part.startswith("conv") else "_" + gn[rest[0]])] = v
    return out


def test_detectron_checkpoint_conv1_is_turned_from_bgr_to_rgb():
    """Detectron's ImageNet ResNets read BGR images; LIP feeds RGB. Loaded as is, the red and
    blue input channels of conv1 would be swapped (silently wrong ImageNet initialisation)."""
    torch.manual_seed(0)
    norm = GroupNorm(8)
    src = ResNetBody(18, 0.25, norm).eval()  # stands for a network trained on BGR input
    converted = convert_resnet_state_dict(_caffe2_names(src.state_dict()))
    dst = ResNetBody(18, 0.25, norm).eval()
    dst.load_state_dict(converted)
    rgb = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(dst(rgb), src(rgb.flip(1)))  # same features as the source on BGR
    # torchvision layouts are RGB already: unchanged
    tv = convert_resnet_state_dict(src.state_dict())
    assert torch.equal(tv["conv1.weight"], src.state_dict()["conv1.weight"])
