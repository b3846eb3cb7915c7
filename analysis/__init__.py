"""Orchestration over stored judgments and labels: golden subsets, agreement, calibration, rankings, compare."""
