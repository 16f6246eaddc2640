"""The online half of LIP (paper §3.3, §4.2, §5.1): first-frame fine-tuning and
frame-by-frame inference under the one-maximum and location-continuity constraints."""
