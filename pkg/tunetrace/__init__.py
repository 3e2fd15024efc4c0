"""tunetrace: the library behind the fine-tuning study workflow.

Every module here is usable without Snakemake; the workflow scripts are thin adapters.
"""

__version__ = "0.1.0"
