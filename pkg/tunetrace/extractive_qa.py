"""extractive_qa: SQuAD v2 style span extraction with an encoder and a start/end head.

A context longer than max_length is cut into windows that overlap by `doc_stride` tokens. A window
without the whole answer (and every window of an unanswerable question) is trained to point at
[CLS]. Decoding takes the `n_best` start and end logits of each window, keeps spans inside the
context of at most `max_answer_length` tokens, and answers "" when the best [CLS] (null) score of the
question's windows beats the best span. Scores are the official SQuAD v2 EM/F1 (tunetrace.squad).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import artifacts as A
from .config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from .data import load_prepared
from .fileio import write_json, write_text
from .merge import MergeCheckError
from .models import DTYPES, _pretrained_kwargs, load_tokenizer, resolve_model_path, set_offline_if_local
from .squad import squad_v2_scores
from .task_data import COL_ANSWER_STARTS, COL_ANSWERS, COL_CONTEXT, COL_QUESTION

log = logging.getLogger(__name__)


def load_qa_model(spec: ModelSpec, path: str | None = None) -> torch.nn.Module:
    from transformers import AutoModelForQuestionAnswering

    set_offline_if_local(spec.name_or_path)
    return AutoModelForQuestionAnswering.from_pretrained(path or resolve_model_path(spec.name_or_path),
                                                         dtype=DTYPES[spec.dtype], **_pretrained_kwargs(spec))


def load_qa_adapter_model(spec: ModelSpec, adapter_dir: str) -> torch.nn.Module:
    from peft import PeftModel

    return PeftModel.from_pretrained(load_qa_model(spec), adapter_dir)


def apply_qa_lora(model: torch.nn.Module, spec: Any) -> torch.nn.Module:
    """LoRA with the span head trained in full. Not PEFT's QUESTION_ANS task type: its forward drops
    token_type_ids (peft 0.21), so the adapter model would see other inputs than the merged model."""
    from peft import LoraConfig, get_peft_model

    from .models import lora_targets

    config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout, bias=spec.bias,
                        target_modules=lora_targets(model, spec), modules_to_save=["qa_outputs"])
    return get_peft_model(model, config)


def _windows(frame: pd.DataFrame, tokenizer: Any, task: TaskSpec) -> Any:
    return tokenizer(frame[COL_QUESTION].tolist(), frame[COL_CONTEXT].tolist(), truncation="only_second",
                     max_length=task.max_length, stride=task.doc_stride, return_overflowing_tokens=True,
                     return_offsets_mapping=True)


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
            start, end = _span_positions(enc["offset_mapping"][w], enc.sequence_ids(w), starts[0], starts[0] + len(answers[0]))
        no_answer_windows += start == 0
        item = {k: enc[k][w] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        items.append({**item, "start_positions": start, "end_positions": end})
    return QADataset(items), {"windows": len(items), "examples": len(frame), "no_answer_windows": int(no_answer_windows),
                              "split_examples": int(len(items) - len(frame))}


@torch.no_grad()
def window_logits(model: torch.nn.Module, dataset: QADataset, tokenizer: Any, batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Start and end logits of every window (unpadded)."""
    from transformers import DataCollatorWithPadding

    model.eval()
    collator, out = DataCollatorWithPadding(tokenizer), []
    for start in range(0, len(dataset), batch_size):
        chunk = [{k: v for k, v in dataset[i].items() if k in ("input_ids", "attention_mask", "token_type_ids")}
                 for i in range(start, min(start + batch_size, len(dataset)))]
        batch = collator(chunk)
        result = model(**batch)
        for j, item in enumerate(chunk):
            n = len(item["input_ids"])
            out.append((result.start_logits[j, :n].float().numpy(), result.end_logits[j, :n].float().numpy()))
    return out


def decode(frame: pd.DataFrame, enc: Any, logits: list[tuple[np.ndarray, np.ndarray]], task: TaskSpec) -> dict[str, str]:
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
                    best[sample] = (score, context[offsets[s][0]:offsets[e][1]])
    answers = {}
    for sample, example_id in enumerate(frame[A.COL_ID]):
        span_score, text = best.get(sample, (-np.inf, ""))
        answers[str(example_id)] = text if span_score > null.get(sample, np.inf) else ""
    return answers


def predict(model: torch.nn.Module, tokenizer: Any, frame: pd.DataFrame, task: TaskSpec, batch_size: int) -> tuple[dict[str, str], list]:
    enc = _windows(frame, tokenizer, task)
    items = [{k: enc[k][w] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
             for w in range(len(enc["input_ids"]))]
    logits = window_logits(model, QADataset(items), tokenizer, batch_size)
    return decode(frame, enc, logits, task), logits


def score(frame: pd.DataFrame, answers: dict[str, str], task: TaskSpec) -> dict[str, Any]:
    """Official SQuAD v2 scores (percent, under `squad`) and fractions for the comparison."""
    gold = {str(i): json.loads(a) for i, a in zip(frame[A.COL_ID], frame[COL_ANSWERS])}
    official = squad_v2_scores(gold, answers)
    result: dict[str, Any] = {"squad": official, "exact": official["exact"] / 100, "squad_f1": official["f1"] / 100,
                              "f1": official["f1"] / 100, "n": official["total"],
                              "no_answer_predictions": sum(a == "" for a in answers.values())}
    primary = task.primary_metric if task.primary_metric in ("exact", "squad_f1") else "squad_f1"
    result["primary_metric"], result["primary"] = primary, result[primary]
    return result


def training_parts(model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, data_dir: str | os.PathLike) -> Any:
    """Fine-tune the start/end head (and the encoder, or LoRA adapters) on the windows."""
    from transformers import DataCollatorWithPadding

    from .training import TrainingParts

    train, _ = load_prepared(data_dir)
    tokenizer = load_tokenizer(model_spec)
    dataset, info = encode_train(train, tokenizer, task)
    model = load_qa_model(model_spec)
    if method.is_lora:
        model = apply_qa_lora(model, method.lora)
    return TrainingParts(model=model, tokenizer=tokenizer, train_set=dataset, eval_set=None,
                         collator=DataCollatorWithPadding(tokenizer), truncated=info["split_examples"],
                         info={"windows": info})


def load_base_model(model_spec: ModelSpec, task: TaskSpec) -> torch.nn.Module:
    """The pretrained encoder with a fresh span head (the model every run starts from)."""
    return load_qa_model(model_spec)


def load_tuned_model(model_spec: ModelSpec, task: TaskSpec | None, method: MethodSpec,
                     final_dir: str | os.PathLike) -> torch.nn.Module:
    """A run's final model (LoRA: base with the adapter attached, not merged)."""
    return load_qa_adapter_model(model_spec, str(final_dir)) if method.is_lora else load_qa_model(model_spec, str(final_dir))


def probe_inputs(model_spec: ModelSpec, task: TaskSpec, frame: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    """Representation probe: question and context as a pair (truncated at max_length, first window)."""
    return load_tokenizer(model_spec), pd.DataFrame({A.COL_ID: frame[A.COL_ID].to_numpy(),
                                                     A.COL_TEXT: frame[COL_QUESTION].to_numpy(),
                                                     A.COL_TEXT_PAIR: frame[COL_CONTEXT].to_numpy()})


def _load_trained(model_spec: ModelSpec, method: MethodSpec, run_dir: str | os.PathLike) -> torch.nn.Module:
    final = str(Path(run_dir) / A.FINAL_DIR)
    return load_qa_adapter_model(model_spec, final) if method.is_lora else load_qa_model(model_spec, final)


def evaluate_run(model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, spec: EvalSpec, seed: int,
                 data_dir: str | os.PathLike, run_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Any]:
    """SQuAD v2 EM/F1 (HasAns/NoAns) of a run; one predicted answer per question."""
    _, frame = load_prepared(data_dir)
    tokenizer = load_tokenizer(model_spec, str(Path(run_dir) / A.FINAL_DIR))
    answers, _ = predict(_load_trained(model_spec, method, run_dir), tokenizer, frame, task, spec.batch_size)
    metrics = {**score(frame, answers, task), "method": method.name, "task": task.name, "seed": seed}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({A.COL_ID: frame[A.COL_ID], "prediction": [answers[str(i)] for i in frame[A.COL_ID]],
                  "answers": frame[COL_ANSWERS]}).to_parquet(out / A.PREDICTIONS, index=False)
    write_text(out / A.EVAL_REPORT, json.dumps(metrics["squad"], indent=2) + "\n")
    write_json(out / A.METRICS, metrics)
    return metrics


def evaluate_baseline(model_spec: ModelSpec, task: TaskSpec, spec: EvalSpec, data_dir: str | os.PathLike,
                      out_path: str | os.PathLike, seed: int = 0) -> dict[str, Any]:
    """The no-answer baseline: "" for every question (50.07 F1 on SQuAD v2 dev)."""
    _, frame = load_prepared(data_dir)
    no_answer = score(frame, {str(i): "" for i in frame[A.COL_ID]}, task)
    output = {"task": task.name, "model": model_spec.name_or_path, "primary_metric": no_answer["primary_metric"],
              "reference": "no_answer", "primary": no_answer["primary"], "baselines": {"no_answer": no_answer}}
    write_json(out_path, output)
    return output


def merge_adapter(model_spec: ModelSpec, task: TaskSpec, adapter_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Any]:
    from .merge import save_merged

    return save_merged(load_qa_adapter_model(model_spec, str(adapter_dir)).merge_and_unload(), load_tokenizer(model_spec, str(adapter_dir)), model_spec, adapter_dir, out_dir)


def verify_merge(model_spec: ModelSpec, task: TaskSpec, spec: EvalSpec, data_dir: str | os.PathLike,
                 adapter_dir: str | os.PathLike, merged_dir: str | os.PathLike, out_path: str | os.PathLike,
                 identity: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start/end logits of adapter and merged model agree within merge_tolerance; same answers."""
    _, frame = load_prepared(data_dir)
    tokenizer = load_tokenizer(model_spec, str(merged_dir))
    ans_a, log_a = predict(load_qa_adapter_model(model_spec, str(adapter_dir)), tokenizer, frame, task, spec.batch_size)
    ans_b, log_b = predict(load_qa_model(model_spec, str(merged_dir)), tokenizer, frame, task, spec.batch_size)
    diff = max((float(np.abs(a[k] - b[k]).max()) for a, b in zip(log_a, log_b) for k in (0, 1)), default=0.0)
    f1_a, f1_b = score(frame, ans_a, task)["f1"], score(frame, ans_b, task)["f1"]
    result = {**(identity or {}), "max_abs_logit_diff": diff, "loss_abs_diff": abs(f1_a - f1_b),
              "label_agreement": float(np.mean([ans_a[k] == ans_b[k] for k in ans_a])) if ans_a else 1.0,
              "tolerance": spec.merge_tolerance, "examples": len(frame), "on_failure": spec.merge_failure,
              "passed": diff <= spec.merge_tolerance}
    write_json(out_path, result)
    if not result["passed"] and spec.merge_failure == "error":
        raise MergeCheckError(f"merge check failed: max |start/end logit diff| {diff:.3g} > {spec.merge_tolerance:.3g}")
    return result
