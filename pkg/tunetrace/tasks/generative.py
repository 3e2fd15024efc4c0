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
from typing import Any

import numpy as np
import pandas as pd
import torch

from tunetrace import artifacts as A
from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.data.readers import load_prepared
from tunetrace.evaluation.metrics import classification_metrics, cross_entropy, group_error_rates
from tunetrace.models.placement import input_device, placement_for
from tunetrace.tasks.base import Evaluation, MergeCheck, ModelOutputs, TrainingParts, array_column
from tunetrace.tasks.causal_lm import DecoderTaskType, decoder_parts, load_decoder_tokenizer, prompt_text
from tunetrace.tasks.labels import (
    format_report,
    label_prediction_flags,
    logit_quantities,
    predictions_frame,
    standardise_labelled,
)
from tunetrace.tasks.partial import BatchStore, run_batches
from tunetrace.tasks.rows import COL_COMPLETION, COL_PROMPT

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
    return [template.format(text=t, text_pair=p) for t, p in zip(frame[A.COL_TEXT], pairs, strict=True)]


def sft_frame(frame: pd.DataFrame, task: TaskSpec) -> pd.DataFrame:
    """Prompt/completion rows: the completion is the label word."""
    words = label_words(task)
    return pd.DataFrame(
        {
            A.COL_ID: frame[A.COL_ID],
            COL_PROMPT: render_prompts(frame, task.prompt_template),
            COL_COMPLETION: [words[i] for i in frame[A.COL_LABEL]],
        }
    )


def first_token_ids(tokenizer: Any, words: list[str]) -> list[int]:
    """The first token of " <word>" for each word; they must differ for scoring to tell labels apart."""
    ids = [tokenizer(" " + w, add_special_tokens=False)["input_ids"][0] for w in words]
    if len(set(ids)) != len(ids):
        raise ValueError(f"label words {words} share a first token; choose label_words that start differently")
    return ids


@torch.no_grad()
def next_token_logits(
    model: torch.nn.Module,
    tokenizer: Any,
    prompts: list[str],
    max_length: int,
    batch_size: int,
    store: BatchStore | None = None,
) -> tuple[torch.Tensor, int]:
    """Logits of the token after each prompt (prompts keep their end; over-long ones lose their start); finished
    batches kept in `store` (tasks.partial)."""
    model.eval()
    head = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    encoded = [head + tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    truncated = sum(len(e) > max_length for e in encoded)
    encoded = [e[-max_length:] for e in encoded]

    def last_logits(start: int) -> dict[str, torch.Tensor]:
        chunk = encoded[start : start + batch_size]
        width = max(map(len, chunk))
        ids = torch.tensor([c + [tokenizer.pad_token_id] * (width - len(c)) for c in chunk])
        mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in chunk])
        device = input_device(model)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.cpu()
        return {"logits": logits[torch.arange(len(chunk)), mask.sum(1) - 1].float()}

    done = run_batches(range(0, len(encoded), batch_size), last_logits, store, "next_token")
    return torch.cat([d["logits"] for d in done]), truncated


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
def generate_texts(
    model: torch.nn.Module, tokenizer: Any, prompts: list[str], max_new_tokens: int, store: BatchStore | None = None
) -> list[str]:
    """Greedy continuations, one prompt at a time (no padding side to get wrong); each one's new tokens kept in
    `store` (tasks.partial)."""
    model.eval()

    def continuation(prompt: str) -> dict[str, torch.Tensor]:
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        if tokenizer.bos_token_id is not None:
            ids = torch.cat([torch.tensor([[tokenizer.bos_token_id]]), ids], dim=1)
        ids = ids.to(input_device(model))
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        return {"tokens": out[0, ids.shape[1] :]}

    done = run_batches(prompts, continuation, store, "generate")
    return [tokenizer.decode(d["tokens"], skip_special_tokens=True) for d in done]


def predict(
    model: torch.nn.Module,
    tokenizer: Any,
    frame: pd.DataFrame,
    task: TaskSpec,
    template: str | None,
    batch_size: int,
    store: BatchStore | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str] | None, int]:
    """Label-word logits, predicted indices (-1 unparseable), generated texts (generate mode), truncations."""
    prompts = render_prompts(frame, template)
    words = label_words(task)
    logits, truncated = next_token_logits(model, tokenizer, prompts, task.max_length, batch_size, store)
    scores = logits[:, first_token_ids(tokenizer, words)].numpy()
    if task.decoding == "score":
        return scores, scores.argmax(1), None, truncated
    texts = generate_texts(model, tokenizer, prompts, task.max_new_tokens, store)
    return scores, np.array([parse_label(t, words) for t in texts]), texts, truncated


def score(
    scores: np.ndarray, preds: np.ndarray, frame: pd.DataFrame, task: TaskSpec, min_group_class_examples: int
) -> dict[str, Any]:
    """Classification metrics with unparseable outputs counted (and wrong), group FPR/FNR (None, with the
    reason, below `min_group_class_examples` of a class; see evaluation.metrics.group_error_rates)."""
    y_true = frame[A.COL_LABEL].to_numpy()
    result: dict[str, Any] = classification_metrics(y_true, preds, len(task.labels), task.positive_index)
    unparseable = int((preds == UNPARSEABLE).sum())
    result.update(
        {
            "unparseable": unparseable,
            "unparseable_rate": unparseable / max(len(preds), 1),
            "loss": cross_entropy(scores, y_true),
            "decoding": task.decoding,
        }
    )
    result["primary_metric"], result["primary"] = task.primary_metric, result[task.primary_metric]
    if A.COL_GROUP in frame:
        result["groups"] = group_error_rates(
            y_true, preds, frame[A.COL_GROUP].to_numpy(), task.positive_index, min_group_class_examples
        )
    return result


class GenerativeClassification(DecoderTaskType):
    """A decoder classifies through a prompt; fine-tuning is SFT on the label word."""

    name = "generative_classification"
    trivial_baseline = None  # its one baseline is the prompted base model, not a trivial predictor

    def num_labels(self, task: TaskSpec) -> int | None:
        return None  # the loss is over the vocabulary, not over a head of len(labels) classes

    def prediction_flags(self, predictions: pd.DataFrame, task: TaskSpec, spec: Any) -> list[dict[str, str]]:
        return label_prediction_flags(predictions, task, spec)

    def standardise(self, frame: pd.DataFrame, task: TaskSpec, origin: str, id_prefix: str) -> pd.DataFrame:
        return standardise_labelled(frame, task, origin, id_prefix)

    def class_labels(self, task: TaskSpec) -> list[str] | None:
        return task.label_names

    def training_parts(
        self, model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, data_dir: str | os.PathLike
    ) -> TrainingParts:
        """SFT on prompt -> label word (loss on the label word only)."""
        train, evaluation = load_prepared(data_dir)
        return decoder_parts(self, model_spec, task, method, sft_frame(train, task), sft_frame(evaluation, task))

    def predict(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        frame: pd.DataFrame,
        task: TaskSpec,
        batch_size: int,
        store: BatchStore | None = None,
    ) -> ModelOutputs:
        """The fine-tuned model with the (simple) task prompt."""
        return self._predict(model, tokenizer, frame, task, task.prompt_template, batch_size, store)

    def _predict(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        frame: pd.DataFrame,
        task: TaskSpec,
        template: str | None,
        batch_size: int,
        store: BatchStore | None = None,
    ) -> ModelOutputs:
        scores, preds, texts, truncated = predict(model, tokenizer, frame, task, template, batch_size, store)
        table = pd.DataFrame({A.COL_ID: frame[A.COL_ID].to_numpy(), "scores": list(scores), "prediction": preds})
        if texts is not None:
            table["generation"] = texts
        return ModelOutputs(table, {"truncated": truncated})

    def score(
        self, outputs: ModelOutputs, frame: pd.DataFrame, task: TaskSpec, spec: EvalSpec, seed: int
    ) -> Evaluation:
        scores, preds = array_column(outputs, "scores"), outputs.table["prediction"].to_numpy()
        metrics = {
            **score(scores, preds, frame, task, spec.min_group_class_examples),
            "truncated_eval_examples": outputs.info["truncated"],
        }
        rows = predictions_frame(scores, frame, task, y_pred=preds, unparseable=UNPARSEABLE)
        if "generation" in outputs.table:
            rows["generation"] = outputs.table["generation"].to_numpy()  # the model's own words, rationale included
        report = (
            format_report(metrics)
            + f"unparseable outputs: {metrics['unparseable']} ({metrics['unparseable_rate']:.1%})\n"
        )
        return Evaluation(metrics, rows, report)

    def baseline(
        self,
        model_spec: ModelSpec,
        task: TaskSpec,
        spec: EvalSpec,
        data_dir: str | os.PathLike,
        seed: int,
        store: BatchStore | None = None,
    ) -> Evaluation:
        """The model before fine-tuning, with the baseline (sophisticated) prompt; its predictions are kept."""
        _, frame = load_prepared(data_dir)
        template = task.baseline_prompt_template or task.prompt_template
        model = self.load_model(model_spec, task, placement=placement_for(model_spec))
        outputs = self._predict(model, self.load_tokenizer(model_spec), frame, task, template, spec.batch_size, store)
        result = self.score(outputs, frame, task, spec, seed)
        metrics = {**result.metrics, "prompt_template": template or DEFAULT_TEMPLATE}
        return Evaluation.of_baselines(
            task.primary_metric, {"base_prompted": metrics}, "base_prompted", result.predictions
        )

    def merge_check(
        self,
        adapter: torch.nn.Module,
        merged: torch.nn.Module,
        tokenizer: Any,
        frame: pd.DataFrame,
        task: TaskSpec,
        spec: EvalSpec,
    ) -> MergeCheck:
        """Label-word logits of adapter and merged model agree within merge_tolerance."""
        ids = first_token_ids(tokenizer, label_words(task))
        prompts = render_prompts(frame, task.prompt_template)
        a = next_token_logits(adapter, tokenizer, prompts, task.max_length, spec.batch_size)[0][:, ids].numpy()
        b = next_token_logits(merged, tokenizer, prompts, task.max_length, spec.batch_size)[0][:, ids].numpy()
        quantities, details = logit_quantities(
            a, b, frame[A.COL_LABEL].to_numpy(), spec.merge_tolerance, diff_name="max_abs_label_word_logit_diff"
        )
        return MergeCheck(quantities, examples=len(frame), details=details)

    def probe_inputs(self, model_spec: ModelSpec, task: TaskSpec, frame: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
        """The task prompt of each example (the text fine-tuning conditions on)."""
        tokenizer = load_decoder_tokenizer(model_spec)
        prompts = sft_frame(frame, task)
        texts = [prompt_text(row, tokenizer) for _, row in prompts.iterrows()]
        return tokenizer, pd.DataFrame({A.COL_ID: frame[A.COL_ID].to_numpy(), A.COL_TEXT: texts})
