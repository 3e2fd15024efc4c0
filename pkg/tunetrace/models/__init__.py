"""Model names (embedded:, tiny:, local, hub), layouts, loading, LoRA, pooling and heads, sizes."""
