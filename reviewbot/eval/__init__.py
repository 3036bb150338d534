"""Measure how well a model reviews, and what it costs, on labelled cases: ``reviewbot eval``."""
