"""Evaluation maths: classification metrics, bootstrap intervals, per-group error rates (pure), SQuAD v2 scoring."""
