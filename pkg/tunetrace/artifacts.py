"""File names of every artifact, in one place, so readers and writers cannot drift apart."""

# prepared data (results/data/{task}/)
TRAIN_SPLIT = "train.parquet"
EVAL_SPLIT = "eval.parquet"
DATA_MANIFEST = "manifest.json"

# training run (results/runs/{method}/{task}/seed{seed}/)
FINAL_DIR = "final"
CHECKPOINTS_DIR = "checkpoints"
TRAIN_LOG = "train_log.jsonl"
RUN_METADATA = "run.json"
EVAL_OUTPUTS = "eval_outputs.parquet"  # the saved final model's raw outputs on the eval split (scored by evaluate_run)
REPS_STAGE = "representations"  # inside the resume state: steps captured so far
CHECKSUMS = "checksums.json"  # sha256 of every file of a checkpoint or final model directory, written when saved

# evaluation (results/eval/{method}/{task}/seed{seed}/)
METRICS = "metrics.json"
PREDICTIONS = "predictions.parquet"
PREDICTIONS_CSV = "predictions.csv"  # the same rows, for a spreadsheet: names instead of class indices
EVAL_REPORT = "report.txt"

# merge (results/merged/{method}/{task}/seed{seed}/)
MERGE_METADATA = "merge.json"

# standard column names of prepared splits
COL_ID = "example_id"
COL_TEXT = "text"
COL_TEXT_PAIR = "text_pair"
COL_LABEL = "label"
COL_LABEL_NAME = "label_name"
COL_GROUP = "group"
