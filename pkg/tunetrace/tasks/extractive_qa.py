"""extractive_qa: SQuAD v2 style span extraction with an encoder and a start/end head.

A context longer than max_length is cut into windows that overlap by `doc_stride` tokens. A window
without the whole answer (and every window of an unanswerable question) is trained to point at
[CLS]. Decoding takes the `n_best` start and end logits of each window, keeps spans inside the
context of at most `max_answer_length` tokens, and answers "" when the best [CLS] (null) score of the
question's windows beats the best span. Scores are the official SQuAD v2 EM/F1 (tunetrace.evaluation.squad).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np
import pandas as pd
import torch

from tunetrace import artifacts as A
from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.data.checks import cell_text, check_columns, row_error
from tunetrace.data.readers import load_prepared
from tunetrace.evaluation.squad import squad_v2_scores
from tunetrace.models.loading import _pretrained_kwargs, load_tokenizer, lora_targets, meta_skeleton, placed
from tunetrace.models.names import resolve_model_path, set_offline_if_local
from tunetrace.models.placement import Placement, input_device
from tunetrace.registry import primary_metric
from tunetrace.tasks.base import Evaluation, MergeCheck, MergeQuantity, ModelOutputs, TaskType, TrainingParts
from tunetrace.tasks.partial import BatchStore, run_batches
from tunetrace.tasks.rows import COL_ANSWER_STARTS, COL_ANSWERS, COL_CONTEXT, COL_QUESTION, standardise_rows

log = logging.getLogger(__name__)


def _windows(frame: pd.DataFrame, tokenizer: Any, task: TaskSpec) -> Any:
    return tokenizer(
        frame[COL_QUESTION].tolist(),
        frame[COL_CONTEXT].tolist(),
        truncation="only_second",
        max_length=task.max_length,
        stride=task.doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )


def _span_positions(offsets: list, sequence_ids: list, start_char: int, end_char: int) -> tuple[int, int]:
    """Token positions of a character span inside this window, or (0, 0) when it is not wholly inside."""
    context = [i for i, s in enumerate(sequence_ids) if s == 1]
    if not context or offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return 0, 0
    start = next(i for i in context if offsets[i][1] > start_char)
    end = next(i for i in reversed(context) if offsets[i][0] < end_char)
    return start, end


class QADataset(torch.utils.data.Dataset):
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def encode_train(frame: pd.DataFrame, tokenizer: Any, task: TaskSpec) -> tuple[QADataset, dict[str, int]]:
    """Windows with start/end positions (the first answer; [CLS] for no answer in the window)."""
    enc = _windows(frame, tokenizer, task)
    items, no_answer_windows = [], 0
    for w, sample in enumerate(enc["overflow_to_sample_mapping"]):
        answers, starts = json.loads(frame[COL_ANSWERS].iloc[sample]), json.loads(frame[COL_ANSWER_STARTS].iloc[sample])
        start = end = 0
        if answers:
            start, end = _span_positions(
                enc["offset_mapping"][w], enc.sequence_ids(w), starts[0], starts[0] + len(answers[0])
            )
        no_answer_windows += start == 0
        item = {k: enc[k][w] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        items.append({**item, "start_positions": start, "end_positions": end})
    return QADataset(items), {
        "windows": len(items),
        "examples": len(frame),
        "no_answer_windows": int(no_answer_windows),
        "split_examples": int(len(items) - len(frame)),
    }


@torch.no_grad()
def window_logits(
    model: torch.nn.Module, dataset: QADataset, tokenizer: Any, batch_size: int, store: BatchStore | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Start and end logits of every window (unpadded); finished batches kept in `store` (tasks.partial)."""
    from transformers import DataCollatorWithPadding

    model.eval()
    collator = DataCollatorWithPadding(tokenizer)

    def span_logits(start: int) -> dict[str, torch.Tensor]:
        chunk = [
            {k: v for k, v in dataset[i].items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            for i in range(start, min(start + batch_size, len(dataset)))
        ]
        result = model(**{k: v.to(input_device(model)) for k, v in collator(chunk).items()})
        return {
            "start": result.start_logits.float(),
            "end": result.end_logits.float(),
            "length": torch.tensor([len(item["input_ids"]) for item in chunk]),
        }

    out = []
    for done in run_batches(range(0, len(dataset), batch_size), span_logits, store, "spans"):
        for j, n in enumerate(done["length"].tolist()):
            out.append((done["start"][j, :n].numpy(), done["end"][j, :n].numpy()))
    return out


def decode(
    frame: pd.DataFrame, enc: Any, logits: list[tuple[np.ndarray, np.ndarray]], task: TaskSpec
) -> dict[str, str]:
    """Best answer text per example id: n-best spans of every window against the null ([CLS]) score."""
    best: dict[int, tuple[float, str]] = {}
    null: dict[int, float] = {}
    for w, (start_logits, end_logits) in enumerate(logits):
        sample = enc["overflow_to_sample_mapping"][w]
        offsets, seq = enc["offset_mapping"][w], enc.sequence_ids(w)
        null[sample] = min(null.get(sample, np.inf), float(start_logits[0] + end_logits[0]))
        context = frame[COL_CONTEXT].iloc[sample]
        for s in np.argsort(start_logits)[::-1][: task.n_best]:
            for e in np.argsort(end_logits)[::-1][: task.n_best]:
                if seq[s] != 1 or seq[e] != 1 or e < s or e - s + 1 > task.max_answer_length:
                    continue
                score = float(start_logits[s] + end_logits[e])
                if score > best.get(sample, (-np.inf, ""))[0]:
                    best[sample] = (score, context[offsets[s][0] : offsets[e][1]])
    answers = {}
    for sample, example_id in enumerate(frame[A.COL_ID]):
        span_score, text = best.get(sample, (-np.inf, ""))
        answers[str(example_id)] = text if span_score > null.get(sample, np.inf) else ""
    return answers


def predict(
    model: torch.nn.Module,
    tokenizer: Any,
    frame: pd.DataFrame,
    task: TaskSpec,
    batch_size: int,
    store: BatchStore | None = None,
) -> tuple[dict[str, str], list]:
    enc = _windows(frame, tokenizer, task)
    items = [
        {k: enc[k][w] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        for w in range(len(enc["input_ids"]))
    ]
    logits = window_logits(model, QADataset(items), tokenizer, batch_size, store)
    return decode(frame, enc, logits, task), logits


def score(frame: pd.DataFrame, answers: dict[str, str], task: TaskSpec) -> dict[str, Any]:
    """Official SQuAD v2 scores (percent, under `squad`) and fractions for the comparison."""
    gold = {str(i): json.loads(a) for i, a in zip(frame[A.COL_ID], frame[COL_ANSWERS], strict=True)}
    official = squad_v2_scores(gold, answers)
    result: dict[str, Any] = {
        "squad": official,
        "exact": official["exact"] / 100,
        "squad_f1": official["f1"] / 100,
        "f1": official["f1"] / 100,
        "n": official["total"],
        "no_answer_predictions": sum(a == "" for a in answers.values()),
    }
    primary = primary_metric("extractive_qa", task.primary_metric)
    result["primary_metric"], result["primary"] = primary, result[primary]
    return result


def fill_rows(frame: pd.DataFrame, task: TaskSpec, origin: str, out: pd.DataFrame) -> None:
    """question, context, answers and answer starts (each answer checked against its context)."""
    check_columns(frame, [task.question_field, task.context_field, task.answers_field], origin)
    texts, starts = [], []
    for i, (answers, context) in enumerate(zip(frame[task.answers_field], frame[task.context_field], strict=True)):
        answers = json.loads(answers) if isinstance(answers, str) else list(answers)
        items = [
            a if isinstance(a, dict) else {"text": str(a), "answer_start": cell_text(context).find(str(a))}
            for a in answers
        ]
        for a in items:
            offset = a["answer_start"]
            if offset < 0 or cell_text(context)[offset : offset + len(a["text"])] != a["text"]:
                raise row_error(
                    origin, i, task.answers_field, f"answer {a['text']!r} is not in the context at {a['answer_start']}"
                )
        texts.append(json.dumps([a["text"] for a in items]))
        starts.append(json.dumps([int(a["answer_start"]) for a in items]))
    out[COL_QUESTION] = frame[task.question_field].map(cell_text).to_numpy()
    out[COL_CONTEXT] = frame[task.context_field].map(cell_text).to_numpy()
    out[COL_ANSWERS], out[COL_ANSWER_STARTS] = texts, starts


class ExtractiveQA(TaskType):
    """SQuAD v2-style span extraction (unanswerable questions included); scored by official EM/F1."""

    name = "extractive_qa"
    trivial_baseline = "no_answer"  # "" for every question, no model

    def standardise(self, frame: pd.DataFrame, task: TaskSpec, origin: str, id_prefix: str) -> pd.DataFrame:
        return standardise_rows(frame, task, origin, id_prefix, fill_rows)

    def load_model(
        self,
        model_spec: ModelSpec,
        task: TaskSpec,
        path: str | None = None,
        gradient_checkpointing: bool = False,
        placement: Placement | None = None,
    ) -> torch.nn.Module:
        """The encoder with a span head (fresh from the base, or a saved run or merged model)."""
        from transformers import AutoModelForQuestionAnswering

        set_offline_if_local(model_spec.name_or_path)
        source = path or resolve_model_path(model_spec.name_or_path)
        return AutoModelForQuestionAnswering.from_pretrained(
            source, **placed(model_spec, source, placement), **_pretrained_kwargs(model_spec)
        )

    def model_skeleton(self, model_spec: ModelSpec, task: TaskSpec) -> torch.nn.Module:
        return meta_skeleton(model_spec, "AutoModelForQuestionAnswering")

    def apply_lora(self, model: torch.nn.Module, method: MethodSpec) -> torch.nn.Module:
        """LoRA with the span head trained in full. Not PEFT's QUESTION_ANS task type: its forward drops
        token_type_ids (peft 0.21), so the adapter model would see other inputs than the merged model."""
        from peft import LoraConfig, get_peft_model

        spec = method.lora
        config = LoraConfig(
            r=spec.r,
            lora_alpha=spec.alpha,
            lora_dropout=spec.dropout,
            bias=spec.bias,
            target_modules=lora_targets(model, spec),
            modules_to_save=["qa_outputs"],
        )
        return get_peft_model(model, config)

    def training_parts(
        self, model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, data_dir: str | os.PathLike
    ) -> TrainingParts:
        """Fine-tune the start/end head (and the encoder, or LoRA adapters) on the windows. Evaluation during
        training (methods.<m>.eval_every_steps) is the span loss on the eval split's windows, labelled as the
        training windows are: eval_loss, the one number early stopping can follow for this type."""
        from transformers import DataCollatorWithPadding

        train, evaluation = load_prepared(data_dir)
        tokenizer = self.load_tokenizer(model_spec)
        dataset, info = encode_train(train, tokenizer, task)
        eval_set = encode_train(evaluation, tokenizer, task)[0] if method.eval_every_steps else None
        return TrainingParts(
            model=self.build_model(model_spec, task, method),
            tokenizer=tokenizer,
            train_set=dataset,
            eval_set=eval_set,
            collator=DataCollatorWithPadding(tokenizer),
            truncated=info["split_examples"],
            info={"windows": info},
        )

    def predict(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        frame: pd.DataFrame,
        task: TaskSpec,
        batch_size: int,
        store: BatchStore | None = None,
    ) -> ModelOutputs:
        """One predicted answer per question ("" = no answer)."""
        answers, _ = predict(model, tokenizer, frame, task, batch_size, store)
        return ModelOutputs(
            pd.DataFrame(
                {A.COL_ID: frame[A.COL_ID].to_numpy(), "prediction": [answers[str(i)] for i in frame[A.COL_ID]]}
            )
        )

    def score(
        self, outputs: ModelOutputs, frame: pd.DataFrame, task: TaskSpec, spec: EvalSpec, seed: int
    ) -> Evaluation:
        """SQuAD v2 EM/F1 (HasAns/NoAns)."""
        answers = {str(i): str(a) for i, a in zip(outputs.table[A.COL_ID], outputs.table["prediction"], strict=True)}
        metrics = score(frame, answers, task)
        rows = pd.DataFrame(
            {
                A.COL_ID: frame[A.COL_ID],
                "prediction": [answers[str(i)] for i in frame[A.COL_ID]],
                "answers": frame[COL_ANSWERS],
            }
        )
        return Evaluation(metrics, rows, json.dumps(metrics["squad"], indent=2) + "\n")

    def baseline(
        self,
        model_spec: ModelSpec,
        task: TaskSpec,
        spec: EvalSpec,
        data_dir: str | os.PathLike,
        seed: int,
        store: BatchStore | None = None,
    ) -> Evaluation:
        """The no-answer baseline: "" for every question (50.07 F1 on SQuAD v2 dev)."""
        _, frame = load_prepared(data_dir)
        no_answer = score(frame, {str(i): "" for i in frame[A.COL_ID]}, task)
        rows = pd.DataFrame({A.COL_ID: frame[A.COL_ID], "prediction": "", "answers": frame[COL_ANSWERS]})
        return Evaluation.of_baselines(no_answer["primary_metric"], {"no_answer": no_answer}, "no_answer", rows)

    def merge_check(
        self,
        adapter: torch.nn.Module,
        merged: torch.nn.Module,
        tokenizer: Any,
        frame: pd.DataFrame,
        task: TaskSpec,
        spec: EvalSpec,
    ) -> MergeCheck:
        """Start/end logits of adapter and merged model agree within merge_tolerance; same answers."""
        ans_a, log_a = predict(adapter, tokenizer, frame, task, spec.batch_size)
        ans_b, log_b = predict(merged, tokenizer, frame, task, spec.batch_size)
        diff = max(
            (float(np.abs(a[k] - b[k]).max()) for a, b in zip(log_a, log_b, strict=True) for k in (0, 1)), default=0.0
        )
        f1_a, f1_b = score(frame, ans_a, task)["f1"], score(frame, ans_b, task)["f1"]
        quantities = [
            MergeQuantity("max_abs_span_logit_diff", diff, spec.merge_tolerance),
            MergeQuantity("squad_f1_abs_diff", abs(f1_a - f1_b)),
            MergeQuantity(
                "answer_agreement", float(np.mean([ans_a[k] == ans_b[k] for k in ans_a])) if ans_a else 1.0, bound="min"
            ),
        ]
        return MergeCheck(quantities, examples=len(frame), details={"squad_f1_adapter": f1_a, "squad_f1_merged": f1_b})

    def probe_inputs(self, model_spec: ModelSpec, task: TaskSpec, frame: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
        """Question and context as a pair (truncated at max_length, first window)."""
        return load_tokenizer(model_spec), pd.DataFrame(
            {
                A.COL_ID: frame[A.COL_ID].to_numpy(),
                A.COL_TEXT: frame[COL_QUESTION].to_numpy(),
                A.COL_TEXT_PAIR: frame[COL_CONTEXT].to_numpy(),
            }
        )
