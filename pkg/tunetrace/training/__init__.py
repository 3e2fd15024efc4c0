"""The one training loop, checkpoints and resume, launch (accelerate, Slurm, DeepSpeed), job control, the
training monitor, run sizing and W&B tracking."""
