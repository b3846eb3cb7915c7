"""Rubrics, judge prompts, Instructor verdict models and pointwise / pairwise judge runs."""
