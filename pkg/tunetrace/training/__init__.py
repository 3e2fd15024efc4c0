"""The one training loop, checkpoints and resume, launch (accelerate, Slurm, DeepSpeed)."""
