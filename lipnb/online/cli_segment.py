"""``python -m lipnb segment``: segment any folder of frames (a user's own video) from its first mask.

    python -m lipnb segment --frames my_video/ --first-mask my_video_00000.png \\
        --checkpoint runs/smoke/finetune/last.pt --out results/my_video

Frames are the folder's ``.jpg`` / ``.jpeg`` / ``.png`` files in name order. The first mask is a
DAVIS-style PNG: indexed (palette index = object id) or grayscale (0/255 = one object, other
values = ids). Writes ``OUT/<frame name>.png`` (DAVIS indexed PNGs at the first mask's
resolution) and ``OUT/timing.json``.

Before any work: ``--out`` may not be, contain or lie inside the frames folder or the first mask;
a non-empty ``--out`` is replaced only with ``--overwrite``; all frames must have one size and the
first mask their aspect ratio. Masks are written to a staging folder swapped in at the end; a
failed run leaves ``OUT.partial/`` marked ``FAILED.txt`` and the earlier ``OUT`` untouched.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lipnb.online.cli_common import (add_model_arguments, build_model, check_same_aspect, check_threads, fail,
                                    online_config)

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", required=True, metavar="DIR", help="folder of frames, in name order")
    p.add_argument("--first-mask", required=True, metavar="PNG", help="object ids of the first frame")
    p.add_argument("--out", required=True, metavar="DIR", help="where the masks go")
    add_model_arguments(p)


def list_frames(folder: Path, first_mask: Path | None = None) -> list[Path]:
    """The frames in name order; the first mask, if kept in the folder, is not a frame."""
    import sys

    if not folder.is_dir():
        fail(f"frames folder not found: {folder}; give --frames a folder of {'/'.join(FRAME_SUFFIXES)} frames")
    mask = first_mask.resolve() if first_mask is not None else None
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith(".")
                    and p.resolve() != mask)
    if mask is not None and mask.parent == folder.resolve():
        print(f"note: the first mask {first_mask} lies in the frames folder; it is not read as a frame",
              file=sys.stderr)
    if not frames:
        fail(f"no frames ({', '.join(FRAME_SUFFIXES)}) in {folder}")
    seen: dict = {}
    for p in frames:
        if p.stem in seen:
            fail(f"frames {seen[p.stem]} and {p} share the name {p.stem!r}, so both masks would be "
                 f"{p.stem}.png; keep one file per frame name in {folder}")
        seen[p.stem] = p
    return frames


def frame_size(frames: list[Path]) -> tuple[int, int]:
    """(H, W) shared by every frame, from the headers; a frame of another size or unreadable fails."""
    from PIL import Image

    from lipnb.cli_errors import first_line

    sizes = []
    for p in frames:
        try:
            with Image.open(p) as image:
                sizes.append(image.size)
        except Exception as e:  # noqa: BLE001 - Pillow raises many types
            fail(f"cannot read frame {p}: {first_line(e) or type(e).__name__}; replace or remove it")
        if sizes[-1] != sizes[0]:
            fail(f"frame {p} is {sizes[-1][0]}x{sizes[-1][1]} but {frames[0]} is {sizes[0][0]}x{sizes[0][1]}; "
                 "all frames must have one size: resize or remove it")
    return sizes[0][1], sizes[0][0]


def read_first_mask(path: Path):
    """Object ids ``uint8 [H, W]`` of a first-frame mask (indexed, or grayscale 0/255 or ids)."""
    import numpy as np
    from PIL import Image

    from lipnb.data.davis import DavisFormatError, read_mask

    if not path.is_file():
        fail(f"first mask not found: {path}; give --first-mask the PNG of the first frame's object ids")
    try:
        read_mask(path, "2017")  # a file that is no mask PNG fails here, with its name
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

    from lipnb.cli_errors import first_line
    from lipnb.safety import StagedFolder, check_out_apart, check_out_free

    check_threads(args)
    frames_dir, mask_path, out = Path(args.frames), Path(args.first_mask), Path(args.out)
    frames = list_frames(frames_dir, mask_path if mask_path.is_file() else None)
    first_mask = read_first_mask(mask_path)
    check_out_apart(out, {"--frames": frames_dir, "--first-mask": mask_path})
    check_out_free(out, args.overwrite)
    try:
        object_ids_of(first_mask, f"first mask {args.first_mask}")
    except ValueError as e:
        fail(str(e))
    check_same_aspect(f"first mask {mask_path}", first_mask.shape, f"the frames ({frames[0]})", frame_size(frames))
    cfg = online_config(args)
    model = build_model(args)

    def read_frame(i: int):
        try:
            with Image.open(frames[i]) as image:
                return np.asarray(image.convert("RGB"))
        except Exception as e:  # noqa: BLE001 - truncated, corrupt ...
            fail(f"cannot decode frame {frames[i]}: {first_line(e) or type(e).__name__}; replace or remove it")

    with StagedFolder(out) as stage:
        result = segment_sequence(model, read_frame, len(frames), first_mask,
                                  lambda i, ids: write_mask(stage / f"{frames[i].stem}.png", ids),
                                  cfg, frames_dir.name, progress=not args.no_progress)
        write_timing(stage, [result])
        (stage / "online_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    print(f"[lipnb segment] {result.num_frames} frames, {result.num_objects} object(s): fine-tuning "
          f"{result.finetune_iters} it in {result.finetune_s:.1f}s, inference {result.inference_fps:.2f} "
          f"frames/s; masks in {out}")
    return 0
