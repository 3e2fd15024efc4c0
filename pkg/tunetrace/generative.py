"""generative_classification: a decoder LLM classifies text through a prompt.

A row becomes a prompt (`prompt_template`, default "{text}\\nLABEL:") and, for training, the
completion " <label word>". Predictions come from label-word scoring (`decoding: score`: the label
whose word's first token is most likely after the prompt) or from greedy generation parsed as
`LABEL: <word>` (`decoding: generate`). Unparseable generations are counted, kept with their text
(the model's rationale) in the predictions, and scored as wrong; never dropped.
The baseline is the model before fine-tuning, prompted with `baseline_prompt_template`.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import artifacts as A
from .causal_lm import decoder_parts, load_decoder_tokenizer, load_trained
from .causal_lm import load_base_model as load_base_model  # noqa: PLC0414 - every decoder task starts from the same model
from .causal_lm import load_tuned_model as load_tuned_model  # noqa: PLC0414
from .causal_lm import probe_inputs as causal_probe_inputs
from .causal_lm import merge_adapter as merge_adapter  # noqa: PLC0414 - same merge for every decoder task
from .config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from .data import load_prepared
from .evaluation import format_report
from .fileio import write_json, write_text
from .merge import MergeCheckError, compare_logits
from .metrics import classification_metrics, cross_entropy, group_error_rates, softmax
from .models import load_causal_adapter_model, load_causal_lm
from .task_data import COL_COMPLETION, COL_PROMPT

log = logging.getLogger(__name__)
DEFAULT_TEMPLATE = "{text}\nLABEL:"
UNPARSEABLE = -1


def label_words(task: TaskSpec) -> list[str]:
    words = list(task.label_words) if task.label_words else task.label_names
    if len(words) != len(task.labels):
        raise ValueError(f"tasks.{task.name}.label_words: {len(words)} words for {len(task.labels)} labels")
    return words


def render_prompts(frame: pd.DataFrame, template: str | None) -> list[str]:
    """Fill the template with each row's text (and text_pair)."""
    template = template or DEFAULT_TEMPLATE
    pairs = frame[A.COL_TEXT_PAIR] if A.COL_TEXT_PAIR in frame else [""] * len(frame)
    return [template.format(text=t, text_pair=p) for t, p in zip(frame[A.COL_TEXT], pairs)]


def sft_frame(frame: pd.DataFrame, task: TaskSpec) -> pd.DataFrame:
    """Prompt/completion rows: the completion is the label word."""
    words = label_words(task)
    return pd.DataFrame({A.COL_ID: frame[A.COL_ID], COL_PROMPT: render_prompts(frame, task.prompt_template),
                         COL_COMPLETION: [words[i] for i in frame[A.COL_LABEL]]})


def first_token_ids(tokenizer: Any, words: list[str]) -> list[int]:
    """The first token of " <word>" for each word; they must differ for scoring to tell labels apart."""
    ids = [tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in words]
    if len(set(ids)) != len(ids):
        raise ValueError(f"label words {words} share a first token; choose label_words that start differently")
    return ids


@torch.no_grad()
def next_token_logits(model: torch.nn.Module, tokenizer: Any, prompts: list[str], max_length: int,
                      batch_size: int) -> tuple[torch.Tensor, int]:
    """Logits of the token after each prompt (prompts keep their end; over-long ones lose their start)."""
    model.eval()
    head = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    encoded = [head + tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    truncated = sum(len(e) > max_length for e in encoded)
    encoded = [e[-max_length:] for e in encoded]
    out = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        width = max(map(len, chunk))
        ids = torch.tensor([c + [tokenizer.pad_token_id] * (width - len(c)) for c in chunk])
        mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in chunk])
        logits = model(input_ids=ids, attention_mask=mask).logits
        out.append(logits[torch.arange(len(chunk)), mask.sum(1) - 1].float())
    return torch.cat(out), truncated


def parse_label(text: str, words: list[str]) -> int:
    """Index of the label named after `LABEL:` (or first in the text), case-insensitive; -1 if none."""
    lowered = text.strip().lower()
    match = re.search(r"label\s*:\s*(\S+)", lowered)
    candidate = match.group(1) if match else (lowered.split() or [""])[0]
    candidate = candidate.strip(".,;:!\"'()[]")
    for i, word in enumerate(words):
        if candidate == word.lower():
            return i
    return UNPARSEABLE


@torch.no_grad()
def generate_texts(model: torch.nn.Module, tokenizer: Any, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy continuations, one prompt at a time (no padding side to get wrong)."""
    model.eval()
    texts = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        if tokenizer.bos_token_id is not None:
            ids = torch.cat([torch.tensor([[tokenizer.bos_token_id]]), ids], dim=1)
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        texts.append(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
    return texts


def predict(model: torch.nn.Module, tokenizer: Any, frame: pd.DataFrame, task: TaskSpec, template: str | None,
            batch_size: int) -> tuple[np.ndarray, np.ndarray, list[str] | None, int]:
    """Label-word logits, predicted indices (-1 unparseable), generated texts (generate mode), truncations."""
    prompts = render_prompts(frame, template)
    words = label_words(task)
    logits, truncated = next_token_logits(model, tokenizer, prompts, task.max_length, batch_size)
    scores = logits[:, first_token_ids(tokenizer, words)].numpy()
    if task.decoding == "score":
        return scores, scores.argmax(1), None, truncated
    texts = generate_texts(model, tokenizer, prompts, task.max_new_tokens)
    return scores, np.array([parse_label(t, words) for t in texts]), texts, truncated


def score(scores: np.ndarray, preds: np.ndarray, frame: pd.DataFrame, task: TaskSpec) -> dict[str, Any]:
    """Classification metrics with unparseable outputs counted (and wrong), group FPR/FNR."""
    y_true = frame[A.COL_LABEL].to_numpy()
    result: dict[str, Any] = classification_metrics(y_true, preds, len(task.labels), task.positive_index)
    unparseable = int((preds == UNPARSEABLE).sum())
    result.update({"unparseable": unparseable, "unparseable_rate": unparseable / max(len(preds), 1),
                   "loss": cross_entropy(scores, y_true), "decoding": task.decoding})
    result["primary_metric"], result["primary"] = task.primary_metric, result[task.primary_metric]
    if A.COL_GROUP in frame:
        result["groups"] = group_error_rates(y_true, preds, frame[A.COL_GROUP].to_numpy(), task.positive_index)
    return result


def predictions_frame(scores: np.ndarray, preds: np.ndarray, texts: list[str] | None, frame: pd.DataFrame,
                      task: TaskSpec) -> pd.DataFrame:
    names = task.label_names
    out = pd.DataFrame({A.COL_ID: frame[A.COL_ID], A.COL_LABEL: frame[A.COL_LABEL], "prediction": preds})
    out["prediction_name"] = [names[p] if p != UNPARSEABLE else "<unparseable>" for p in preds]
    out["correct"] = out["prediction"] == out[A.COL_LABEL]
    for i, name in enumerate(names):
        out[f"prob_{name}"] = softmax(scores)[:, i]
    if texts is not None:
        out["generation"] = texts  # the model's own words, rationale included
    if A.COL_GROUP in frame:
        out[A.COL_GROUP] = frame[A.COL_GROUP].to_numpy()
    return out


def training_parts(model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, data_dir: str | os.PathLike) -> Any:
    """SFT on prompt -> label word (loss on the label word only)."""
    train, evaluation = load_prepared(data_dir)
    return decoder_parts(model_spec, task, method, sft_frame(train, task), sft_frame(evaluation, task))


def probe_inputs(model_spec: ModelSpec, task: TaskSpec, frame: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    """Representation probe: the task prompt of each example (the text fine-tuning conditions on)."""
    return causal_probe_inputs(model_spec, task, sft_frame(frame, task))


def _evaluate(model: torch.nn.Module, tokenizer: Any, frame: pd.DataFrame, task: TaskSpec, template: str | None,
              batch_size: int) -> tuple[dict[str, Any], pd.DataFrame]:
    scores, preds, texts, truncated = predict(model, tokenizer, frame, task, template, batch_size)
    metrics = score(scores, preds, frame, task)
    metrics["truncated_eval_examples"] = truncated
    return metrics, predictions_frame(scores, preds, texts, frame, task)


def evaluate_run(model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, spec: EvalSpec, seed: int,
                 data_dir: str | os.PathLike, run_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Evaluate the fine-tuned model with the (simple) task prompt."""
    _, frame = load_prepared(data_dir)
    tokenizer = load_decoder_tokenizer(model_spec, str(Path(run_dir) / A.FINAL_DIR))
    metrics, rows = _evaluate(load_trained(model_spec, method, run_dir), tokenizer, frame, task, task.prompt_template, spec.batch_size)
    metrics.update({"method": method.name, "task": task.name, "seed": seed})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(out / A.PREDICTIONS, index=False)
    report = format_report(f"{method.name} / {task.name} / seed {seed}", metrics)
    write_text(out / A.EVAL_REPORT, report + f"unparseable outputs: {metrics['unparseable']} ({metrics['unparseable_rate']:.1%})\n")
    write_json(out / A.METRICS, metrics)
    return metrics


def evaluate_baseline(model_spec: ModelSpec, task: TaskSpec, spec: EvalSpec, data_dir: str | os.PathLike,
                      out_path: str | os.PathLike, seed: int = 0) -> dict[str, Any]:
    """The model before fine-tuning, with the baseline (sophisticated) prompt; predictions kept beside the metrics."""
    _, frame = load_prepared(data_dir)
    template = task.baseline_prompt_template or task.prompt_template
    metrics, rows = _evaluate(load_causal_lm(model_spec), load_decoder_tokenizer(model_spec), frame, task, template, spec.batch_size)
    metrics["prompt_template"] = template or DEFAULT_TEMPLATE
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(Path(out_path).with_name(A.PREDICTIONS), index=False)  # beside metrics.json: the "before" predictions
    output = {"task": task.name, "model": model_spec.name_or_path, "primary_metric": task.primary_metric,
              "reference": "base_prompted", "primary": metrics["primary"], "baselines": {"base_prompted": metrics}}
    write_json(out_path, output)
    return output


def verify_merge(model_spec: ModelSpec, task: TaskSpec, spec: EvalSpec, data_dir: str | os.PathLike,
                 adapter_dir: str | os.PathLike, merged_dir: str | os.PathLike, out_path: str | os.PathLike,
                 identity: dict[str, Any] | None = None) -> dict[str, Any]:
    """Label-word logits of adapter and merged model agree within merge_tolerance."""
    _, frame = load_prepared(data_dir)
    tokenizer = load_decoder_tokenizer(model_spec, str(merged_dir))
    ids = first_token_ids(tokenizer, label_words(task))
    prompts = render_prompts(frame, task.prompt_template)
    a = next_token_logits(load_causal_adapter_model(model_spec, str(adapter_dir)), tokenizer, prompts, task.max_length, spec.batch_size)[0][:, ids]
    b = next_token_logits(load_causal_lm(model_spec, path=str(merged_dir)), tokenizer, prompts, task.max_length, spec.batch_size)[0][:, ids]
    result = compare_logits(a.numpy(), b.numpy(), frame[A.COL_LABEL].to_numpy())
    result.update({**(identity or {}), "tolerance": spec.merge_tolerance, "examples": len(frame), "on_failure": spec.merge_failure,
                   "passed": result["max_abs_logit_diff"] <= spec.merge_tolerance})
    write_json(out_path, result)
    if not result["passed"] and spec.merge_failure == "error":
        raise MergeCheckError(f"merge check failed: max |label-word logit diff| {result['max_abs_logit_diff']:.3g} > {spec.merge_tolerance:.3g}")
    return result
