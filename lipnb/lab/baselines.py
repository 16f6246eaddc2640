"""Table 1's baselines: what LIP must beat on the same videos (notebook 03).

* ``copy-first``: frame 0's mask on every frame (no model at all);
* ``probe``: the frozen EfficientNet-Lite0 ImageNet features and a 1x1 convolution fitted on
  frame 0 (:mod:`lipnb.lab.probe`): no offline training, no memory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lipnb.lab.probe import ProbeConfig, probe_davis
from lipnb.repro.stages import EvalSet, Run


BASELINES = {
    "copy-first": "copy the first mask to every frame",
    "probe": "ImageNet features + first-frame linear probe (no offline training)",
}


def baseline(run: Run, es: EvalSet, method: str) -> Path:
    """A baseline's masks for ``es``'s sequences -> ``work/baselines/<key>-<method>/``:
    ``copy-first`` or ``probe`` (the module's docstring)."""
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; choose from {sorted(BASELINES)}")
    out = run.work / "baselines" / f"{es.key}-{method}"
    shutil.rmtree(out, ignore_errors=True)
    if method == "copy-first":
        for seq in (es.scored[name] for name in es.sequences):
            first = seq.first_mask()
            for i in range(seq.num_frames):
                seq.write_result(out, i, first)
    else:
        timings = probe_davis(es.scored, out, es.sequences, ProbeConfig(seed=run.seed), progress=False,
                              jobs=run.jobs)
        print(f"  probe: {len(timings)} sequences in {sum(t['total_s'] for t in timings):.0f} s")
    return out
