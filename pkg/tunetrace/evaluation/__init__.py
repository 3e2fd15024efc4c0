"""Evaluate, baseline, merge and verify (dispatching to the task type), and the metrics."""
