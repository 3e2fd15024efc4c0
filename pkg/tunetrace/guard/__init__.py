"""GO/NO-GO gates, red-flag validation, the training monitor, tracking (W&B), smoke tests."""
