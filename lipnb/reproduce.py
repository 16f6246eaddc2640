"""``python -m lipnb reproduce --profile smoke``: run the reproduction for a profile.

Until the notebooks exist this runs the evaluation half of the pipeline end to end:

- ``smoke`` (the embedded default, no data needed): writes a tiny deterministic DAVIS 2017
  layout example (a few synthetic videos of moving, overlapping shapes) under
  ``results/smoke/example/``;
- ``davis-cpu``: DAVIS 2016 val from ``../shared/data/davis2016`` (or ``LIPNB_DAVIS2016``);

then predicts it with the copy-first baseline (``results/<profile>/predictions/copy-first/``),
evaluates it, prints the tables and writes the CSV files to ``results/<profile>/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lipnb import paths

PROFILES = ("smoke", "davis-cpu", "paper")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=PROFILES, default="smoke", help="(default: %(default)s)")
    parser.add_argument("--results-dir", default=str(paths.RESULTS_DIR),
                        help="outputs go to RESULTS_DIR/<profile>/ (default: %(default)s)")


# ----------------------------------------------------------------------------- the example

# sequence -> objects; an object is (shape, size, start (y, x), velocity (dy, dx) per frame, colour)
EXAMPLE = {
    "crossing-discs": [("disc", 11, (20, 16), (1.0, 6.0), (200, 40, 40)),
                       ("disc", 9, (50, 110), (-1.0, -6.0), (40, 160, 220))],
    "box-and-disc": [("box", 12, (14, 20), (0.5, 4.0), (230, 200, 40)),
                     ("disc", 8, (10, 90), (3.5, -1.0), (60, 200, 80))],
    "three-shapes": [("box", 16, (36, 60), (0.0, 0.0), (150, 90, 200)),
                     ("disc", 7, (36, 8), (0.0, 7.0), (240, 120, 30)),
                     ("box", 6, (8, 120), (2.5, -3.0), (30, 220, 200))],
}
EXAMPLE_SIZE, EXAMPLE_FRAMES = (72, 128), 12


def _draw(ids: np.ndarray, image: np.ndarray, object_id: int, shape: str, size: int,
          center: tuple[float, float], colour: tuple[int, int, int]) -> None:
    yy, xx = np.mgrid[: ids.shape[0], : ids.shape[1]]
    if shape == "disc":
        inside = (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= size ** 2
    else:
        inside = (abs(yy - center[0]) <= size / 2) & (abs(xx - center[1]) <= size / 2)
    ids[inside], image[inside] = object_id, colour


def make_example(root: Path) -> Path:
    """Write the synthetic DAVIS 2017 layout example to ``root`` (deterministic); returns root."""
    from PIL import Image

    from lipnb.data.davis import write_mask

    height, width = EXAMPLE_SIZE
    for s, (name, objects) in enumerate(EXAMPLE.items()):
        rng = np.random.default_rng(s)
        background = (np.linspace(40, 120, width)[None, :, None] + np.linspace(0, 60, height)[:, None, None]
                      + rng.integers(0, 40, size=3)[None, None, :])
        for t in range(EXAMPLE_FRAMES):
            ids = np.zeros((height, width), dtype=np.uint8)
            image = background + rng.normal(0, 4, size=background.shape)
            for object_id, (shape, size, start, velocity, colour) in enumerate(objects, start=1):
                center = (start[0] + velocity[0] * t, start[1] + velocity[1] * t)
                _draw(ids, image, object_id, shape, size, center, colour)
            frame = root / "JPEGImages" / "480p" / name / f"{t:05d}.jpg"
            frame.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(frame, quality=90)
            write_mask(root / "Annotations" / "480p" / name / f"{t:05d}.png", ids)
    split = root / "ImageSets" / "2017" / "val.txt"
    split.parent.mkdir(parents=True, exist_ok=True)
    split.write_text("".join(f"{name}\n" for name in EXAMPLE))
    return root


# ----------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> int:
    from lipnb.data.davis import DavisDataset, DavisFormatError
    from lipnb.metrics.baselines import write_copy_first
    from lipnb.metrics.evaluation import evaluate
    from lipnb.metrics.tables import format_tables, write_csv

    out = Path(args.results_dir) / args.profile
    if args.profile == "smoke":
        dataset = DavisDataset(make_example(out / "example"), year="2017", split="val")
    elif args.profile == "davis-cpu":
        dataset = DavisDataset(paths.davis2016_root(), year="2016", split="val")
    else:
        print("error: the 'paper' profile needs DAVIS 2017 and the notebooks; not available yet",
              file=sys.stderr)
        return 2
    predictions = out / "predictions" / "copy-first"
    try:
        write_copy_first(dataset, predictions)
        evaluation = evaluate(dataset, predictions)
    except DavisFormatError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"copy-first baseline on {dataset}\n")
    print(format_tables(evaluation))
    for path in write_csv(evaluation, out):
        print(f"wrote {path}")
    return 0
