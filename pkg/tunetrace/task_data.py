"""Standardise the rows of task types that are not plain classification.

Prepared columns: `example_id` always, `group` when the task has a group_field (a stratum), and
- causal_lm: `prompt`, `completion` (and `messages` as JSON when the source is chat data);
- distribution: `text`, `target` (JSON list of probabilities over the task's options);
- extractive_qa: `question`, `context`, `answers` (JSON list of texts), `answer_starts` (JSON list).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from . import artifacts as A
from .config import TaskSpec

COL_PROMPT, COL_COMPLETION, COL_MESSAGES, COL_TARGET = "prompt", "completion", "messages", "target"
COL_QUESTION, COL_CONTEXT, COL_ANSWERS, COL_ANSWER_STARTS = "question", "context", "answers", "answer_starts"


def _error(origin: str, position: int, column: str, message: str) -> ValueError:
    from .data import DataError

    return DataError(f"{origin}: row {int(position) + 2}, column '{column}': {message}")


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def split_messages(messages: Any, origin: str, position: int, column: str) -> tuple[str, str, list[dict]]:
    """Chat messages -> (plain prompt, last assistant reply, messages); the reply is the completion."""
    if isinstance(messages, str):
        messages = json.loads(messages)
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise _error(origin, position, column, "expected a non-empty list of {role, content} messages")
    if messages[-1].get("role") != "assistant":
        raise _error(origin, position, column, "the last message must have role 'assistant' (it is the completion)")
    history = [{"role": str(m.get("role")), "content": _text(m.get("content"))} for m in messages]
    prompt = "".join(f"{m['role']}: {m['content']}\n" for m in history[:-1]) + "assistant:"
    return prompt, history[-1]["content"], history


def _causal(frame: pd.DataFrame, task: TaskSpec, origin: str, out: pd.DataFrame) -> None:
    from .data import _check_columns

    if task.messages_field in frame.columns:
        parts = [split_messages(m, origin, i, task.messages_field) for i, m in enumerate(frame[task.messages_field])]
        out[COL_PROMPT] = [p for p, _, _ in parts]
        out[COL_COMPLETION] = [c for _, c, _ in parts]
        out[COL_MESSAGES] = [json.dumps(m) for _, _, m in parts]
        return
    _check_columns(frame, [task.prompt_field, task.completion_field], f"{origin} (or a '{task.messages_field}' column)")
    out[COL_PROMPT] = frame[task.prompt_field].map(_text).to_numpy()
    # empty completions are kept here and reported (and given no loss) when batches are built
    out[COL_COMPLETION] = frame[task.completion_field].map(_text).to_numpy()


def _distribution(frame: pd.DataFrame, task: TaskSpec, origin: str, out: pd.DataFrame) -> None:
    from .data import _check_columns

    _check_columns(frame, [task.text_fields[0], task.target_field], origin)
    k = len(task.options or ())
    targets = []
    for i, raw in enumerate(frame[task.target_field]):
        values = json.loads(raw) if isinstance(raw, str) else list(raw)
        arr = np.asarray(values, dtype=float)
        if arr.shape != (k,) or np.any(arr < 0) or arr.sum() <= 0:
            raise _error(origin, i, task.target_field, f"expected {k} non-negative shares (one per option), got {values!r}")
        targets.append(json.dumps((arr / arr.sum()).tolist()))
    out[A.COL_TEXT] = frame[task.text_fields[0]].map(_text).to_numpy()
    out[COL_TARGET] = targets


def _extractive(frame: pd.DataFrame, task: TaskSpec, origin: str, out: pd.DataFrame) -> None:
    from .data import _check_columns

    _check_columns(frame, [task.question_field, task.context_field, task.answers_field], origin)
    texts, starts = [], []
    for i, (answers, context) in enumerate(zip(frame[task.answers_field], frame[task.context_field])):
        answers = json.loads(answers) if isinstance(answers, str) else list(answers)
        items = [a if isinstance(a, dict) else {"text": str(a), "answer_start": _text(context).find(str(a))} for a in answers]
        for a in items:
            if a["answer_start"] < 0 or _text(context)[a["answer_start"]:a["answer_start"] + len(a["text"])] != a["text"]:
                raise _error(origin, i, task.answers_field, f"answer {a['text']!r} is not in the context at {a['answer_start']}")
        texts.append(json.dumps([a["text"] for a in items]))
        starts.append(json.dumps([int(a["answer_start"]) for a in items]))
    out[COL_QUESTION] = frame[task.question_field].map(_text).to_numpy()
    out[COL_CONTEXT] = frame[task.context_field].map(_text).to_numpy()
    out[COL_ANSWERS], out[COL_ANSWER_STARTS] = texts, starts


def standardise_task(frame: pd.DataFrame, task: TaskSpec, origin: str, id_prefix: str) -> pd.DataFrame:
    """Standard columns for causal_lm, distribution and extractive_qa rows."""
    from .data import DataError, _check_columns

    _check_columns(frame, [c for c in (task.group_field, task.id_field) if c], origin)
    out = pd.DataFrame(index=range(len(frame)))
    out[A.COL_ID] = (frame[task.id_field].astype(str).to_numpy() if task.id_field
                     else [f"{id_prefix}-{i:06d}" for i in range(len(frame))])
    frame = frame.reset_index(drop=True)
    {"causal_lm": _causal, "distribution": _distribution, "extractive_qa": _extractive}[task.type](frame, task, origin, out)
    if task.group_field:
        out[A.COL_GROUP] = frame[task.group_field].map(_text).to_numpy()
    if out[A.COL_ID].duplicated().any():
        raise DataError(f"{origin}: column '{task.id_field}': duplicate id {out[A.COL_ID][out[A.COL_ID].duplicated()].iloc[0]!r}")
    return out
