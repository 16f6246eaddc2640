# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,language_info,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
#   language_info:
#     codemirror_mode:
#       name: ipython
#       version: 3
#     file_extension: .py
#     mimetype: text/x-python
#     name: python
#     nbconvert_exporter: python
#     pygments_lexer: ipython3
#     version: 3.11.7
# ---

# %% [markdown]
# # 02 · Fine-tuning on videos (paper §4.1, §5.1)
#
# Now the memory learns to *propagate*. The pre-trained network is trained on DAVIS training
# videos with the hidden state carried from frame to frame. Every (sequence, object) pair of the
# training set becomes one id, so the id head's last layer is replaced by one over all of them.
# Boxes come from the masks, grown by 10% in width and height. Clips of 8 frames are drawn at
# random, scaled like the images of pre-training, and also played backwards ("there is no causal
# reasoning in the task"). Memory limits back-propagation through time to 4 frames: the gradient
# is cut between the 4th and the 5th frame. The backbone stays frozen; 128 RoIs per image, lr 0.002
# for 12K iterations, divided by 10 at 8K and 10K.
#
# At `smoke` scale the videos are procedural DAVIS-format sequences built so that memory
# matters: an object hides completely behind a pillar and re-appears, its identical twin stays
# on the other side, and colours drift over time.

# %% [markdown]
# **Parameters.** papermill replaces this cell (`make reproduce PROFILE=...`, or
# `papermill ... -p pretrain_iters 20`). The defaults are the `smoke` profile: procedural data,
# CPU, minutes. `davis-cpu` reads COCO tiny and DAVIS 2016 from `../shared/data`; `paper` uses
# the paper's settings on a GPU with COCO and DAVIS 2017 under `data/` (see `data/README.md`).

# %% tags=["parameters"]
profile = 'smoke'  # smoke | davis-cpu | davis-cpu-scratch | davis-gpu | paper
out_dir = '../results/smoke'  # results of this run; checkpoints go to out_dir/work
device = 'cpu'  # cpu | cuda | auto
threads = 1  # torch threads, 0 keeps the torch default
jobs = 1  # sequences segmented at once on a CPU, each in its own process
seed = 0  # every random draw of the run
coco = 'procedural'  # pre-training images: procedural | coco_tiny | coco_tiny+procedural | a COCO root
davis_train = 'procedural'  # fine-tuning videos: procedural | davis2016 | a DAVIS root
davis2016 = 'procedural'  # Table 1 set: procedural | davis2016 | a DAVIS 2016 root
davis2017 = 'procedural'  # Tables 2-3 set: procedural | a DAVIS 2017 root
frames_resolution = '480p'  # frames folder of the evaluation sets
num_sequences = 4  # 0 means the whole val split
pretrain_iters = 150  # paper: 270000
finetune_iters = 30  # paper: 12000
online_iters = 100  # paper: at most 1000 per sequence
online_lr = 0.001  # authors' code: 0.001
refresh_iters = 50  # paper: at most 500 per frame

# %% [markdown]
# Collect the parameters above into a `Run`: it seeds every generator, sets the number of torch threads and creates `out_dir/work` (checkpoints, predictions), `out_dir/evaluations` and `out_dir/figures`. Later notebooks find this one's results there.

# %%
from lipnb.report import figures
from lipnb.repro import stages
run = stages.Run.from_namespace(globals()).setup()  # seeds, threads, folders
print(run.describe())

# %% [markdown]
# ## The configuration
# The fine-tuning `TrainConfig`: it starts from notebook 01's checkpoint. Its network (`cfg.model`)
# is the pre-trained one, except where the profile changes a field for this stage: > "The ROI aligned
# feature resolution is 28x28 for mask head" (§5.1). `davis-cpu` pre-trains the mask head on RoIAlign 14
# (28x28 masks) to fit its time budget and fine-tunes the same weights on RoIAlign 28 (56x56 masks).
# For the same budget (not in the paper) its mask loss reads only some of each frame's positive RoIs
# (`mask_rois_per_image`; None reads them all, as Mask R-CNN does).

# %%
cfg = stages.train_config(run, "finetune")
{**{k: getattr(cfg, k) for k in ("data", "init", "max_iters", "lr", "milestones", "clip_length", "bptt_cut",
                                 "reverse_clips", "box_expand", "freeze", "rois_per_image", "use_static_memory")},
 **{k: cfg.model[k] for k in ("mask_roi_size", "mask_rois_per_image")}}

# %% [markdown]
# ## A clip
# The first training clip: 8 frames of one sequence, its objects' masks and expanded boxes, each
# labelled with its training id `sequence/object`. It starts with `warmup_frames` more frames
# (see "Warm-up frames" below), which only fill the memory.

# %%
samples, names = stages.first_samples(run, "finetune", n=1)
clip = samples[0]
print(clip["sequence"], "frames", clip["frame_indices"], "reversed" if clip["reversed"] else "forward")
fig = figures.plot_batch(list(zip(clip["frames"], clip["targets"])), names)
figures.save(fig, run.figures / "batch_finetune_clip.png")

# %% [markdown]
# ## Where back-propagation through time is cut (§5.1)
# > "Due to the GPU memory limitation, it only allows to train with maximum recurrence of 4. We
# > extend the length to 8 by stopping gradient back propagation between 4th and 5th frames."
#
# `LIP.forward_clip` (`lipnb/model/lip.py`, what the training loop calls) plays the clip frame by
# frame and detaches the state after every `bptt_cut`-th frame. Here it runs on the clip above with
# the `smoke` model (freshly initialised: this is about where gradients flow, not about their
# size); two forward hooks keep each frame's loss L_t and its Conv-GRU output H_t (P2) apart,
# which `forward_clip` itself averages. The matrix shows ||dL_t / dH_s||: how strongly the loss of
# frame t reaches the memory of frame s. Frame t's loss reaches frames s ≤ t of its own 4-frame
# block and nothing before the cut (the red lines). The table splits the gradient of each L_t
# over the parts of the network: the backbone is frozen in fine-tuning (`freeze=("backbone",)`),
# everything else learns from every frame.

# %%
import pandas as pd
import torch

from lipnb.model import LIP
from lipnb.profiles import model_config

with torch.random.fork_rng(devices=[]):  # the run's generators stay as run.setup() left them
    torch.manual_seed(0)
    small = LIP(model_config("smoke", num_ids=len(names))).freeze(*cfg.freeze).train()
    frame_losses, hidden = [], []
    hooks = [small.register_forward_hook(lambda m, i, out: frame_losses.append(sum(out[0].values()))),
             small.memory.register_forward_hook(lambda m, i, out: hidden.append(out[0][0]))]
    w = cfg.clip_warmup  # the warm-up frames carry no loss: the 8 frames after them
    small.forward_clip([[f] for f in clip["frames"][w:]], [[t] for t in clip["targets"][w:]], bptt_cut=cfg.bptt_cut)
    for hook in hooks:
        hook.remove()
parts = {p: [q for q in getattr(small, p).parameters() if q.requires_grad] for p in ("backbone", "memory", "rpn", "roi_heads")}
T, reach, per_part = len(frame_losses), [], []
for loss in frame_losses:
    grads = torch.autograd.grad(loss, hidden + sum(parts.values(), []), retain_graph=True, allow_unused=True)
    reach.append([0.0 if g is None else float(g.norm()) for g in grads[:T]])
    rest = iter(grads[T:])
    per_part.append([sum(float(g.norm()) ** 2 for g in [next(rest) for _ in ps] if g is not None) ** 0.5
                     for ps in parts.values()])
index = [f"L_{t}" for t in range(1, T + 1)]
fig = figures.plot_reach(pd.DataFrame(reach, index=index, columns=[f"H_{s}" for s in range(1, T + 1)]), cfg.bptt_cut)
pd.DataFrame(per_part, index=index, columns=[p + ("" if ps else " (frozen)") for p, ps in parts.items()]).round(4)

# %% [markdown]
# ## Warm-up frames (not in the paper)
# A clip's first frame starts from the zero state, so its features differ from those of every
# later frame: with an update gate z near 0.5, frame 0's state is z ⊙ h̃, about half the size of a
# filled memory. Trained only on 8-frame clips, the heads would spend an eighth of their training on
# that special case, and online fine-tuning (notebook 03), which sees frame 0 only, on nothing
# else. So each clip starts with `warmup_frames` frames that run the backbone and the Conv-GRU
# under `torch.no_grad()` and only hand their state on (`LIP.warm_up`); the losses start after
# them. The authors' code warms its sequences up the same way (`SEQUENCE_WARMUP`); the paper is
# silent. A model whose state is held at zero (Table 3) has nothing to warm up and skips them.
# Below, `LIP.warm_up` carries the freshly initialised model's state through the clip one frame at
# a time: the size of the state it hands on, relative to frame 0's.

# %%
print(f"warm-up frames per clip: {cfg.clip_warmup} (then {cfg.clip_length} frames with losses)")
state, sizes = None, []
for frame in clip["frames"]:
    state = small.warm_up([[frame]], state)  # no loss, no gradient: only the state moves on
    sizes.append(float(state[0].norm()))  # P2
print("||state_t|| / ||state_0||:", "  ".join(f"{s / sizes[0]:.2f}" for s in sizes))

# %% [markdown]
# ## Reversed clips (§5.1)
# > "The sequences are randomly shuffled and scaled as in pre-training stage. As there is no causal
# > reasoning in the task, we reverse each sequence for more training data."
#
# The stream draws a sequence, a start frame and a direction for every clip. The first few clips
# it will read, and the frames of the first one played backwards (frame indices on top):

# %%
clips, _ = stages.first_samples(run, "finetune", n=6)
for c in clips:
    print(f"{c['sequence']:>24}  frames {c['frame_indices']}  {'reversed' if c['reversed'] else 'forward'}")
back = next((c for c in clips if c["reversed"]), None)
if back is not None:
    fig = figures.plot_frames(back["frames"], [str(i) for i in back["frame_indices"]])

# %% [markdown]
# ## Training
# `LIP.forward_clip` runs the 8 frames with the state carried and detached after every 4th frame;
# the loop averages the losses over the frames. The checkpoint `work/finetune/last.pt` is the
# offline model of notebooks 03 and 05.

# %%
summary = stages.train_stage(run, "finetune")

# %% [markdown]
# ## Loss curves
# Pre-training (notebook 01) beside fine-tuning.

# %%
fig = figures.plot_loss_curves({"pre-training": stages.training_log(run, "pretrain"),
                                "fine-tuning (dynamic memory)": stages.training_log(run, "finetune")})
figures.save(fig, run.figures / "loss_curves.png")

# %% [markdown]
# ## Did the memory learn?
# Three measures per pyramid level (`lipnb.lab.memory_stats`), on the first frames of a Table 1
# sequence with the state carried:
# - the gates: z = 0.5 everywhere with a small spread would make the memory a fixed running average
#   with a one-frame half-life; a memory that learned spreads its gates;
# - how far fine-tuning moved the hidden-state weights W_hz, W_hr, W_h from the pre-trained model
#   (pre-training feeds the zero state, so they learn nothing there; they still get weight decay,
#   as every weight does, because the zeros are fed as tensors);
# - the size of the features the heads see once the memory is filled (frames 5 on) over frame 0's.

# %%
import json

import pandas as pd

from lipnb.online import load_model
from lipnb.lab import memory_stats

t1 = stages.eval_set(run, "table1")
finetuned, pretrained = stages.load_offline_model(run), load_model(run.checkpoint("pretrain"))
stats = memory_stats.memory_statistics(finetuned, t1.inferred[t1.sequences[0]], last=24)
moved = memory_stats.weight_change(pretrained, finetuned)
(run.out / "memory_statistics.json").write_text(json.dumps(
    {"sequence": t1.sequences[0], "gates_and_features": stats, "weights_moved_by_finetuning": moved}, indent=1))
fig = memory_stats.plot_memory_statistics({"this run": (stats, moved)})
figures.save(fig, run.figures / "memory_statistics.png")
pd.DataFrame(stats).merge(pd.DataFrame(moved), on="level").round(3)

# %% [markdown]
# Why z's mean and spread hardly tell whether the gates learned: eq. 1a puts a GroupNorm where the
# bias was, and a GroupNorm gives each group of channels' pre-activation mean 0 and variance 1
# before its own scale γ and shift β. With γ = 1 and β = 0 the gates stay near sigmoid(N(0, 1)),
# 0.50 ± 0.21, whatever the convolution weights; the weights only choose *where* z is high. So we
# also look at γ and β of the z and r norms, and at where z is high: its mean on the true object's
# pixels minus its mean on the background, before and after fine-tuning (both with the state
# carried). A gate that learned to refresh the memory where the object is makes that difference grow.

# %%
seq = t1.inferred[t1.sequences[0]]
pretrained.memory.static = False  # play the pre-trained weights as fine-tuning starts them: state carried
where = {label: memory_stats.gate_selectivity(m, seq, last=24)
         for label, m in (("pre-trained", pretrained), ("fine-tuned", finetuned))}
pd.DataFrame(memory_stats.gate_norms(finetuned)).assign(
    **{f"z object - background, {label}": [r["z_object_minus_background"] for r in rows]
       for label, rows in where.items()}).round(3)
