"""Experiments and diagnostics beside the paper: none of it is the paper's method.

    recipes.py        the online recipe, chosen on training videos for each model alike
    baselines.py      Table 1's baselines: copy the first mask, the first-frame linear probe
    probe.py          frozen ImageNet features + a 1x1 convolution fitted on frame 0
    oracle.py         where J&F is lost: ground-truth boxes / best proposals (infer_davis's hook)
    dial.py           the memory dial: the carried state scaled by alpha
    seeds.py          Table 3 over several seeds (``lipnb ablation``)
    memory_stats.py   did the memory learn: gates, moved W_h, feature sizes, how fast the state fills
    paired.py         per-sequence differences of two evaluations beside motion and object size
    bench/            speed: LIP vs plain Mask R-CNN, the J&F evaluator (``lipnb bench``)

The lab uses what the core offers (hooks such as ``on_frame`` / ``on_sequence``, the
configs' fields) and adds no flag to it; its settings per profile are in :data:`lipnb.profiles.LAB`.
New experiments go here.
"""
