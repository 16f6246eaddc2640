"""The convolutional gated recurrent Mask-RCNN of LIP (paper §3), built from torchvision parts.

The data's walk, one file per step::

    images -> torchvision's GeneralizedRCNNTransform (normalise, pad; resize in eval only)
           -> backbone.py  (ResNet + FPN with GroupNorm: P2..P6; resampling.py keeps feature i on pixel s*i)
           -> memory.py    (VisualMemory: one ConvGRUCell per level, eq. 1a-1d)
           -> path_aug.py  (PathAugmentation: N2 = H2, N(i+1) = H(i+1)/2 + down(N(i))/2)
           -> rpn.py       (torchvision RPN, 5 ratios x 1 size per level)
           -> heads.py     (4conv1fc box head, IdHead, BoxPredictor, MaskHead, MaskPredictor, shortcut)
           -> roi_heads.py (LIPRoIHeads: sampling, losses, detections with id scores)
    config.py holds LIPConfig (the paper's values; the profiles are in lipnb.profiles); lip.py ties the steps together (LIP);
    class_specific.py holds the online-time surgery (Fig. 5).

Public API::

    from lipnb.model import LIPConfig, LIP, make_class_specific, reset_id_head
    cfg = LIPConfig()                 # the paper's; lipnb.profiles.model_config("smoke") for a tiny one
    model = LIP(cfg)
    out, state = model(images, targets, state)
    losses = model.forward_clip(frames, targets, bptt_cut=4)
"""

from .class_specific import make_class_specific, reset_id_head
from .config import LIPConfig
from .lip import LIP, detach_state
from .memory import ConvGRUCell, VisualMemory
from .path_aug import PathAugmentation

__all__ = [
    "LIPConfig",
    "LIP",
    "detach_state",
    "make_class_specific",
    "reset_id_head",
    "ConvGRUCell",
    "VisualMemory",
    "PathAugmentation",
]
