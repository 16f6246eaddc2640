"""The notebooks' parameters per profile: what papermill injects into each ``parameters`` cell.

Every notebook has the same parameters cell (the ``smoke`` values below are its embedded
defaults), so one dict drives the whole reproduction::

    params = notebook_parameters("davis-cpu", out_dir="results/davis-cpu", pretrain_iters=20)

Data values are a keyword or a folder: ``procedural`` (generated on first use),
``coco_tiny`` / ``davis2016`` (the shared development copies, see :mod:`lipnb.paths`), or a
path (relative paths are tried as given, then against the repository root).
"""

from __future__ import annotations

PROFILES = ("smoke", "davis-cpu", "davis-cpu-scratch", "davis-gpu", "paper")

COMMON = dict(
    profile="smoke",
    out_dir="../results/smoke",  # notebooks run from notebooks/; the runner passes an absolute path
    device="cpu",  # "cpu", "cuda" or "auto"
    threads=1,  # torch.set_num_threads (0: leave torch's default); 1 is fastest on 2 shared cores
    seed=0,
    # --- data ---
    coco="procedural",  # pre-training images (COCO format)
    davis_train="procedural",  # fine-tuning videos (DAVIS format)
    davis2016="procedural",  # Table 1 (DAVIS 2016 protocol); procedural: its videos scored as one object
    davis2017="procedural",  # Table 2 and 3 (DAVIS 2017 protocol); procedural where DAVIS 2017 is absent
    frames_resolution="480p",  # frames folder of the evaluation sets (annotations are always 480p)
    num_sequences=4,  # evaluation sequences per set (0: the whole val split)
    # --- iterations ---
    pretrain_iters=150,  # COCO-style pre-training steps (paper: 270K)
    finetune_iters=30,  # DAVIS fine-tuning clips (paper: 12K), also for the zero-hidden model of Table 3
    online_iters=100,  # first-frame online fine-tuning iterations per sequence (paper: at most 1000)
    online_lr=0.001,  # online fine-tuning learning rate (authors' code; the paper is silent)
    refresh_iters=50,  # id-head refresh iterations per frame (paper: at most 500)
)

PROFILE_PARAMETERS = {
    "smoke": dict(COMMON),
    "davis-cpu": dict(
        COMMON, profile="davis-cpu", out_dir="../results/davis-cpu", threads=2, coco="coco_tiny+procedural",
        davis_train="davis2016", davis2016="davis2016", davis2017="procedural", frames_resolution="240p",
        num_sequences=0, pretrain_iters=3000, finetune_iters=400, online_iters=300, online_lr=0.01, refresh_iters=50),
    "davis-cpu-scratch": dict(
        COMMON, profile="davis-cpu-scratch", out_dir="../results/davis-cpu-scratch", threads=2,
        coco="coco_tiny+procedural", davis_train="davis2016", davis2016="davis2016", davis2017="procedural",
        frames_resolution="240p", num_sequences=0, pretrain_iters=600, finetune_iters=200, online_iters=300,
        online_lr=0.01, refresh_iters=50),
    "davis-gpu": dict(
        COMMON, profile="davis-gpu", out_dir="../results/davis-gpu", device="cuda", threads=0,
        coco="coco_tiny+procedural", davis_train="davis2016", davis2016="davis2016", davis2017="procedural",
        frames_resolution="240p", num_sequences=0, pretrain_iters=2000, finetune_iters=1500, online_iters=300, online_lr=0.01,
        refresh_iters=100),
    "paper": dict(
        COMMON, profile="paper", out_dir="../results/paper", device="cuda", threads=0, coco="data/coco",
        davis_train="data/davis2017", davis2016="data/davis2016", davis2017="data/davis2017",
        num_sequences=0, pretrain_iters=270_000, finetune_iters=12_000, online_iters=1000, refresh_iters=500),
}


def notebook_parameters(profile: str, **overrides) -> dict:
    """The parameters of ``profile`` with ``overrides`` (unknown names raise ``KeyError``)."""
    if profile not in PROFILE_PARAMETERS:
        raise ValueError(f"unknown profile {profile!r}; choose from {list(PROFILES)}")
    params = dict(PROFILE_PARAMETERS[profile])
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise KeyError(f"unknown notebook parameters {unknown}; known: {sorted(params)}")
    params.update(overrides)
    return params


def parameters_cell(profile: str = "smoke") -> str:
    """Source of the ``parameters`` cell (the embedded defaults), one commented line per value."""
    notes = {
        "profile": "smoke | davis-cpu | davis-cpu-scratch | davis-gpu | paper", "out_dir": "results of this run; checkpoints go to out_dir/work",
        "device": "cpu | cuda | auto", "threads": "torch threads, 0 keeps the torch default",
        "seed": "every random draw of the run", "coco": "pre-training images: procedural | coco_tiny | coco_tiny+procedural | a COCO root",
        "davis_train": "fine-tuning videos: procedural | davis2016 | a DAVIS root",
        "davis2016": "Table 1 set: procedural | davis2016 | a DAVIS 2016 root",
        "davis2017": "Tables 2-3 set: procedural | a DAVIS 2017 root",
        "frames_resolution": "frames folder of the evaluation sets", "num_sequences": "0 means the whole val split",
        "pretrain_iters": "paper: 270000", "finetune_iters": "paper: 12000",
        "online_iters": "paper: at most 1000 per sequence", "online_lr": "authors' code: 0.001", "refresh_iters": "paper: at most 500 per frame",
    }
    lines = []
    for key, value in PROFILE_PARAMETERS[profile].items():
        lines.append(f"{key} = {value!r}  # {notes[key]}")
    return "\n".join(lines)
