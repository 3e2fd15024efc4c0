"""A run's raw outputs on the eval split (`ModelOutputs`) as one Parquet file, written by its training job from
the saved final model (`stages.train.predict_final`) and scored by evaluate_run (`stages.evaluate.score_run`).
No torch: pyarrow is imported where a file is read or written.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from tunetrace.tasks.base import ModelOutputs

_INFO_KEY = b"tunetrace.outputs.info"


def write_outputs(outputs: ModelOutputs, path: str | os.PathLike) -> None:
    """Parquet with `info` in the file's metadata, written atomically (a temporary sibling, then a rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(outputs.table, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _INFO_KEY: json.dumps(outputs.info, sort_keys=True).encode()}
    )
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
