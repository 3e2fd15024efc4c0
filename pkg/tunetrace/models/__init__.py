"""Model names (embedded:, tiny:, local, hub), loading, LoRA."""
