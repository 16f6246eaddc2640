"""Online-time surgery on the heads (paper §4.1.2, §4.2, Fig. 5).

    "The class-agnostic prediction in mask head and bbox head are altered to be class-specific in
    order to have less competition for different instances." "Foreground weights are copied for
    each foreground instance to be fine-tuned uniquely." (Fig. 5)

    "the last linear layer in id head needs to be re-initialized and trained to differentiate
    instances in the current sequence." (§4.2; the same replacement as §4.1.2)

Typical online use, for a sequence with N objects::

    reset_id_head(model, N)        # background + N ids, fresh weights
    make_class_specific(model)     # N copies of the foreground box / mask weights
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch
from torch import nn

from .heads import IdHead, Shortcut


def _roi_heads(model):
    return getattr(model, "roi_heads", model)


def _update_cfg(model, **changes):
    """Keep ``LIP.cfg`` describing the weights, so ``LIP(cfg).load_state_dict(sd)`` round-trips."""
    if hasattr(model, "cfg"):
        model.cfg = dataclasses.replace(model.cfg, **changes)


def _copy_rows(layer: nn.Module, index: torch.Tensor, per_slot: int, transpose: bool = False) -> nn.Module:
    """A new layer like ``layer`` whose output slots are ``layer``'s slots ``index``.

    ``per_slot`` outputs per slot (4 for box deltas); ``transpose`` for ConvTranspose2d
    (output channels on dim 1 of the weight).
    """
    rows = (index[:, None] * per_slot + torch.arange(per_slot, device=index.device)).reshape(-1)
    w, b = layer.weight.data, layer.bias.data
    if isinstance(layer, nn.Linear):
        new = nn.Linear(layer.in_features, len(rows))
    elif isinstance(layer, nn.ConvTranspose2d):
        new = nn.ConvTranspose2d(layer.in_channels, len(rows), layer.kernel_size, layer.stride)
    else:
        new = nn.Conv2d(layer.in_channels, len(rows), layer.kernel_size, layer.stride, layer.padding)
    new = new.to(w.device, w.dtype)
    new.weight.data.copy_(w[:, rows] if transpose else w[rows])
    new.bias.data.copy_(b[rows])
    return new


@torch.no_grad()
def make_class_specific(model, num_ids: Optional[int] = None):
    """Turn the class-agnostic box and mask predictors into per-id ones (Fig. 5), in place.

    Box: slots (bg, fg) -> (bg, fg, fg, ..., fg) for ``num_ids`` ids; mask: 1 channel ->
    ``num_ids + 1`` copies (channel 0, background, is never read). The shortcut projections are
    copied alike, so every id's prediction equals the agnostic one at conversion time.
    ``num_ids`` defaults to the id head's. Accepts ``LIP`` or its ``roi_heads``; returns ``model``.
    On a ``LIP``, ``model.cfg`` becomes ``class_specific=True, num_ids=n`` (a new config object).
    """
    heads = _roi_heads(model)
    if heads.class_specific:
        raise ValueError("predictors are already class-specific")
    n = heads.id_head.num_ids if num_ids is None else num_ids
    box_idx = torch.tensor([0] + [1] * n)
    heads.box_predictor.bbox_pred = _copy_rows(heads.box_predictor.bbox_pred, box_idx, 4)
    if heads.box_predictor.shortcut is not None:
        heads.box_predictor.shortcut.proj = _copy_rows(heads.box_predictor.shortcut.proj, box_idx, 4)
    mask_idx = torch.zeros(n + 1, dtype=torch.long)
    pred = heads.mask_predictor
    pred.predictor.mask_fcn_logits = _copy_rows(pred.predictor.mask_fcn_logits, mask_idx, 1)
    if pred.shortcut is not None:
        pred.shortcut = _copy_rows(pred.shortcut, mask_idx, 1, transpose=True)
    _update_cfg(model, class_specific=True, num_ids=n)
    return model


@torch.no_grad()
def reset_id_head(model, num_ids: int, generator: Optional[torch.Generator] = None):
    """Replace the id head's last layer by a fresh one over background + ``num_ids`` ids, in place.

    Initialised as torchvision initialises a class score (normal, std 0.01; zero bias); the
    shortcut projection (if any) restarts at zero. Accepts ``LIP`` (whose ``cfg.num_ids`` follows)
    or its ``roi_heads``. Call it before :func:`make_class_specific`.
    """
    heads = _roi_heads(model)
    old = heads.id_head
    w = old.cls_score.weight
    new = IdHead(old.cls_score.in_features, 1, num_ids, shortcut=False).to(w.device, w.dtype)
    if generator is not None:
        new.cls_score.weight.copy_(torch.randn(new.cls_score.weight.shape, generator=generator) * 0.01)
    if old.shortcut is not None:
        new.shortcut = Shortcut(old.shortcut.proj.in_features, num_ids + 1).to(w.device, w.dtype)
    heads.id_head = new
    _update_cfg(model, num_ids=num_ids)
    return model
