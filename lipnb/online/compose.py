"""Turn the kept detections of one frame into a DAVIS label map.

Each kept instance's soft mask is resized to the output resolution (the annotation
resolution, which may differ from the frames'), thresholded at 0.5, and painted in
increasing order of id score so that where masks overlap the more confident id wins.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def compose_label_map(
    masks: torch.Tensor,
    ids: list[int],
    scores: list[float],
    out_size: tuple[int, int],
    threshold: float = 0.5,
) -> torch.Tensor:
    """Paste instance masks into one label map.

    Args:
        masks: ``[K, H, W]`` mask probabilities at the network's input resolution.
        ids: ``K`` object ids (1..255); scores: ``K`` id scores.
        out_size: ``(H_out, W_out)`` of the label map.
    Returns:
        ``[H_out, W_out]`` uint8 tensor of object ids, 0 for background.
    """
    label_map = torch.zeros(out_size, dtype=torch.uint8)
    if len(ids) == 0:
        return label_map
    if tuple(masks.shape[-2:]) != tuple(out_size):
        masks = F.interpolate(masks[:, None].float(), size=out_size, mode="bilinear", align_corners=False)[:, 0]
    for k in sorted(range(len(ids)), key=lambda j: scores[j]):
        label_map[masks[k] > threshold] = ids[k]
    return label_map
