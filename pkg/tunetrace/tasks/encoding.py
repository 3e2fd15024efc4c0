"""The torch half of the label task types: tokenised datasets, batched forward passes, frozen features.

tasks.classification imports these inside the methods that run a model, so scoring a run (evaluate_run) and
preparing its data (prepare_data) import no torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from tunetrace import artifacts as A
from tunetrace.config import ModelSpec
from tunetrace.models.names import resolve_model_path, set_offline_if_local
from tunetrace.models.placement import input_device, placement_for
from tunetrace.tasks.batching import in_original_order, length_order
from tunetrace.tasks.partial import BatchStore, run_batches


class EncodedDataset(torch.utils.data.Dataset):
    """Pre-tokenised examples (lists of ids), padded per batch by the collator."""

    def __init__(self, encodings: dict[str, list[list[int]]], labels: list[int] | None) -> None:
        self.encodings = encodings
        self.labels = labels

    def __len__(self) -> int:
        return len(next(iter(self.encodings.values())))

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {key: values[index] for key, values in self.encodings.items()}
        if self.labels is not None:
            item["labels"] = self.labels[index]
        return item


def encode_classification(frame: pd.DataFrame, tokenizer: Any, max_length: int) -> tuple[EncodedDataset, int]:
    """Tokenise a prepared split; return the dataset and how many examples were truncated."""
    first = frame[A.COL_TEXT].tolist()
    second = frame[A.COL_TEXT_PAIR].tolist() if A.COL_TEXT_PAIR in frame else None
    full = tokenizer(first, second, truncation=False)
    truncated = sum(len(ids) > max_length for ids in full["input_ids"])
    encodings = tokenizer(first, second, truncation=True, max_length=max_length)
    return EncodedDataset(dict(encodings), frame[A.COL_LABEL].astype(int).tolist()), truncated


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy with a weight per label: sum_i w[y_i] * -log p_i(y_i) / sum_i w[y_i] (torch's)."""
    return torch.nn.functional.cross_entropy(logits.float(), labels, weight=weights.to(logits.device, torch.float32))


def weighted_loss_trainer(weights: list[float]) -> type:
    """A Trainer whose classification loss weighs each label (tasks.<task>.class_weights); the model is called
    without labels, so its own unweighted loss is never computed."""
    from transformers import Trainer

    class WeightedLossTrainer(Trainer):
        loss_weights = torch.tensor(weights, dtype=torch.float32)
        loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides it over accumulation steps

        def compute_loss(
            self,
            model: torch.nn.Module,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
            loss = weighted_cross_entropy(outputs.logits, inputs["labels"], self.loss_weights)
            return (loss, outputs) if return_outputs else loss

    return WeightedLossTrainer


def make_collator(tokenizer: Any) -> Any:
    """Dynamic padding to the longest example in each batch."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer)


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module, dataset: EncodedDataset, tokenizer: Any, batch_size: int, store: BatchStore | None = None
) -> torch.Tensor:
    """Logits for every example, in the dataset's order, in eval mode (float32 on CPU). The forward passes take the
    examples shortest first, so each batch pads to similar lengths (a third to a half fewer tokens on GLUE);
    with a `store`, finished batches are kept and an earlier attempt's are loaded (tasks.partial)."""
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    device = input_device(model)
    order = length_order([len(ids) for ids in dataset.encodings["input_ids"]])
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, order.tolist()), batch_size=batch_size, collate_fn=make_collator(tokenizer)
    )

    def logits(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch.pop("labels", None)
        return {"logits": model(**{k: v.to(device) for k, v in batch.items()}).logits.float()}

    batches = tqdm(loader, desc="predict", leave=False, mininterval=5, disable=None)
    outputs = [done["logits"] for done in run_batches(batches, logits, store, "logits")]
    model.train(was_training)
    return in_original_order(torch.cat(outputs), order)


@torch.no_grad()
def mean_pooled_features(
    model_spec: ModelSpec,
    texts: list[str],
    pairs: list[str] | None,
    max_length: int,
    batch_size: int,
    store: BatchStore | None = None,
    name: str = "features",
) -> np.ndarray:
    """Mean of the last hidden layer over non-padding tokens, per example (in the given order; the batches take
    the examples shortest first, as predict_logits does); finished batches kept in `store` under `name`."""
    from tqdm.auto import tqdm
    from transformers import AutoModel

    from tunetrace.models.loading import load_tokenizer, timed_load

    set_offline_if_local(model_spec.name_or_path)
    tokenizer = load_tokenizer(model_spec)
    source = resolve_model_path(model_spec.name_or_path)
    with timed_load(source):
        model = AutoModel.from_pretrained(
            source, trust_remote_code=model_spec.trust_remote_code, **placement_for(model_spec).load_kwargs()
        ).eval()
    lengths = [len(ids) for ids in tokenizer(texts, pairs, truncation=True, max_length=max_length)["input_ids"]]
    order = length_order(lengths)

    def pooled(start: int) -> dict[str, torch.Tensor]:
        rows = order[start : start + batch_size]
        batch = tokenizer(
            [texts[i] for i in rows],
            [pairs[i] for i in rows] if pairs else None,
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        hidden = model(**{k: v.to(input_device(model)) for k, v in batch.items()}).last_hidden_state.float().cpu()
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return {"features": (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)}

    starts = tqdm(range(0, len(texts), batch_size), desc="features", leave=False, mininterval=5, disable=None)
    chunks = [done["features"].numpy() for done in run_batches(starts, pooled, store, name)]
    return in_original_order(np.concatenate(chunks), order)
