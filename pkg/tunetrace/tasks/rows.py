"""Row standardisation shared by the task types whose rows are not labelled text (causal LM, distribution,
extractive QA): ids, groups and duplicate checks here; each type fills its own columns.

Prepared columns: `example_id` always, `group` when the task has a group_field (a stratum), and
- causal_lm: `prompt`, `completion` (and `messages` as JSON when the source is chat data);
- distribution: `text`, `target` (JSON list of probabilities over the task's options);
- extractive_qa: `question`, `context`, `answers` (JSON list of texts), `answer_starts` (JSON list).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd

from tunetrace import artifacts as A
from tunetrace.config import TaskSpec
from tunetrace.data.checks import cell_text, check_columns, check_unique_ids, row_error

COL_PROMPT, COL_COMPLETION, COL_MESSAGES, COL_TARGET = "prompt", "completion", "messages", "target"
COL_QUESTION, COL_CONTEXT, COL_ANSWERS, COL_ANSWER_STARTS = "question", "context", "answers", "answer_starts"

Fill = Callable[[pd.DataFrame, TaskSpec, str, pd.DataFrame], None]


def split_messages(messages: Any, origin: str, position: int, column: str) -> tuple[str, str, list[dict]]:
    """Chat messages -> (plain prompt, last assistant reply, messages); the reply is the completion."""
    if isinstance(messages, str):
        messages = json.loads(messages)
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise row_error(origin, position, column, "expected a non-empty list of {role, content} messages")
    if messages[-1].get("role") != "assistant":
        raise row_error(origin, position, column, "the last message must have role 'assistant' (it is the completion)")
    history = [{"role": str(m.get("role")), "content": cell_text(m.get("content"))} for m in messages]
    prompt = "".join(f"{m['role']}: {m['content']}\n" for m in history[:-1]) + "assistant:"
    return prompt, history[-1]["content"], history


def standardise_rows(frame: pd.DataFrame, task: TaskSpec, origin: str, id_prefix: str, fill: Fill) -> pd.DataFrame:
    """Standard columns: ids (from id_field or numbered), the type's own columns (`fill`), group; ids unique."""
    check_columns(frame, [c for c in (task.group_field, task.id_field) if c], origin)
    out = pd.DataFrame(index=range(len(frame)))
    out[A.COL_ID] = (
        frame[task.id_field].astype(str).to_numpy()
        if task.id_field
        else [f"{id_prefix}-{i:06d}" for i in range(len(frame))]
    )
    frame = frame.reset_index(drop=True)
    fill(frame, task, origin, out)
    if task.group_field:
        out[A.COL_GROUP] = frame[task.group_field].map(cell_text).to_numpy()
    check_unique_ids(out[A.COL_ID], origin, task.id_field)
    return out
