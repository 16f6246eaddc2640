"""Write the five notebooks of the reproduction from this file (the source of their text).

    .venv/bin/python notebooks/make_notebooks.py

Notebooks are written without outputs or execution counts; the ``parameters`` cell carries
papermill's ``parameters`` tag and the ``smoke`` defaults of :mod:`lipnb.report.profiles`.
Edit the text here, not in the .ipynb files, and re-run.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from lipnb.report.profiles import parameters_cell

HERE = Path(__file__).resolve().parent

PARAMETERS_NOTE = """**Parameters.** papermill replaces this cell (`make reproduce PROFILE=...`, or
`papermill ... -p pretrain_iters 20`). The defaults are the `smoke` profile: procedural data,
CPU, minutes. `davis-cpu` reads COCO tiny and DAVIS 2016 from `../shared/data`; `paper` uses
the paper's settings on a GPU with COCO and DAVIS 2017 under `data/` (see `data/README.md`)."""

SETUP = """from lipnb.report import stages, figures
run = stages.Run.from_namespace(globals()).setup()  # seeds, threads, folders
print(run.describe())"""


def md(text: str):
    return new_markdown_cell(text.strip())


def code(text: str, tags: tuple = ()):
    cell = new_code_cell(text.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def head(title: str, paper: str) -> list:
    return [md(f"# {title}\n\n{paper}"), md(PARAMETERS_NOTE), code(parameters_cell("smoke"), ("parameters",)),
            md("Collect the parameters above into a `Run`: it seeds every generator, sets the number of torch "
               "threads and creates `out_dir/work` (checkpoints, predictions), `out_dir/evaluations` and "
               "`out_dir/figures`. Later notebooks find this one's results there."),
            code(SETUP)]


NOTEBOOKS = {
    "01_pretrain.ipynb": head("01 · Pre-training on images (paper §4.1, §5.1)", """
LIP is Mask R-CNN with a memory. A ResNet-FPN backbone (group normalisation everywhere) turns a
frame into a feature pyramid; one convolutional GRU per pyramid level mixes each level with a
hidden state carried from the previous frame; a bottom-up path augmentation passes the GRU
outputs from fine to coarse levels; the RPN and the box, id and mask heads work on the result.

Before the network sees any video it learns *what an object is* from still images. The paper
pre-trains on COCO for 270K SGD iterations (lr 0.02, divided by 10 at 210K and 250K, momentum 0.9,
weight decay 1e-4, 512 RoIs per image with one foreground for three background, shorter side
drawn from 320..640). Still images have no past, so the Conv-GRU's input hidden state is held at
zero: the memory module is trained as a per-frame feature transform and the id head classifies
COCO categories.

At `smoke` scale the images are procedural COCO-format pictures (shapes with texture, crowd
regions, occlusions) and the network is ResNet-18 at a quarter of its width.""") + [
        md("""## The configuration
`stages.train_config` is the profile's `TrainConfig` (`lipnb/train/config.py`) at this run's
iterations; the learning-rate milestones keep their place in the schedule when the length changes."""),
        code("""cfg = stages.train_config(run, "pretrain")
{k: getattr(cfg, k) for k in ("data", "max_iters", "lr", "milestones", "batch_size", "rois_per_image",
                              "scales", "max_size", "use_static_memory")}"""),
        md("""## A batch
The first samples the training stream will read (scale jitter and flips included): each image
with its instance masks and the boxes derived from them. The id head learns the label drawn
above each box."""),
        code("""samples, names = stages.first_samples(run, "pretrain", n=4)
fig = figures.plot_batch(samples, names)
figures.save(fig, run.figures / "batch_pretrain.png")"""),
        md("""## Training
`lipnb.train.train` is the loop (`lipnb/train/loop.py`): SGD steps over the sample stream, a
per-step log (`log.csv`) and an atomic checkpoint `work/pretrain/last.pt` that notebook 02 starts from."""),
        code("""summary = stages.train_stage(run, "pretrain")"""),
        md("""## Loss curves
Total loss and one curve per head: RPN objectness and box regression, id classification, box
regression, mask (smoothed over 5 steps, log scale)."""),
        code("""fig = figures.plot_loss_curves({"pre-training": stages.training_log(run, "pretrain")})
figures.save(fig, run.figures / "loss_pretrain.png")"""),
    ],
    "02_finetune_davis.ipynb": head("02 · Fine-tuning on videos (paper §4.1, §5.1)", """
Now the memory learns to *propagate*. The pre-trained network is trained on DAVIS training
videos with the hidden state carried from frame to frame. Every (sequence, object) pair of the
training set becomes one id, so the id head's last layer is replaced by one over all of them.
Boxes come from the masks, grown by 10% in width and height. Clips of 8 frames are drawn at
random, scaled like the images of pre-training, and also played backwards ("there is no causal
reasoning in the task"). Memory limits back-propagation through time to 4 frames: the gradient
is cut between the 4th and the 5th frame. The backbone stays frozen; 128 RoIs per image, lr 0.002
for 12K iterations, divided by 10 at 8K and 10K.

At `smoke` scale the videos are procedural DAVIS-format sequences built so that memory
matters: an object hides completely behind a pillar and re-appears, its identical twin stays
on the other side, and colours drift over time.""") + [
        md("## The configuration\nThe fine-tuning `TrainConfig`: it starts from notebook 01's checkpoint."),
        code("""cfg = stages.train_config(run, "finetune")
{k: getattr(cfg, k) for k in ("data", "init", "max_iters", "lr", "milestones", "clip_length", "bptt_cut",
                              "reverse_clips", "box_expand", "freeze", "rois_per_image", "use_static_memory")}"""),
        md("""## A clip
The first training clip: 8 frames of one sequence, its objects' masks and expanded boxes, each
labelled with its training id `sequence/object`."""),
        code("""samples, names = stages.first_samples(run, "finetune", n=1)
clip = samples[0]
print(clip["sequence"], "frames", clip["frame_indices"], "reversed" if clip["reversed"] else "forward")
fig = figures.plot_batch(list(zip(clip["frames"], clip["targets"])), names)
figures.save(fig, run.figures / "batch_finetune_clip.png")"""),
        md("""## Training
`LIP.forward_clip` runs the 8 frames with the state carried and detached after every 4th frame;
the loop averages the losses over the frames. The checkpoint `work/finetune/last.pt` is the
offline model of notebooks 03 and 05."""),
        code("""summary = stages.train_stage(run, "finetune")"""),
        md("## Loss curves\nPre-training (notebook 01) beside fine-tuning."),
        code("""fig = figures.plot_loss_curves({"pre-training": stages.training_log(run, "pretrain"),
                                "fine-tuning (dynamic memory)": stages.training_log(run, "finetune")})
figures.save(fig, run.figures / "loss_curves.png")"""),
    ],
    "03_online_inference.ipynb": head("03 · Online fine-tuning and inference (paper §3.3, §4.2, §5.1-5.2)", """
The semi-supervised task gives the masks of the first frame only. For each test sequence LIP
first *fine-tunes online* on that frame: the id head's last layer is re-initialised over
background plus this sequence's objects and trained with a focal loss, the box and mask heads
become class-specific by copying their foreground weights once per object, the backbone and the
Conv-GRU stay frozen, and a head stops learning once its loss falls under a threshold (at most
1000 iterations).

Then it runs frame by frame with the memory carried. Two constraints turn detections into
instances: *one maximum* (for each id, among at most 10 detections with id score above 0.2, keep
the best) and *location continuity* (if the id was found in the previous frame with a score above
0.4, drop candidates whose box overlaps that previous box by less than 0.3 IoU). Confident
detections fine-tune the id head again (at most 500 iterations, on cached RoI features) so that
id scores do not decay over time.

The masks are scored with the DAVIS measures: region similarity J (IoU), boundary accuracy F,
each with Mean, Recall and Decay. Table 1 uses the DAVIS 2016 protocol (one object per sequence:
like the paper, we detect all objects and score their union); Table 2 the DAVIS 2017 protocol
(every object on its own). Where DAVIS 2017 is not available (here), Table 2 runs on the
procedural multi-object videos and says so.""") + [
        md("""## Online settings
The paper's values (`lipnb/online/config.py`) with this run's iteration caps; the schedule of the
online fine-tuning keeps its shape when the cap changes."""),
        code("""online = stages.online_config(run)
{k: getattr(online, k) for k in ("max_iters", "lr", "milestones", "loss_weights", "stop_thresholds",
                                 "min_score", "top_k", "continuity_score", "continuity_iou", "refresh_iters")}"""),
        md("""## Table 1 data: the DAVIS 2016 protocol
`eval_set` names the data, the sequences and the prediction folder; `predict` runs
`lipnb.online.infer_davis` (one sequence after another, a fresh copy of the model each time)
and writes DAVIS-format PNGs; `evaluate` scores them with `lipnb.metrics` into
`evaluations/table1.json`."""),
        code("""t1 = stages.eval_set(run, "table1")
print(t1.label, t1.sequences)
pred1 = stages.predict(run, t1)
ev1 = stages.evaluate(run, t1, pred1, "table1")"""),
        md("""## Baselines on the same videos
Two rows that LIP has to beat, on exactly these sequences: copying the first mask to every frame,
and a model with no offline training at all: the frozen ImageNet features of EfficientNet-Lite0
(stride 4 to 32, upsampled and concatenated) and a 1x1 convolution fitted on frame 0's mask
(`lipnb/online/probe.py`), applied to every frame with no memory and no constraints."""),
        code("""for method in stages.BASELINES:
    stages.evaluate(run, t1, stages.baseline(run, t1, method), f"table1-{method}", method=method)"""),
        md("""## Table 2 data: the DAVIS 2017 protocol
When both tables use the same videos (`smoke`), the predictions are made once and scored twice."""),
        code("""t2 = stages.eval_set(run, "table2")
print(t2.label, t2.sequences)
pred2 = stages.predict(run, t2)
ev2 = stages.evaluate(run, t2, pred2, "table2")"""),
        md("Per object (J and F Mean, in [0, 1]):"),
        code("""import pandas as pd
pd.DataFrame(ev2["per_object"]).round(3)"""),
        md("""## Masks over frames (Figs. 1, 6, 7)
Ground truth above LIP's masks, frames spread over the sequence (index on top); then a few
sequences in the style of Fig. 1."""),
        code("""seq1 = t1.scored[stages.figure_sequences(t1, 1)[0]]
fig = figures.plot_masks_over_frames(seq1, {"ground truth": None, "LIP (this run)": pred1})
figures.save(fig, run.figures / "fig6_table1_masks_over_frames.png")
seq2 = t2.scored[stages.figure_sequences(t2, 1)[0]]
fig = figures.plot_masks_over_frames(seq2, {"ground truth": None, "LIP (this run)": pred2})
figures.save(fig, run.figures / "fig7_table2_masks_over_frames.png")"""),
        code("""fig = figures.plot_examples(t2.scored, stages.figure_sequences(t2, 3), pred2)
figures.save(fig, run.figures / "fig1_examples.png")"""),
        md("""## The Conv-GRU's gates
The update gate z (eq. 1a) decides, per position and channel, how much of the hidden state is
replaced by the new candidate: z near 1 means "take the new frame", near 0 "keep the memory".
Its channel mean on the finest level (P2), frame by frame. Online fine-tuning freezes the
Conv-GRU, so the offline model's gates are those of the online run."""),
        code("""model = stages.load_offline_model(run)
gates = figures.gate_maps(model, seq2)
fig = figures.plot_gate_maps(seq2, gates)
figures.save(fig, run.figures / "gates_update_z.png")"""),
        md("""## Viewer
A slider over the frames (JupyterLab): the frame, LIP's masks, the true masks and the gate map.
Below it, one frame drawn without widgets for readers of the executed notebook."""),
        code("""from lipnb.viz import SequenceViewer
viewer = SequenceViewer(seq2, pred2, gates)
viewer"""),
        code("""fig = viewer.render(seq2.num_frames // 2)"""),
    ],
    "04_ablation_zero_hidden.ipynb": head("04 · Ablation: zero hidden state vs dynamic memory (paper §5.3, Table 3)", """
Does the memory matter? The paper's ablation keeps everything of LIP (Mask R-CNN, the Conv-GRU
module and the path augmentation) but fixes the Conv-GRU's input hidden state to zero on every
frame, so no information flows from one frame to the next. This static model is fine-tuned on
the video data as if it were still images and run online in the same way; on DAVIS 2017 it loses
about 2 points of J&F (59.2 vs 61.1), mostly on sequences with large changes of appearance
(Fig. 8).

Here the same experiment runs at this profile's scale: a second fine-tuning from notebook 01's
checkpoint with the hidden state held at zero (same data, iterations and seed as notebook 02),
then online inference on the Table 2 videos with the state held at zero, compared with notebook
03's dynamic run. In the procedural videos an object hides behind a pillar and has a look-alike
twin, so only memory tells them apart.""") + [
        md("## Fine-tuning with the hidden state held at zero\n`TrainConfig.static_memory=True`; everything else as in notebook 02."),
        code("""summary = stages.train_stage(run, "finetune", zero_hidden=True)"""),
        code("""fig = figures.plot_loss_curves({"fine-tuning, dynamic memory": stages.training_log(run, "finetune"),
                                "fine-tuning, zero hidden state": stages.training_log(run, "finetune-zero")})
figures.save(fig, run.figures / "loss_dynamic_vs_zero.png")"""),
        md("## Online inference with the hidden state held at zero\nSame sequences, same online settings as Table 2."),
        code("""t2 = stages.eval_set(run, "table2")
pred_zero = stages.predict(run, t2, zero_hidden=True)
ev_zero = stages.evaluate(run, t2, pred_zero, "table3-zero", zero_hidden=True)
ev_dynamic = stages.load_evaluation(run, "table2")"""),
        code("""import pandas as pd
pd.DataFrame({"zero hidden state": ev_zero["global"], "dynamic memory": ev_dynamic["global"]}).T.mul(100).round(1)"""),
        md("""## On the Table 1 videos
Where Table 1 runs on other videos than Table 2 (`davis-cpu`: real DAVIS 2016 beside procedural
multi-object videos), the zero-hidden model runs on them too, so that the ablation is measured
on real video as well."""),
        code("""t1 = stages.eval_set(run, "table1")
if t1.key != t2.key:
    pred_zero_1 = stages.predict(run, t1, zero_hidden=True)
    ev_zero_1 = stages.evaluate(run, t1, pred_zero_1, "table3-zero-table1", zero_hidden=True)"""),
        md("""## With and without dynamic memory (Fig. 8)
The sequence where the dynamic memory gains most J: ground truth, the dynamic model, the
zero-hidden model, side by side."""),
        code("""name = stages.most_different(ev_dynamic, ev_zero)
seq = t2.scored[name]
fig = figures.plot_masks_over_frames(seq, {"ground truth": None, "dynamic memory": run.work / "online" / t2.key,
                                           "zero hidden state": pred_zero})
figures.save(fig, run.figures / "fig8_dynamic_vs_zero_hidden.png")"""),
        code("""if t1.key != t2.key:  # the same on the real videos of Table 1
    name = stages.most_different(stages.load_evaluation(run, "table1"), ev_zero_1)
    fig = figures.plot_masks_over_frames(t1.scored[name], {"ground truth": None, "dynamic memory": run.work / "online" / t1.key,
                                                           "zero hidden state": pred_zero_1})
    figures.save(fig, run.figures / "fig8_table1_dynamic_vs_zero_hidden.png")"""),
    ],
    "05_tables_figures.ipynb": head("05 · Tables and figures (paper Tables 1-3)", """
The paper's tables beside this run's measurements. Every paper row is copied from the paper
(`lipnb/report/paper_numbers.py`) and labelled `paper`; the rows labelled `this run` are
measured by notebooks 03 and 04 and read here from `evaluations/*.json`, which record the data,
protocol, sequences, checkpoint and iteration counts that produced them. At `smoke` or
`davis-cpu` scale the measured rows are not comparable with the paper's: the network is small,
trained for minutes instead of days, on different data; the notes above each table say at what
scale they were made. J and F are in percent.""") + [
        md("## Build and write the tables\n`tableN.csv` (one row per method) and `tableN.md` (with the notes) in `out_dir`, "
           "and `per_sequence.csv`: J and F of every object in every evaluation."),
        code("""from lipnb.report import tables
evaluations = stages.load_evaluations(run)  # evaluations/*.json by name: table1, table2, table3-zero, ...
built = tables.build_tables(evaluations, earlier=stages.earlier_run(run))  # + results/<profile>-scratch's row
written = tables.write_tables(built, run.out) + [tables.write_per_sequence(evaluations, run.out)]
[p.name for p in written]"""),
        md("## Table 1: DAVIS 2016 protocol"),
        code("""print("\\n".join(built["table1"][1]))
built["table1"][0]"""),
        md("## Table 2: DAVIS 2017 protocol"),
        code("""print("\\n".join(built["table2"][1]))
built["table2"][0]"""),
        md("## Table 3: zero hidden state vs dynamic memory"),
        code("""print("\\n".join(built["table3"][1]))
built["table3"][0]"""),
        md("## J&F Mean at a glance\nGrey: the paper's rows; orange: this run."),
        code("""fig = figures.plot_tables_summary(built)
figures.save(fig, run.figures / "tables_jf_mean.png")"""),
        md("## Figures of this run\nWritten by notebooks 01-05 into `out_dir/figures/`."),
        code("""sorted(p.name for p in run.figures.glob("*.png"))"""),
    ],
}


def write_all(folder: Path = HERE) -> list[Path]:
    written = []
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"}})
        for i, cell in enumerate(nb.cells):  # stable ids: regenerating changes nothing
            cell["id"] = f"{name[:2]}-{i:02d}"
        nbformat.validate(nb)
        path = folder / name
        nbformat.write(nb, str(path))
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_all():
        print(p)
