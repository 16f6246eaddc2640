"""The online half of LIP (paper §3.3, §4.2, §5.1): first-frame fine-tuning and
frame-by-frame inference under the one-maximum and location-continuity constraints.

One file per step::

    config.py       OnlineConfig: every threshold and iteration cap (paper / authors' values)
    checkpoint.py   load_model (what 'lipnb train' writes), random_model
    finetune.py     OnlineFineTuner: class-specific fine-tuning on frame 0 with early stopping (§4.2)
    detect.py       detect: per-id candidates of a frame + cached RoI features; instance_masks
    constraints.py  select_instances: location continuity, then one maximum (§3.3)
    compose.py      compose_label_map: kept masks -> DAVIS label map, overlaps by score
    refresh.py      IdHeadRefresher: id-head fine-tuning on confident detections, cached features
    inference.py    segment_sequence (any frames), infer_davis (a split, with timing)
    pool.py         map_on_copies: sequences at once, one process and model copy each (CPU)

Diagnostics (the oracle, the online-recipe search) live in :mod:`lipnb.lab` and hook in through
``on_frame``; the commands 'lipnb segment' and 'lipnb infer' are in :mod:`lipnb.cli`.

Typical use::

    from lipnb.online import OnlineConfig, load_model, segment_sequence
    model = load_model("runs/smoke/finetune/last.pt")
    result = segment_sequence(model, read_frame, num_frames, first_mask, write, OnlineConfig())
"""

from .checkpoint import CheckpointError, load_model, random_model
from .compose import compose_label_map
from .config import OnlineConfig
from .constraints import Kept, select_instances
from .finetune import EarlyStopping, OnlineFineTuner, first_frame_targets, prepare_online_model
from .inference import SequenceResult, infer_davis, segment_sequence
from .refresh import IdHeadRefresher

__all__ = ["OnlineConfig", "load_model", "random_model", "CheckpointError", "OnlineFineTuner", "EarlyStopping",
           "first_frame_targets", "prepare_online_model", "select_instances", "Kept", "compose_label_map",
           "IdHeadRefresher", "segment_sequence", "infer_davis", "SequenceResult"]
