"""The paper's Tables 1-3, copied by hand from the paper text (§5.2, §5.3), labelled as such.

Values are percentages as printed (J/F Mean and Recall, Decay). LIP's J/F Decay in Table 1
is printed as 0.05 / 0.06 in the paper (every other method is around 5-15): we copy it as
printed. Nothing here is measured by lipnb.
"""

from __future__ import annotations

SOURCE = ("Paper: 'convolutional gated recurrent Mask-RCNN' (LIP), Table 1 (DAVIS 2016 val), "
          "Table 2 (DAVIS 2017 val), Table 3 (ablation, DAVIS 2017 val); numbers copied as printed.")

METRICS = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]

# method -> (J&F Mean, J Mean, J Recall, J Decay, F Mean, F Recall, F Decay)
TABLE1 = {  # DAVIS 2016 val, single-object protocol
    "OnAVOS": (85.5, 86.1, 96.1, 5.2, 84.9, 89.7, 5.8),
    "FAVOS": (81.0, 82.4, 96.5, 4.5, 79.5, 89.4, 5.5),
    "OSVOS": (80.2, 79.8, 93.6, 14.9, 80.6, 92.6, 15.0),
    "LIP": (78.5, 78.0, 88.6, 0.05, 79.0, 86.8, 0.06),
    "MSK": (77.6, 79.7, 93.1, 8.9, 75.4, 87.1, 9.0),
    "PML": (77.4, 75.5, 89.6, 8.5, 79.3, 93.4, 7.8),
    "SFL": (76.1, 76.1, 90.6, 12.1, 76.0, 85.5, 10.4),
    "OSMN": (73.5, 74.0, 87.6, 9.0, 72.9, 84.0, 10.6),
    "CTN": (71.4, 73.5, 87.4, 15.6, 69.3, 79.6, 12.9),
    "VPN": (67.9, 70.2, 82.3, 12.4, 65.5, 69.0, 14.4),
}

TABLE2 = {  # DAVIS 2017 val, multi-object protocol
    "OnAVOS": (65.4, 61.6, 67.4, 27.9, 69.1, 75.4, 26.6),
    "LIP": (61.1, 59.0, 69.0, 16.0, 63.2, 72.6, 20.1),
    "OSVOS": (60.3, 56.6, 63.8, 26.1, 63.9, 73.8, 27.0),
    "FAVOS": (58.2, 54.6, 61.1, 14.1, 61.8, 72.3, 18.0),
    "OSMN": (54.8, 52.5, 60.9, 21.5, 57.1, 66.1, 24.3),
}

TABLE3_METRICS = ["J-Mean", "F-Mean", "J&F-Mean"]
TABLE3 = {  # ablation on DAVIS 2017 val: Mask-RCNN + Conv-GRU with zero vs dynamic hidden state
    "zero hidden state": (56.9, 61.5, 59.2),
    "dynamic memory": (59.0, 63.2, 61.1),
}
