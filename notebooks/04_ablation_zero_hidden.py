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
# # 04 · Ablation: zero hidden state vs dynamic memory (paper §5.3, Table 3)
#
# Does the memory matter? The paper's ablation keeps everything of LIP (Mask R-CNN, the Conv-GRU
# module and the path augmentation) but fixes the Conv-GRU's input hidden state to zero on every
# frame, so no information flows from one frame to the next. This static model is fine-tuned on
# the video data as if it were still images and run online in the same way; on DAVIS 2017 it loses
# about 2 points of J&F (59.2 vs 61.1), mostly on sequences with large changes of appearance
# (Fig. 8).
#
# Here the same experiment runs at this profile's scale: a second fine-tuning from notebook 01's
# checkpoint with the hidden state held at zero (same data, iterations and seed as notebook 02),
# then online inference on the Table 2 videos with the state held at zero, compared with notebook
# 03's dynamic run. In the procedural videos an object hides behind a pillar and has a look-alike
# twin, so only memory tells them apart.

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
# ## What the memory does, frame by frame (eq. 1a, 1d)
# > "We first evaluate the static model by fixing input hidden states (h_{t−1}) to zeros for
# > Conv-GRU module." (§5.3)
#
# The update gate z decides, per position and channel, how much of the hidden state is replaced:
# h_t = (1 - z) ⊙ h_{t-1} + z ⊙ h̃_t. With the state carried, z can stay low where the past
# already holds the object and rise where something changes (an object re-appearing, a new
# colour). With the input state held at zero there is no past to keep, h_t = z ⊙ h̃_t, and z is
# a per-frame feature gate. Below: notebook 02's model on the first frames of a Table 2
# sequence, its mean z on P2 with the state carried and with it held at zero (the same weights;
# the model fine-tuned with zero state comes next), beside the true masks. `gate_maps`
# (`lipnb/lab/memory_stats.py`) plays the frames through the model with its state carried
# (`lipnb.online.inference.carried_features`) and averages each frame's z over its channels;
# `hold_hidden_at_zero()` is the static model's switch.

# %%
import copy

from lipnb.lab.memory_stats import gate_maps

t2 = stages.eval_set(run, "table2")
seq = t2.scored[t2.sequences[0]]
dynamic_model = stages.load_offline_model(run)
zero_model = copy.deepcopy(dynamic_model).hold_hidden_at_zero()
last = min(seq.num_frames - 1, 11)
z_dynamic = gate_maps(dynamic_model, seq, last=last)  # per frame, the channel mean of z on P2
z_zero = gate_maps(zero_model, seq, last=last)
fig = figures.plot_gates_dynamic_vs_zero(seq, z_dynamic, z_zero)
print("frame:                 ", "  ".join(f"{i:5d}" for i in range(last + 1)))
print("mean z, dynamic memory:", "  ".join(f"{m.mean():.3f}" for m in z_dynamic))
print("mean z, zero state:    ", "  ".join(f"{m.mean():.3f}" for m in z_zero))

# %% [markdown]
# ## Fine-tuning with the hidden state held at zero
# `TrainConfig.static_memory=True`; everything else as in notebook 02.

# %%
summary = stages.train_stage(run, "finetune", zero_hidden=True)

# %%
fig = figures.plot_loss_curves({"fine-tuning, dynamic memory": stages.training_log(run, "finetune"),
                                "fine-tuning, zero hidden state": stages.training_log(run, "finetune-zero")})
figures.save(fig, run.figures / "loss_dynamic_vs_zero.png")

# %% [markdown]
# ## Online inference with the hidden state held at zero
# Same sequences as Table 2. The online recipe is chosen for this model as notebook 03 chose it
# for the dynamic one: the same candidates (minus frame 0's warm-up, which cannot change a model
# whose state is zero) on the same training sequences.

# %%
from lipnb.lab import recipes

online_zero = recipes.choose(run, zero_hidden=True)
recipes.table(run, zero_hidden=True)

# %%
t2 = stages.eval_set(run, "table2")
pred_zero = stages.predict(run, t2, recipes.chosen(run, zero_hidden=True), zero_hidden=True)
ev_zero = stages.evaluate(run, t2, pred_zero, "table3-zero", zero_hidden=True)
ev_dynamic = stages.load_evaluation(run, "table2")

# %%
import pandas as pd
pd.DataFrame({"zero hidden state": ev_zero["global"], "dynamic memory": ev_dynamic["global"]}).T.mul(100).round(1)

# %% [markdown]
# ## On the Table 1 videos
# Where Table 1 runs on other videos than Table 2 (`davis-cpu`: real DAVIS 2016 beside procedural
# multi-object videos), the zero-hidden model runs on them too, so that the ablation is measured
# on real video as well.

# %%
t1 = stages.eval_set(run, "table1")
if t1.key != t2.key:
    pred_zero_1 = stages.predict(run, t1, recipes.chosen(run, zero_hidden=True), zero_hidden=True)
    ev_zero_1 = stages.evaluate(run, t1, pred_zero_1, "table3-zero-table1", zero_hidden=True)

# %% [markdown]
# ## The memory dial (not in the paper)
# The dynamic model again, with the state it carries to the next frame multiplied by α:
# α = 1 is Table 2's run, α = 0 the same weights with the zero state on every frame, and in
# between the memory is faded. If the curve peaks between the ends, some memory helps even where
# all of it does not; the dashed line is the model fine-tuned with the zero state. On the Table 2
# videos, whose twins, occlusions and exits are where only memory can tell objects apart.
# One seed's curve is noisy: `python -m lipnb ablation --dial` runs it for several seeds
# (`results/<profile>-ablation/ablation_dial.md`).

# %%
from lipnb.lab import dial

alphas = dial.run_dial(run, t2)
fig = dial.plot_dial(alphas, zero=ev_zero)
figures.save(fig, run.figures / "memory_dial.png")
alphas

# %% [markdown]
# ## With and without dynamic memory (Fig. 8)
# The sequence where the dynamic memory gains most J: ground truth, the dynamic model, the
# zero-hidden model, side by side.

# %%
name = stages.most_different(ev_dynamic, ev_zero)
seq = t2.scored[name]
fig = figures.plot_masks_over_frames(seq, {"ground truth": None, "dynamic memory": run.work / "online" / t2.key,
                                           "zero hidden state": pred_zero})
figures.save(fig, run.figures / "fig8_dynamic_vs_zero_hidden.png")

# %%
if t1.key != t2.key:  # the same on the real videos of Table 1
    name = stages.most_different(stages.load_evaluation(run, "table1"), ev_zero_1)
    fig = figures.plot_masks_over_frames(t1.scored[name], {"ground truth": None, "dynamic memory": run.work / "online" / t1.key,
                                                           "zero hidden state": pred_zero_1})
    figures.save(fig, run.figures / "fig8_table1_dynamic_vs_zero_hidden.png")
