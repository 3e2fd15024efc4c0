"""extractive_qa: SQuAD JSON input, windows with doc stride, no-answer handling, n-best decoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunetrace import artifacts as A
from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.models.loading import load_tokenizer
from tunetrace.stages.prepare import prepare_task_data
from tunetrace.tasks.extractive_qa import _windows, decode, encode_train

MINILM = ModelSpec.from_dict({})
FILLER = "This sentence only pads the passage. " * 12


def write_squad(path: Path) -> Path:
    """Two articles' worth of questions: answerable (early and late in a long context) and unanswerable."""
    paragraphs = []
    for i in range(8):
        context = f"The city of Oslo{i} is the capital of Norway. " + FILLER + f"Bergen{i} has much rain."
        paragraphs.append(
            {
                "context": context,
                "qas": [
                    {
                        "id": f"a{i}",
                        "question": "What is the capital of Norway?",
                        "is_impossible": False,
                        "answers": [{"text": f"Oslo{i}", "answer_start": context.index(f"Oslo{i}")}],
                    },
                    {
                        "id": f"b{i}",
                        "question": "Which city has much rain?",
                        "is_impossible": False,
                        "answers": [{"text": f"Bergen{i}", "answer_start": context.index(f"Bergen{i}")}],
                    },
                    {"id": f"c{i}", "question": "Who founded Oslo?", "is_impossible": True, "answers": []},
                ],
            }
        )
    path.write_text(json.dumps({"version": "v2.0", "data": [{"title": "Norway", "paragraphs": paragraphs}]}))
    return path


def qa_task(path: Path) -> TaskSpec:
    return TaskSpec.from_dict(
        "squad",
        {
            "type": "extractive_qa",
            "source": {"train": str(path), "eval": str(path), "format": "squad"},
            "id_field": "id",
            "max_length": 64,
            "doc_stride": 16,
            "primary_metric": "squad_f1",
        },
    )


def test_long_context_split_into_windows_with_answer_positions(tmp_path):
    """A context longer than max_length gives several windows; only the window holding the answer points at it."""
    task = qa_task(write_squad(tmp_path / "s.json"))
    prepare_task_data(task, tmp_path / "data")
    train = pd.read_parquet(tmp_path / "data" / A.TRAIN_SPLIT)
    tokenizer = load_tokenizer(MINILM)
    dataset, info = encode_train(train.iloc[:1], tokenizer, task)
    assert info["windows"] > 1
    pointing = [d for d in dataset.items if d["start_positions"] > 0]
    assert len(pointing) == 1
    span = tokenizer.decode(pointing[0]["input_ids"][pointing[0]["start_positions"] : pointing[0]["end_positions"] + 1])
    assert span.replace(" ", "") == "oslo0"


def test_unanswerable_question_trains_on_cls(tmp_path):
    """Every window of an unanswerable question has start = end = 0 ([CLS])."""
    task = qa_task(write_squad(tmp_path / "s.json"))
    prepare_task_data(task, tmp_path / "data")
    train = pd.read_parquet(tmp_path / "data" / A.TRAIN_SPLIT)
    dataset, _ = encode_train(train[train[A.COL_ID] == "c0"], load_tokenizer(MINILM), task)
    assert all(d["start_positions"] == 0 and d["end_positions"] == 0 for d in dataset.items)


def test_decode_prefers_span_over_null_and_vice_versa(tmp_path):
    """n-best decoding returns the highest-scoring span, or "" when the null score is higher."""
    task = qa_task(write_squad(tmp_path / "s.json"))
    prepare_task_data(task, tmp_path / "data")
    frame = pd.read_parquet(tmp_path / "data" / A.TRAIN_SPLIT).iloc[:1].reset_index(drop=True)
    tokenizer = load_tokenizer(MINILM)
    enc = _windows(frame, tokenizer, task)
    seq = enc.sequence_ids(0)
    context, offsets = frame.loc[0, "context"], enc["offset_mapping"][0]
    target = next(i for i, s in enumerate(seq) if s == 1 and context[offsets[i][0] :].startswith("Oslo"))
    logits = []
    for w in range(len(enc["input_ids"])):
        n = len(enc["input_ids"][w])
        start, end = np.zeros(n), np.zeros(n)
        if w == 0:
            start[target], end[target] = 5.0, 5.0
        logits.append((start, end))
    assert decode(frame, enc, logits, task)["a0"].startswith("Oslo")
    for start, end in logits:
        start[0], end[0] = 10.0, 10.0
    assert decode(frame, enc, logits, task)["a0"] == ""


def test_extractive_qa_lora_run_scores_squad_v2(tmp_path):
    """A short LoRA run and its evaluation give official EM/F1 with the HasAns/NoAns breakdown; the merge check
    passes."""
    from tunetrace.stages.baseline import evaluate_baseline
    from tunetrace.stages.merge import merge_adapter
    from tunetrace.stages.pilot import score_pilot
    from tunetrace.stages.verify_merge import verify_merge
    from tunetrace.training.loop import train_run

    task = qa_task(write_squad(tmp_path / "s.json"))
    prepare_task_data(task, tmp_path / "data")
    base = evaluate_baseline(MINILM, task, EvalSpec.from_dict({}), tmp_path / "data", tmp_path / "b.json")
    assert base["primary"] == pytest.approx(8 / 24)
    method = MethodSpec.from_dict(
        "lora", {"type": "lora", "max_steps": 2, "batch_size": 8, "learning_rate": 1e-3, "lora": {"r": 4}}
    )
    train_run(MINILM, task, method, 0, tmp_path / "data", tmp_path / "run")
    metrics = score_pilot(
        MINILM, task, method, EvalSpec.from_dict({}), 0, tmp_path / "data", tmp_path / "run", tmp_path / "eval"
    )
    assert metrics["squad"]["HasAns_total"] == 16 and metrics["squad"]["NoAns_total"] == 8
    merge_adapter(MINILM, task, tmp_path / "run" / A.FINAL_DIR, tmp_path / "merged")
    assert verify_merge(
        MINILM,
        task,
        EvalSpec.from_dict({}),
        tmp_path / "data",
        tmp_path / "run" / A.FINAL_DIR,
        tmp_path / "merged",
        tmp_path / "c.json",
    )["passed"]


def test_extractive_qa_evaluates_during_training_and_stops_early_on_eval_loss(tmp_path):
    """eval_every_steps gives extractive QA an eval loss on the eval split's windows, which early stopping follows
    (methods.<m>.early_stopping_metric: eval_loss)."""
    from tunetrace.training.loop import train_run

    task = qa_task(write_squad(tmp_path / "s.json"))
    prepare_task_data(task, tmp_path / "data")
    method = MethodSpec.from_dict(
        "full",
        {
            "type": "full",
            "max_steps": 3,
            "batch_size": 8,
            "logging_steps": 1,
            "eval_every_steps": 1,
            "early_stopping_patience": 5,
            "early_stopping_metric": "eval_loss",
        },
    )
    train_run(MINILM, task, method, 0, tmp_path / "data", tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / A.TRAIN_LOG).read_text().splitlines()]
    evals = [r["eval_loss"] for r in records if "eval_loss" in r]
    assert len(evals) == 3 and all(np.isfinite(evals))
