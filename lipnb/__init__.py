"""lipnb: the reproducible companion to LIP, the convolutional gated recurrent Mask-RCNN
for semi-supervised video object segmentation.

Importing :mod:`lipnb` is cheap and does not import torch: the evaluator
(:mod:`lipnb.metrics`) must start fast and run where torch is not installed.
"""

__version__ = "0.1.0"
