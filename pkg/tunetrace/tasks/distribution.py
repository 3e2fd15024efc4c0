"""distribution: a decoder LLM predicts a probability distribution over answer options.

The prediction is the softmax, over the options, of the next-token logits of each option's first
token after the prompt (`prompt_template`, default "{text}\\nANSWER:"). Training minimises the
cross-entropy between the target shares and that distribution. Metrics against the target shares:
Wasserstein-1 distance (options as ordered points 0..k-1), mean absolute error and Pearson correlation.
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
from tunetrace.models.placement import placement_for
from tunetrace.registry import primary_metric
from tunetrace.tasks.base import Evaluation, MergeCheck, MergeQuantity, ModelOutputs, TrainingParts, array_column
from tunetrace.tasks.causal_lm import DecoderTaskType, decoder_parts, load_decoder_tokenizer
from tunetrace.tasks.generative import first_token_ids, next_token_logits
from tunetrace.tasks.partial import BatchStore
from tunetrace.tasks.rows import COL_TARGET, standardise_rows

log = logging.getLogger(__name__)
DEFAULT_TEMPLATE = "{text}\nANSWER:"


def wasserstein_1d(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise W1 between distributions on the ordered points 0..k-1: sum of |CDF differences|."""
    return np.abs(np.cumsum(np.asarray(p, float) - np.asarray(q, float), axis=-1))[..., :-1].sum(-1)


def distribution_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Mean W1, MAE over all shares, Pearson correlation of all shares (0 when undefined)."""
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    flat_p, flat_t = pred.ravel(), target.ravel()
    corr = float(np.corrcoef(flat_p, flat_t)[0, 1]) if flat_p.std() > 0 and flat_t.std() > 0 else 0.0
    return {
        "wasserstein": float(wasserstein_1d(pred, target).mean()),
        "mae": float(np.abs(pred - target).mean()),
        "correlation": corr,
        "n": int(len(pred)),
    }


def _options(task: TaskSpec) -> list[str]:
    if not task.options or len(task.options) < 2:
        raise ValueError(f"tasks.{task.name}.options: a distribution task needs at least two options")
    return list(task.options)


def prompts(frame: pd.DataFrame, task: TaskSpec) -> list[str]:
    template = task.prompt_template or DEFAULT_TEMPLATE
    return [template.format(text=t) for t in frame[A.COL_TEXT]]


def targets(frame: pd.DataFrame) -> np.ndarray:
    return np.array([json.loads(t) for t in frame[COL_TARGET]], dtype=float)


def predict(
    model: torch.nn.Module,
    tokenizer: Any,
    frame: pd.DataFrame,
    task: TaskSpec,
    batch_size: int,
    store: BatchStore | None = None,
) -> tuple[np.ndarray, int]:
    """Predicted shares per option, and how many prompts were truncated (batches kept in `store`)."""
    logits, truncated = next_token_logits(model, tokenizer, prompts(frame, task), task.max_length, batch_size, store)
    option_logits = logits[:, first_token_ids(tokenizer, _options(task))]
    return torch.softmax(option_logits, dim=-1).numpy(), truncated


def _score(pred: np.ndarray, frame: pd.DataFrame, task: TaskSpec) -> dict[str, Any]:
    result: dict[str, Any] = distribution_metrics(pred, targets(frame))
    primary = primary_metric("distribution", task.primary_metric)
    result["primary_metric"], result["primary"] = primary, result[primary]
    if A.COL_GROUP in frame:
        groups = frame[A.COL_GROUP].to_numpy()
        result["strata"] = {
            str(g): distribution_metrics(pred[groups == g], targets(frame)[groups == g]) for g in sorted(set(groups))
        }
    return result


class _Encoded(torch.utils.data.Dataset):
    def __init__(self, ids: list[list[int]], target: np.ndarray) -> None:
        self.ids, self.target = ids, target

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "target": self.target[i]}


def _encode(frame: pd.DataFrame, task: TaskSpec, tokenizer: Any) -> tuple[_Encoded, int]:
    head = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    ids = [head + tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts(frame, task)]
    truncated = sum(len(x) > task.max_length for x in ids)
    return _Encoded([x[-task.max_length :] for x in ids], targets(frame)), truncated


def _collator(tokenizer: Any):  # type: ignore[no-untyped-def]
    def fn(batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = [b["input_ids"] + [tokenizer.pad_token_id] * (width - len(b["input_ids"])) for b in batch]
        mask = [[1] * len(b["input_ids"]) + [0] * (width - len(b["input_ids"])) for b in batch]
        return {
            "input_ids": torch.tensor(ids),
            "attention_mask": torch.tensor(mask),
            "target": torch.tensor(np.stack([b["target"] for b in batch]), dtype=torch.float32),
        }

    return fn


def _trainer_class(option_ids: list[int]) -> Any:
    """A Trainer whose loss is the soft cross-entropy of the target shares under the option softmax."""
    from transformers import Trainer

    class DistributionTrainer(Trainer):
        def _get_collator_with_removed_columns(self, data_collator, description=None):  # type: ignore[no-untyped-def]
            return data_collator  # keep `target`, which the model's forward does not take

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[no-untyped-def]
            target = inputs.pop("target")
            out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            last = out.logits[torch.arange(len(target)), inputs["attention_mask"].sum(1) - 1][:, option_ids]
            loss = -(target * torch.log_softmax(last.float(), dim=-1)).sum(-1).mean()
            return (loss, out) if return_outputs else loss

    return DistributionTrainer


def fill_rows(frame: pd.DataFrame, task: TaskSpec, origin: str, out: pd.DataFrame) -> None:
    """text and target (shares over the options, normalised to sum to one)."""
    check_columns(frame, [task.text_fields[0], task.target_field], origin)
    k = len(task.options or ())
    targets = []
    for i, raw in enumerate(frame[task.target_field]):
        values = json.loads(raw) if isinstance(raw, str) else list(raw)
        arr = np.asarray(values, dtype=float)
        if arr.shape != (k,) or np.any(arr < 0) or arr.sum() <= 0:
            raise row_error(
                origin, i, task.target_field, f"expected {k} non-negative shares (one per option), got {values!r}"
            )
        targets.append(json.dumps((arr / arr.sum()).tolist()))
    out[A.COL_TEXT] = frame[task.text_fields[0]].map(cell_text).to_numpy()
    out[COL_TARGET] = targets


def predictions_table(pred: np.ndarray, frame: pd.DataFrame, task: TaskSpec) -> pd.DataFrame:
    rows = pd.DataFrame({A.COL_ID: frame[A.COL_ID]})
    for i, option in enumerate(_options(task)):
        rows[f"pred_{option}"], rows[f"target_{option}"] = pred[:, i], targets(frame)[:, i]
    rows["wasserstein"] = wasserstein_1d(pred, targets(frame))
    return rows


class Distribution(DecoderTaskType):
    """A decoder predicts shares over ordered options (a survey's answer distribution); scored by Wasserstein."""

    name = "distribution"
    trivial_baseline = "uniform"  # equal shares for every option, no model

    def standardise(self, frame: pd.DataFrame, task: TaskSpec, origin: str, id_prefix: str) -> pd.DataFrame:
        return standardise_rows(frame, task, origin, id_prefix, fill_rows)

    def training_parts(
        self, model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, data_dir: str | os.PathLike
    ) -> TrainingParts:
        """Fine-tune the decoder so its option distribution matches the target shares."""
        train, evaluation = load_prepared(data_dir)
        tokenizer = load_decoder_tokenizer(model_spec)
        train_set, truncated = _encode(train, task, tokenizer)
        eval_set, _ = _encode(evaluation, task, tokenizer)
        info = {"truncated_examples": truncated}
        return decoder_parts(
            self,
            model_spec,
            task,
            method,
            train,
            evaluation,
            trainer_class=_trainer_class(first_token_ids(tokenizer, _options(task))),
            datasets=(train_set, eval_set, info),
            collator=_collator(tokenizer),
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
        pred, truncated = predict(model, tokenizer, frame, task, batch_size, store)
        return ModelOutputs(
            pd.DataFrame({A.COL_ID: frame[A.COL_ID].to_numpy(), "shares": list(pred)}), {"truncated": truncated}
        )

    def score(
        self, outputs: ModelOutputs, frame: pd.DataFrame, task: TaskSpec, spec: EvalSpec, seed: int
    ) -> Evaluation:
        pred = array_column(outputs, "shares")
        metrics = {**_score(pred, frame, task), "truncated_eval_examples": outputs.info["truncated"]}
        report = (
            f"wasserstein {metrics['wasserstein']:.4f}  mae {metrics['mae']:.4f}  "
            f"correlation {metrics['correlation']:.4f}  (n {metrics['n']})\n"
        )
        return Evaluation(metrics, predictions_table(pred, frame, task), report)

    def baseline(
        self,
        model_spec: ModelSpec,
        task: TaskSpec,
        spec: EvalSpec,
        data_dir: str | os.PathLike,
        seed: int,
        store: BatchStore | None = None,
    ) -> Evaluation:
        """The base model's distributions, and the uniform and train-mean distributions, against the targets."""
        train, frame = load_prepared(data_dir)
        model = self.load_model(model_spec, task, placement=placement_for(model_spec))
        pred, _ = predict(model, self.load_tokenizer(model_spec), frame, task, spec.batch_size, store)
        k = len(_options(task))
        baselines = {
            "base_model": _score(pred, frame, task),
            "uniform": _score(np.full((len(frame), k), 1.0 / k), frame, task),
            "train_mean": _score(np.tile(targets(train).mean(0), (len(frame), 1)), frame, task),
        }
        primary = baselines["base_model"]["primary_metric"]
        better = max if self.higher_is_better(primary) else min
        reference = better(baselines, key=lambda name: baselines[name]["primary"])
        # the base model's distributions
        return Evaluation.of_baselines(primary, baselines, reference, predictions_table(pred, frame, task))

    def merge_check(
        self,
        adapter: torch.nn.Module,
        merged: torch.nn.Module,
        tokenizer: Any,
        frame: pd.DataFrame,
        task: TaskSpec,
        spec: EvalSpec,
    ) -> MergeCheck:
        """Predicted shares of adapter and merged model agree within merge_tolerance."""
        a, _ = predict(adapter, tokenizer, frame, task, spec.batch_size)
        b, _ = predict(merged, tokenizer, frame, task, spec.batch_size)
        ma, mb = distribution_metrics(a, targets(frame)), distribution_metrics(b, targets(frame))
        quantities = [
            MergeQuantity("max_abs_share_diff", float(np.abs(a - b).max()) if a.size else 0.0, spec.merge_tolerance),
            MergeQuantity("wasserstein_abs_diff", abs(ma["wasserstein"] - mb["wasserstein"])),
            MergeQuantity(
                "top_option_agreement", float(np.mean(a.argmax(1) == b.argmax(1))) if len(a) else 1.0, bound="min"
            ),
        ]
        return MergeCheck(
            quantities,
            examples=len(frame),
            details={"wasserstein_adapter": ma["wasserstein"], "wasserstein_merged": mb["wasserstein"]},
        )

    def probe_inputs(self, model_spec: ModelSpec, task: TaskSpec, frame: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
        """The task prompt of each example."""
        return load_decoder_tokenizer(model_spec), pd.DataFrame(
            {A.COL_ID: frame[A.COL_ID].to_numpy(), A.COL_TEXT: prompts(frame, task)}
        )
