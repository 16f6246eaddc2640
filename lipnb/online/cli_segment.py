"""``python -m lipnb segment``: segment any folder of frames (a user's own video) from its first mask.

    python -m lipnb segment --frames my_video/ --first-mask my_video_00000.png \\
        --checkpoint runs/smoke/finetune/last.pt --out results/my_video

Frames are the folder's ``.jpg`` / ``.jpeg`` / ``.png`` files in name order. The first mask is a
DAVIS-style PNG: indexed (palette index = object id) or grayscale (0/255 = one object, other
values = ids). Writes ``OUT/<frame name>.png`` (DAVIS indexed PNGs at the first mask's
resolution) and ``OUT/timing.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lipnb.online.cli_common import add_model_arguments, build_model, fail, online_config

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", required=True, metavar="DIR", help="folder of frames, in name order")
    p.add_argument("--first-mask", required=True, metavar="PNG", help="object ids of the first frame")
    p.add_argument("--out", required=True, metavar="DIR", help="where the masks go")
    add_model_arguments(p)


def list_frames(folder: Path) -> list[Path]:
    if not folder.is_dir():
        fail(f"frames folder not found: {folder}")
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith("."))
    if not frames:
        fail(f"no frames ({', '.join(FRAME_SUFFIXES)}) in {folder}")
    return frames


def read_first_mask(path: Path):
    """Object ids ``uint8 [H, W]`` of a first-frame mask (indexed, or grayscale 0/255 or ids)."""
    import numpy as np
    from PIL import Image

    from lipnb.data.davis import DavisFormatError, read_mask

    if not path.is_file():
        fail(f"first mask not found: {path}")
    try:
        with Image.open(path) as image:
            mode, values = image.mode, np.unique(np.asarray(image))
        binary = mode in ("L", "1") and set(values.tolist()) <= {0, 255}
        return read_mask(path, "2016" if binary else "2017")
    except DavisFormatError as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot read first mask {path}: {e}")


def run(args) -> int:
    import numpy as np
    from PIL import Image

    from lipnb.data.davis import write_mask
    from lipnb.online.inference import object_ids_of, segment_sequence, write_timing

    frames = list_frames(Path(args.frames))
    first_mask = read_first_mask(Path(args.first_mask))
    try:
        object_ids_of(first_mask, f"first mask {args.first_mask}")
    except ValueError as e:
        fail(str(e))
    cfg = online_config(args)
    model = build_model(args)
    out = Path(args.out)

    def read_frame(i: int):
        with Image.open(frames[i]) as image:
            return np.asarray(image.convert("RGB"))

    result = segment_sequence(model, read_frame, len(frames), first_mask,
                              lambda i, ids: write_mask(out / f"{frames[i].stem}.png", ids),
                              cfg, Path(args.frames).name, progress=not args.no_progress)
    write_timing(out, [result])
    (out / "online_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    print(f"[lipnb segment] {result.num_frames} frames, {result.num_objects} object(s): fine-tuning "
          f"{result.finetune_iters} it in {result.finetune_s:.1f}s, inference {result.inference_fps:.2f} "
          f"frames/s; masks in {out}")
    return 0
