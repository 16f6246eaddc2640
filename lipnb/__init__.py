"""lipnb: the reproducible companion to LIP, the convolutional gated recurrent Mask-RCNN
for semi-supervised video object segmentation.

Read it floor by floor, from the bottom (each floor imports only its own and those below;
``tests/test_layout.py`` checks it):

    paths, errors            ground: where data lives, the error types
    model, data, train,      the core: the paper as code (§3 the network, §4.1 training,
    online, metrics          §3.3/§4.2 online inference, §5.2 J&F)
    profiles                 the one table of every profile's settings
    report                   tables and figures
    repro                    the notebooks' stages and the papermill reproduction
    lab                      experiments and diagnostics beside the paper
    cli                      ``python -m lipnb <command>``

Importing :mod:`lipnb` is cheap and does not import torch: the evaluator
(:mod:`lipnb.metrics`) must start fast and run where torch is not installed.
"""

__version__ = "0.1.0"
