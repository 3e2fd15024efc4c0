"""Stage of rule train_run: fine-tune one (method, task, seed), resuming after a kill, then let the saved final
model predict the eval split.

The training job, once the final model is saved, loads it back (imports and device already warm) and writes
its raw outputs on the eval split (the task type's `predict`: logits, per-example losses, answers) to
`eval_outputs.parquet`; evaluate_run scores them (`stages.evaluate.score_run`). So no job starts a process and
loads the model only to predict, what is scored is what was saved, and a change of evaluation settings rescores
without retraining. Editing `predict_final` reruns training (the file is the training job's output); editing the
scoring side does not.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from tunetrace import artifacts as A
from tunetrace.config import MethodSpec, ModelSpec, TaskSpec
from tunetrace.data.readers import load_prepared
from tunetrace.guard.gates import enforce_gate
from tunetrace.tasks.base import ModelOutputs
from tunetrace.tasks.dispatch import get_task_type
from tunetrace.tasks.outputs import write_outputs
from tunetrace.training.launch import TrainingJob, run_training

log = logging.getLogger(__name__)


def train(
    job: TrainingJob,
    *,
    gate_paths: str | Sequence[str] | None,
    threads: int,
    outputs_path: str | os.PathLike,
    checkpoints_dir: str | os.PathLike,
    reps_dir: str | os.PathLike,
) -> None:
    """Train the run (tracked by its rank 0 when `job.tracking` asks: the W&B run id lands in run.json), write the
    final model's eval outputs, and create the output directories a run without checkpoints or representations
    leaves empty. A NO-GO gate with enforce stops before any training."""
    enforce_gate(gate_paths)
    run_dir = Path(job.run_dir)
    run_training(job, threads=threads)
    predict_final(*job.specs(), data_dir=job.data_dir, run_dir=run_dir, out_path=outputs_path)
    Path(checkpoints_dir).mkdir(parents=True, exist_ok=True)
    Path(reps_dir).mkdir(parents=True, exist_ok=True)


def predict_final(
    model_spec: ModelSpec,
    task: TaskSpec,
    method: MethodSpec,
    data_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    out_path: str | os.PathLike,
) -> ModelOutputs:
    """The saved final model's raw outputs on the eval split, loaded back from `run_dir/final` (what is
    scored is what was saved), placed by models.placement. Batches of the method's training batch size:
    training fitted in memory, so inference does. (The placement, with torch, is imported here, not at the top:
    evaluate_run reads outputs without torch.)"""
    from tunetrace.models.placement import placement_for
    from tunetrace.tasks.partial import BatchStore, files_fingerprint, fingerprint

    task_type = get_task_type(task.type)
    _, frame = load_prepared(data_dir)
    final = Path(run_dir) / A.FINAL_DIR
    started = time.perf_counter()
    tokenizer = task_type.load_tokenizer(model_spec, str(final))
    # the training job's GPUs, still allocated: the placement policy puts the final model on them
    placement = placement_for(model_spec)
    model = task_type.load_tuned_model(model_spec, task, method, final, placement=placement)
    # finished batches kept beside the outputs: a job killed while predicting resumes there, for this final model
    store = BatchStore.beside(
        out_path, fingerprint("predict_final", model_spec, task, method.batch_size, files_fingerprint(final, data_dir))
    )
    outputs = task_type.predict(model, tokenizer, frame, task, method.batch_size, store=store)
    outputs.info["placement"] = placement.to_dict()  # evaluate_run's metrics say where the outputs were computed
    write_outputs(outputs, out_path)
    store.finish()
    log.info(
        "%s/%s: outputs of the saved final model on %d eval examples in %.2f s",
        method.name,
        task.name,
        len(frame),
        time.perf_counter() - started,
    )
    return outputs
