"""``python -m lipnb segment``: segment any folder of frames (a user's own video) from its first mask.

    python -m lipnb segment --frames my_video/ --first-mask my_video_00000.png \\
        --checkpoint runs/smoke/finetune/last.pt --out results/my_video

Frames are the folder's ``.jpg`` / ``.jpeg`` / ``.png`` files in natural name order (``0.jpg,
1.jpg, ..., 10.jpg``; ambiguous names, pipes and devices are refused: :mod:`lipnb.data.files`).
The first mask is read by the one mask policy of :mod:`lipnb.data.masks`: indexed (palette index
= object id, 255 void) or grayscale (0 and one level = one object; anti-aliased edges snapped with
a warning; more grey levels refused unless ``--grey-levels objects|ids`` says how to read them).
Writes ``OUT/<frame name>.png`` (DAVIS indexed PNGs at the first mask's resolution) and
``OUT/timing.json``.

Before any work: ``--out`` may not be, contain or lie inside the frames folder, the first mask or
the checkpoint (paths resolved, symbolic links followed); one run at a time holds ``--out`` (a lock
file ``OUT.lock`` beside it); a non-empty ``--out`` is replaced only with ``--overwrite``; all
frames must have one size and the first mask their aspect ratio. Masks are written to a staging
folder swapped in at the end; a failed or interrupted run (Ctrl-C: exit 130, SIGTERM: 143) leaves
``OUT.partial/`` marked ``FAILED.txt`` and the earlier ``OUT`` untouched; a run killed with ``kill
-9`` leaves a hidden ``.OUT.staging-PID``, which the next run into ``OUT`` turns into
``OUT.partial`` and names.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lipnb.cli.common import (add_model_arguments, build_model, check_same_aspect, check_threads, fail,
                                    online_config)

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frames", required=True, metavar="DIR", help="folder of frames, in natural name order")
    p.add_argument("--first-mask", required=True, metavar="PNG", help="object ids of the first frame")
    p.add_argument("--out", required=True, metavar="DIR", help="where the masks go")
    p.add_argument("--grey-levels", choices=["objects", "ids"],
                   help="how to read a grayscale first mask of more than two grey levels: 'objects' (each "
                        "non-zero level one object, in ascending order) or 'ids' (each level an object id, "
                        "255 void); see lipnb.data.masks")
    add_model_arguments(p)


def list_frames(folder: Path, first_mask: Path | None = None) -> list[Path]:
    """The frames in natural name order (``0.jpg, 1.jpg, ..., 10.jpg``); the first mask, if kept in
    the folder, is not a frame. Pipes, devices, link loops and ambiguous names are refused."""
    import sys

    from lipnb.data.files import list_frames as list_frame_files

    if not folder.is_dir():
        fail(f"frames folder not found: {folder}; give --frames a folder of {'/'.join(FRAME_SUFFIXES)} frames")
    frames = list_frame_files(folder, FRAME_SUFFIXES, exclude=[first_mask] if first_mask else ())
    if first_mask is not None and first_mask.resolve().parent == folder.resolve():
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
    from lipnb.data.files import open_image

    sizes = []
    for p in frames:
        with open_image(p, "frame") as image:
            sizes.append(image.size)
        if sizes[-1] != sizes[0]:
            fail(f"frame {p} is {sizes[-1][0]}x{sizes[-1][1]} but {frames[0]} is {sizes[0][0]}x{sizes[0][1]}; "
                 "all frames must have one size: resize or remove it")
    return sizes[0][1], sizes[0][0]


def read_first_mask(path: Path, grey_levels: str | None = None):
    """Object ids ``uint8 [H, W]`` of a first-frame mask, by the one mask policy of
    :mod:`lipnb.data.masks`; anti-aliased edges snapped with one ``warning:`` line on stderr."""
    import sys
    import warnings

    from lipnb.data.masks import MaskSnappedWarning, read_first_mask as read_mask_file

    if not path.exists() and not path.is_symlink():
        fail(f"first mask not found: {path}; give --first-mask the PNG of the first frame's object ids")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MaskSnappedWarning)
        ids = read_mask_file(path, grey_levels=grey_levels, option="--grey-levels ")
    for w in caught:
        if issubclass(w.category, MaskSnappedWarning):
            print(f"warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return ids


def run(args) -> int:
    from lipnb.data.davis import DavisFormatError, write_mask
    from lipnb.data.files import read_rgb
    from lipnb.online.inference import object_ids_of, segment_sequence, write_timing

    from lipnb.cli.safety import StagedFolder, check_out_apart, check_out_free, out_lock, recover_stagings

    check_threads(args)
    cfg = online_config(args)  # every --set value checked before any work
    frames_dir, mask_path = Path(args.frames), Path(args.first_mask)
    try:  # bad frames or first mask: one line naming the file, exit 2, before any work
        frames = list_frames(frames_dir, mask_path if mask_path.is_file() else None)
        first_mask = read_first_mask(mask_path, args.grey_levels)
        out = check_out_apart(args.out, {"--frames": frames_dir, "--first-mask": mask_path,
                                         "--checkpoint": args.checkpoint})
        object_ids_of(first_mask, f"first mask {args.first_mask}")
        check_same_aspect(f"first mask {mask_path}", first_mask.shape, f"the frames ({frames[0]})",
                          frame_size(frames))
    except (DavisFormatError, ValueError) as e:
        fail(str(e))
    with out_lock(out):
        recover_stagings(out)
        check_out_free(out, args.overwrite)
        model = build_model(args)

        def read_frame(i: int):
            try:
                return read_rgb(frames[i], "frame")
            except DavisFormatError as e:  # truncated, corrupt, replaced meanwhile ...
                fail(str(e))

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
