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
# # 05 · Tables and figures (paper Tables 1-3)
#
# The paper's tables beside this run's measurements. Every paper row is copied from the paper
# (`lipnb/report/paper_numbers.py`) and labelled `paper`; the rows labelled `this run` are
# measured by notebooks 03 and 04 and read here from `evaluations/*.json`, which record the data,
# protocol, sequences, checkpoint and iteration counts that produced them. At `smoke` or
# `davis-cpu` scale the measured rows are not comparable with the paper's: the network is small,
# trained for minutes instead of days, on different data; the notes above each table say at what
# scale they were made. J and F are in percent.

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
# ## Build and write the tables
# `tableN.csv` (one row per method) and `tableN.md` (with the notes) in `out_dir`, and `per_sequence.csv`: J and F of every object in every evaluation.

# %%
from lipnb.report import tables
evaluations = stages.load_evaluations(run)  # evaluations/*.json by name: table1, table2, table3-zero, ...
built = tables.build_tables(evaluations, earlier=stages.earlier_run(run))  # + results/<profile>-scratch's row
written = tables.write_tables(built, run.out) + [tables.write_per_sequence(evaluations, run.out)]
[p.name for p in written]

# %% [markdown]
# ## How to read the tables
# Every row says where its numbers come from in its `Source` column:
#
# - **`paper`**: copied from the paper (`lipnb/report/paper_numbers.py`): LIP and the methods it
#   compares with, measured on DAVIS 2016 / 2017 val with ResNet-101, 270K + 12K iterations on GPUs.
# - **`this run`**: measured by notebooks 03 and 04 of *this* run, at this profile's scale. In
#   Table 1 this includes two baselines on the same videos: `copy-first` (frame 0's mask copied to
#   every frame: what a method gains over standing still) and `probe` (frozen ImageNet features of
#   EfficientNet-Lite0 and a 1x1 convolution fitted on frame 0's mask: no offline training, no
#   memory).
# - **`earlier run (commit ...)`**: Table 1 may also show a from-scratch reference run of the same
#   profile (`results/<profile>-scratch`), when it scored the same sequences.
#
# J (region IoU) and F (boundary accuracy) are in percent: Mean, Recall (share of objects above 0.5)
# and Decay (first quarter of the sequence minus last quarter: lower is better). A `paper` row and
# a `this run` row are comparable only when the scale below matches the paper's; at `smoke` or
# `davis-cpu` scale they are not. The scale of each measured row, from its evaluation file:

# %%
import pandas as pd

pd.DataFrame([{"evaluation": name, "method": ev["method"], "memory": ev["memory"], "protocol": ev["protocol"],
               "data": ev["data"], "sequences": len(ev["sequences"]), **ev["iterations"]}
              for name, ev in evaluations.items()]).set_index("evaluation")

# %% [markdown]
# ## Table 1: DAVIS 2016 protocol

# %%
print("\n".join(built["table1"][1]))
built["table1"][0]

# %% [markdown]
# ## Table 2: DAVIS 2017 protocol

# %%
print("\n".join(built["table2"][1]))
built["table2"][0]

# %% [markdown]
# ## Table 3: zero hidden state vs dynamic memory

# %%
print("\n".join(built["table3"][1]))
built["table3"][0]

# %% [markdown]
# ## J&F Mean at a glance
# Grey: the paper's rows; orange: this run.

# %%
fig = figures.plot_tables_summary(built)
figures.save(fig, run.figures / "tables_jf_mean.png")

# %% [markdown]
# ## Figures of this run
# Written by notebooks 01-05 into `out_dir/figures/`.

# %%
sorted(p.name for p in run.figures.glob("*.png"))
