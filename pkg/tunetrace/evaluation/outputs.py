"""A run's raw outputs on the eval split, written by its training job from the saved final model.

The training job, once the final model is saved, loads it back (imports and device already warm) and
writes its raw outputs on the eval split (the task type's `predict`: logits, per-example losses,
answers) to `eval_outputs.parquet`; evaluate_run scores them (`evaluation.evaluate.score_run`). So no
job starts a process and loads the model only to predict, what is scored is what was saved, and a
change of evaluation settings rescores without retraining. Editing this module reruns training (the
file is the training job's output); editing the scoring side does not.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from tunetrace import artifacts as A
from tunetrace.config import MethodSpec, ModelSpec, TaskSpec
from tunetrace.data.prepare import load_prepared
from tunetrace.tasks.base import ModelOutputs
from tunetrace.tasks.dispatch import get_task_type

log = logging.getLogger(__name__)

_INFO_KEY = b"tunetrace.outputs.info"


def write_outputs(outputs: ModelOutputs, path: str | os.PathLike) -> None:
    """Parquet with `info` in the file's metadata, written atomically (a temporary sibling, then a rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(outputs.table, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           _INFO_KEY: json.dumps(outputs.info, sort_keys=True).encode()})
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_outputs(path: str | os.PathLike) -> ModelOutputs:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    info = json.loads((table.schema.metadata or {}).get(_INFO_KEY, b"{}"))
    return ModelOutputs(table.to_pandas(), info)


def predict_final(model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, data_dir: str | os.PathLike,
                  run_dir: str | os.PathLike, out_path: str | os.PathLike) -> ModelOutputs:
    """The saved final model's raw outputs on the eval split, loaded back from `run_dir/final` (what is
    scored is what was saved). Batches of the method's training batch size: training fitted in memory,
    so inference does. (torch is imported here, not at the top: evaluate_run reads outputs without it.)"""
    import torch

    task_type = get_task_type(task.type)
    _, frame = load_prepared(data_dir)
    final = Path(run_dir) / A.FINAL_DIR
    started = time.perf_counter()
    tokenizer = task_type.load_tokenizer(model_spec, str(final))
    model = task_type.load_tuned_model(model_spec, task, method, final)
    if method.gpus and torch.cuda.is_available():
        model.to("cuda")  # the training job's GPU, still allocated: predict there
    outputs = task_type.predict(model, tokenizer, frame, task, method.batch_size)
    write_outputs(outputs, out_path)
    log.info("%s/%s: outputs of the saved final model on %d eval examples in %.2f s", method.name, task.name,
             len(frame), time.perf_counter() - started)
    return outputs
