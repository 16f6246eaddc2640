"""Benchmarks that print figures: ``python -m lipnb bench evaluate|model|...``."""
