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
# ## The network, part by part (§3, Fig. 3)
# > "It is comprised of mainly three parts. They are the feature extraction backbone, the visual
# > memory module and the prediction heads." (§3)
#
# This profile's `LIP` (`lipnb/model/lip.py`), freshly initialised, and the parameters of each part
# in the order a frame walks through them. The teaching cells draw their random numbers inside
# `torch.random.fork_rng()`, so the generators seeded by `run.setup()` come out of them untouched
# (the stage functions seed their own draws as well) and they write nothing into `out_dir`: the
# batch stages below compute the same numbers with or without them.

# %%
import pandas as pd
import torch

from lipnb.model import LIP, ConvGRUCell
from lipnb.profiles import model_config

with torch.random.fork_rng(devices=[]):
    torch.manual_seed(0)
    profile_model = LIP(model_config(run.profile))
rh = profile_model.roi_heads
parts = {"backbone: trunk (ResNet / EfficientNet)": profile_model.backbone.body,
         "backbone: FPN (P2..P6)": profile_model.backbone.fpn,
         "visual memory: Conv-GRU per level (eq. 1)": profile_model.memory,
         "path augmentation (N2..N6)": profile_model.path_aug,
         "RPN (5 ratios per location)": profile_model.rpn,
         "box head (4 conv + 1 fc)": rh.box_head, "id head (last linear layer + shortcut)": rh.id_head,
         "box predictor (+ shortcut)": rh.box_predictor, "mask head (4 conv)": rh.mask_head,
         "mask predictor (deconv, 1x1, + shortcut)": rh.mask_predictor}
parts = pd.DataFrame([(name, sum(p.numel() for p in part.parameters()) if part is not None else 0)
                      for name, part in parts.items()], columns=["part", "parameters"])
assert parts.parameters.sum() == sum(p.numel() for p in profile_model.parameters())  # nothing left out
del profile_model, rh  # only its shape was needed
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
# All five levels of N feed the RPN; the four finest feed RoIAlign. `LIP.features` runs the walk
# once; forward hooks on the backbone and the memory keep P and H on the way.

# %%
with torch.random.fork_rng(devices=[]):
    torch.manual_seed(0)
    small = LIP(model_config("smoke", num_ids=8)).eval()
first, _ = stages.first_samples(run, "pretrain", n=1)
image, target = first[0]  # [3, H, W] in [0, 1], its boxes, labels and masks
seen = {}
hooks = [small.backbone.register_forward_hook(lambda m, i, out: seen.update(P=list(out.values()))),
         small.memory.register_forward_hook(lambda m, i, out: seen.update(H=out[0]))]
with torch.no_grad():
    ff = small.features([image])  # transform (resize, normalise, pad) -> P -> H -> N
for hook in hooks:
    hook.remove()
N = list(ff.features.values())
pd.DataFrame([(f"P{l + 2}", f"1/{2 ** (l + 2)}", tuple(p.shape), tuple(h.shape), tuple(n.shape))
              for l, (p, h, n) in enumerate(zip(seen["P"], seen["H"], N))],
             columns=["level", "stride", "P (FPN)", "H (Conv-GRU)", "N (path aug.)"])

# %% [markdown]
# ## Anchors
# > "RPN adopts 5 aspect ratios (0.2, 0.5, 1, 2, 5) and 5 scales (32², 64², 128², 256², 512²)." (§5.1)
#
# One anchor size per level, the five ratios at every location of that level's grid. The `smoke`
# profile halves the sizes (16 to 256) because its images are 128 px high. torchvision's
# `AnchorGenerator` (in `small.rpn`) makes them for all levels at once; below, P4's grid of anchor
# centres and the five anchors at its centre location, over the image as the network saw it.

# %%
generator, level = small.rpn.anchor_generator, 2  # 0 = P2
anchors = generator(ff.images, N)[0]  # [sum over levels of H_l * W_l * A, 4], x1y1x2y2
per_level = [n.shape[-2] * n.shape[-1] * a for n, a in zip(N, generator.num_anchors_per_location())]
grid = anchors.split(per_level)[level].view(*N[level].shape[-2:], -1, 4)  # [H_l, W_l, A, 4]
height, width = ff.image_sizes[0]  # before padding
mean, std = (torch.tensor(v)[:, None, None] for v in (small.transform.image_mean, small.transform.image_std))
picture = ((ff.images.tensors[0] * std + mean)[:, :height, :width].clamp(0, 1).permute(1, 2, 0) * 255).byte().numpy()
fig = figures.plot_anchors(picture, grid, small.cfg.aspect_ratios, small.cfg.anchor_sizes[level], f"P{level + 2}")

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
# `ConvGRUCell.forward` (`lipnb/model/memory.py`) is these four lines; the three x-convolutions are
# stored stacked in `conv_x`, the two gate h-convolutions in `conv_h_zr`:

# %%
import inspect

print(inspect.getsource(ConvGRUCell.forward))

# %% [markdown]
# The cell of P2 on the image above, x = P2 and h = the state the next frame would receive. The
# weight tensors of eq. 1, sliced out of the stacked convolutions; then (1d) read backwards: the
# cell returns h' and the gates, so h̃ = (h' - (1 - z) ⊙ h) / z, and a tanh (1c) must lie in [-1, 1].

# %%
cell = small.memory.cells[0]
W_xz, W_xr, W_x = cell.conv_x.weight.chunk(3, dim=0)
W_hz, W_hr, W_h = *cell.conv_h_zr.weight.chunk(2, dim=0), cell.conv_h.weight
for name, W in dict(W_xz=W_xz, W_xr=W_xr, W_x=W_x, W_hz=W_hz, W_hr=W_hr, W_h=W_h).items():
    print(f"{name}: {tuple(W.shape)}", end="   ")
with torch.no_grad():
    x, h = seen["P"][0], ff.state[0]  # P2 [1, 64, h/4, w/4] and the carried state
    h_new, z, r = cell(x, h)
open_ = z > 0.01  # where z is not ~0 (there h' = h and h~ cannot be read back)
h_tilde = ((h_new - (1 - z) * h) / z)[open_]  # (1d) solved for the candidate
print(f"\nz in [{z.min():.2f}, {z.max():.2f}], r in [{r.min():.2f}, {r.max():.2f}], "
      f"h~ = (h' - (1 - z) h) / z in [{h_tilde.min():.3f}, {h_tilde.max():.3f}] ({open_.float().mean():.0%} of z > 0.01)")
assert h_tilde.abs().max() <= 1 + 1e-4

# %% [markdown]
# ## Zero hidden state during pre-training (§4.1.1)
# > "As the training is on static images, we set hidden states to be zeros without update."
#
# With h = 0, (1a)-(1c) lose their h-terms and (1d) becomes h' = z ⊙ h̃: the Conv-GRU is a gated
# per-frame transform of x, and the memory's input weights (W_xz, W_xr, W_x) learn while the
# recurrent ones (W_hz, W_hr, W_h) receive no gradient. The cell's `h=None` is that zero state;
# `LIP.hold_hidden_at_zero()` (what `use_static_memory` turns on) makes the memory ignore any
# state it is given:

# %%
with torch.no_grad():
    zero_state, z0, _ = cell(x, torch.zeros_like(h))
    print("h=None is the zero state:", torch.allclose(cell(x, None)[0], zero_state, atol=1e-6),
          "  |h'| <= z (h' = z * h~, |h~| <= 1):", bool((zero_state.abs() <= z0 + 1e-6).all()))
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
