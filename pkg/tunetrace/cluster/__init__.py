"""Cluster scheduling: what each job requests (`requests`), what a Slurm cluster offers (`slurm`), and the check
that compares them before anything is submitted (`doctor`). Imports no torch and no snakemake."""
