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
# # 01 · Pre-training on images (paper §4.1, §5.1)
#
# LIP is Mask R-CNN with a memory. A ResNet-FPN backbone (group normalisation everywhere) turns a
# frame into a feature pyramid; one convolutional GRU per pyramid level mixes each level with a
# hidden state carried from the previous frame; a bottom-up path augmentation passes the GRU
# outputs from fine to coarse levels; the RPN and the box, id and mask heads work on the result.
#
# Before the network sees any video it learns *what an object is* from still images. The paper
# pre-trains on COCO for 270K SGD iterations (lr 0.02, divided by 10 at 210K and 250K, momentum 0.9,
# weight decay 1e-4, 512 RoIs per image with one foreground for three background, shorter side
# drawn from 320..640). Still images have no past, so the Conv-GRU's input hidden state is held at
# zero: the memory module is trained as a per-frame feature transform and the id head classifies
# COCO categories.
#
# At `smoke` scale the images are procedural COCO-format pictures (shapes with texture, crowd
# regions, occlusions) and the network is ResNet-18 at a quarter of its width.

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
from lipnb.report import stages, figures
run = stages.Run.from_namespace(globals()).setup()  # seeds, threads, folders
print(run.describe())

# %% [markdown]
# ## The network, part by part (§3, Fig. 3)
# > "It is comprised of mainly three parts. They are the feature extraction backbone, the visual
# > memory module and the prediction heads." (§3)
#
# This profile's `LIP`, freshly initialised, and the parameters of each part in the order a frame
# walks through them. The teaching cells draw from their own random state (`teach.private_rng`)
# and write nothing into `out_dir`, so the numbers of the batch stages below do not depend on them.

# %%
import inspect

import torch

from lipnb.model import LIP, ConvGRUCell, LIPConfig
from lipnb.report import teach

with teach.private_rng():
    profile_model = LIP(LIPConfig.profile(run.profile))
parts = teach.parts_table(profile_model)
del profile_model  # only its shape was needed
print(f"profile {run.profile}: {parts.parameters.sum() / 1e6:.1f} M parameters")
parts

# %% [markdown]
# ## One image through the network
# The illustrations from here on use the `smoke` model (ResNet-18 at a quarter width, 64 channels),
# whatever the profile, so that they take a second on a CPU. One training image, at the test
# scale: the backbone gives the pyramid **P2-P6** (strides 4 to 64); the Conv-GRU of each level
# gives **H**; the bottom-up path augmentation gives **N**:
#
# > "we easily achieve it by down-sampling and addition operation with output features from
# > multi-level Conv-GRU module." (§3.2)
#
# Without learned layers, as in the authors' code: N2 = H2, `N(i+1) = H(i+1)/2 + resize(N(i), 1/2)/2`.
# All five levels of N feed the RPN; the four finest feed RoIAlign.

# %%
small = teach.small_model()
first, _ = stages.first_samples(run, "pretrain", n=1)
image, target = first[0]  # [3, H, W] in [0, 1], its boxes, labels and masks
shapes, ff = teach.walk_shapes(small, image)
shapes

# %% [markdown]
# ## Anchors
# > "RPN adopts 5 aspect ratios (0.2, 0.5, 1, 2, 5) and 5 scales (32², 64², 128², 256², 512²)." (§5.1)
#
# One anchor size per level, the five ratios at every location of that level's grid. The `smoke`
# profile halves the sizes (16 to 256) because its images are 128 px high. Below: P4's grid of
# anchor centres and the five anchors at its centre location.

# %%
fig = teach.plot_anchors(small, ff, level=2, image=teach.input_image(small, ff))

# %% [markdown]
# ## The convolutional GRU (§3.2, eq. 1)
# > "we further replace the bias term in Conv-GRU with the group normalization (GN) layer"
#
# $$\begin{aligned}
# z_t &= \sigma(\mathrm{GN}(W_{hz} * h_{t-1} + W_{xz} * x_t)) && \text{(1a) update gate}\\
# r_t &= \sigma(\mathrm{GN}(W_{hr} * h_{t-1} + W_{xr} * x_t)) && \text{(1b) reset gate}\\
# \tilde h_t &= \tanh(\mathrm{GN}(W_h * (r_t \odot h_{t-1}) + W_x * x_t)) && \text{(1c)}\\
# h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t && \text{(1d)}
# \end{aligned}$$
#
# `ConvGRUCell.forward` is these four lines; the three x-convolutions are stored stacked in `conv_x`,
# the two gate h-convolutions in `conv_h_zr`:

# %%
print(inspect.getsource(ConvGRUCell.forward))

# %% [markdown]
# A check against the equations: `teach.gru_by_the_equations` slices the weight tensors into
# W_xz, W_xr, W_x, W_hz, W_hr, W_h and computes (1a)-(1d) with plain `conv2d`. Input x: P2 of
# the image above; previous state h: the memory after one pass over the same image.

# %%
cell = small.memory.cells[0]
with torch.no_grad():
    x = small.backbone(ff.images.tensors)["0"]  # P2 [1, 64, h/4, w/4]
    h = ff.state[0]  # the state the next frame would receive
    ours, by_hand = cell(x, h), teach.gru_by_the_equations(cell, x, h)
for name, a, b in zip(("h'", "z", "r"), ours, by_hand):
    print(f"{name}: {tuple(a.shape)}  max |forward - equations| = {(a - b).abs().max():.2e}")
    assert torch.allclose(a, b, atol=1e-6)

# %% [markdown]
# ## Zero hidden state during pre-training (§4.1.1)
# > "As the training is on static images, we set hidden states to be zeros without update."
#
# With h = 0, (1a)-(1c) lose their h-terms and (1d) becomes h' = z ⊙ h̃: the Conv-GRU is a gated
# per-frame transform of x, and the memory's input weights (W_xz, W_xr, W_x) learn while the
# recurrent ones (W_hz, W_hr, W_h) receive no gradient. `LIP.hold_hidden_at_zero()` (what
# `use_static_memory` turns on) makes the memory ignore any state it is given:

# %%
with torch.no_grad():
    z_only, z, r = cell(x, None)
    print("h' == z * tanh(GN(W_x * x)):", torch.allclose(z_only, z * torch.tanh(cell.gn_h(cell.conv_x(x).chunk(3, 1)[2]))))
    small.hold_hidden_at_zero()
    static_with_state = small.features([image], ff.state).features["0"]
    static_without = small.features([image], None).features["0"]
    small.hold_hidden_at_zero(False)
    carried = small.features([image], ff.state).features["0"]
print("static memory ignores the state:", torch.equal(static_with_state, static_without))
print(f"a carried state changes N2 by up to {(carried - static_without).abs().max():.3f}")

# %% [markdown]
# ## The configuration
# `stages.train_config` is the profile's `TrainConfig` (`lipnb/train/config.py`) at this run's
# iterations; the learning-rate milestones keep their place in the schedule when the length changes.

# %%
cfg = stages.train_config(run, "pretrain")
{k: getattr(cfg, k) for k in ("data", "max_iters", "lr", "milestones", "batch_size", "rois_per_image",
                              "scales", "max_size", "use_static_memory")}

# %% [markdown]
# ## A batch
# The first samples the training stream will read (scale jitter and flips included): each image
# with its instance masks and the boxes derived from them. The id head learns the label drawn
# above each box.

# %%
samples, names = stages.first_samples(run, "pretrain", n=4)
fig = figures.plot_batch(samples, names)
figures.save(fig, run.figures / "batch_pretrain.png")

# %% [markdown]
# ## Training
# `lipnb.train.train` is the loop (`lipnb/train/loop.py`): SGD steps over the sample stream, a
# per-step log (`log.csv`) and an atomic checkpoint `work/pretrain/last.pt` that notebook 02 starts from.

# %%
summary = stages.train_stage(run, "pretrain")

# %% [markdown]
# ## Loss curves
# Total loss and one curve per head: RPN objectness and box regression, id classification, box
# regression, mask (smoothed over 5 steps, log scale).

# %%
fig = figures.plot_loss_curves({"pre-training": stages.training_log(run, "pretrain")})
figures.save(fig, run.figures / "loss_pretrain.png")
