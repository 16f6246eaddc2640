"""Training-time geometry shared by the COCO and DAVIS datasets (paper §5.1).

* scale jitter: the shorter side is drawn from a list of lengths (the paper's 11 sizes
  320..640), the longer side is capped (1333); one draw per image, or per clip so that
  every frame of a clip has the same size;
* horizontal flip;
* boxes from masks, optionally expanded in width and height (the paper's 10% for DAVIS).

All functions are pure: randomness comes in as an explicit ``random.Random``.
Images are float tensors ``[3, H, W]`` in ``[0, 1]``; masks are uint8 ``[K, H, W]``;
boxes are float ``[K, 4]`` as ``x1, y1, x2, y2`` in pixel-edge coordinates (a mask
covering columns ``a..b`` has ``x1 = a``, ``x2 = b + 1``).
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F

#: The paper's shorter-side lengths for pre-training and fine-tuning (§5.1).
PAPER_SCALES: tuple[int, ...] = (320, 352, 384, 416, 448, 480, 512, 544, 576, 608, 640)
PAPER_MAX_SIZE: int = 1333


def scaled_size(height: int, width: int, shorter: int, max_size: int) -> tuple[int, int]:
    """Size ``(h, w)`` with the shorter side ``shorter``, the longer at most ``max_size``."""
    factor = min(shorter / min(height, width), max_size / max(height, width))
    return max(1, round(height * factor)), max(1, round(width * factor))


def draw_geometry(rng: random.Random, scales, flip: bool) -> tuple[int, bool]:
    """One scale-jitter + flip draw: ``(shorter_side, flipped)``."""
    shorter = rng.choice(list(scales))
    return shorter, bool(flip and rng.random() < 0.5)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` -> float ``[3, H, W]`` in ``[0, 1]``."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear (antialiased) resize of ``[3, H, W]`` to ``size = (h, w)``."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    out = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)
    return out[0].clamp_(0.0, 1.0)


def resize_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of uint8 ``[K, H, W]`` to ``[K, h, w]``."""
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size))
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    return F.interpolate(masks[None].float(), size=size, mode="nearest")[0].to(torch.uint8)


def hflip_image(image: torch.Tensor) -> torch.Tensor:
    return image.flip(-1)


def hflip_masks(masks: torch.Tensor) -> torch.Tensor:
    return masks.flip(-1)


def hflip_boxes(boxes: torch.Tensor, width: int) -> torch.Tensor:
    """Mirror ``[K, 4]`` x1y1x2y2 boxes in an image ``width`` pixels wide."""
    out = boxes.clone()
    out[:, 0] = width - boxes[:, 2]
    out[:, 2] = width - boxes[:, 0]
    return out


def scale_boxes(boxes: torch.Tensor, old: tuple[int, int], new: tuple[int, int]) -> torch.Tensor:
    """Rescale ``[K, 4]`` boxes from image size ``old = (H, W)`` to ``new = (h, w)``."""
    sy, sx = new[0] / old[0], new[1] / old[1]
    return boxes * boxes.new_tensor([sx, sy, sx, sy])


def boxes_from_masks(masks: torch.Tensor, expand: float = 0.0, clip: bool = True) -> torch.Tensor:
    """Tight boxes of uint8 masks ``[K, H, W]`` -> float ``[K, 4]`` (x1, y1, x2, y2).

    ``expand`` grows width and height by that fraction about the box centre (the paper
    uses 0.1 for DAVIS, "to prevent incomplete mask prediction caused by inaccurate box
    prediction"); ``clip`` keeps the result inside the image. An empty mask gives a zero box.
    """
    k, h, w = masks.shape
    boxes = torch.zeros((k, 4), dtype=torch.float32)
    for i in range(k):
        ys, xs = torch.nonzero(masks[i], as_tuple=True)
        if ys.numel() == 0:
            continue
        x1, x2 = xs.min().item(), xs.max().item() + 1
        y1, y2 = ys.min().item(), ys.max().item() + 1
        dx, dy = (x2 - x1) * expand / 2, (y2 - y1) * expand / 2
        boxes[i] = torch.tensor([x1 - dx, y1 - dy, x2 + dx, y2 + dy])
    if clip:
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    return boxes


def apply_geometry(image: torch.Tensor, masks: torch.Tensor, size: tuple[int, int], flipped: bool):
    """Resize ``image [3,H,W]`` and ``masks [K,H,W]`` to ``size`` and optionally mirror them."""
    image, masks = resize_image(image, size), resize_masks(masks, size)
    if flipped:
        image, masks = hflip_image(image), hflip_masks(masks)
    return image, masks
