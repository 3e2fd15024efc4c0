"""Task types: how prepared rows become model batches.

`sequence_classification` handles one text field or a sentence pair.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from . import artifacts as A


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


def make_collator(tokenizer: Any) -> Any:
    """Dynamic padding to the longest example in each batch."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, dataset: EncodedDataset, tokenizer: Any, batch_size: int) -> torch.Tensor:
    """Logits for every example, in order, in eval mode (float32 on CPU)."""
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=make_collator(tokenizer))
    outputs = []
    for batch in tqdm(loader, desc="predict", leave=False, mininterval=5):
        batch.pop("labels", None)
        batch = {k: v.to(device) for k, v in batch.items()}
        outputs.append(model(**batch).logits.float().cpu())
    model.train(was_training)
    return torch.cat(outputs)


# Task types other than sequence_classification live in their own modules, each providing
# training_parts (a training.TrainingParts: model, data, collator, loss), evaluate_run,
# evaluate_baseline, merge_adapter and verify_merge with the signatures of the
# sequence_classification functions, plus load_base_model, load_tuned_model and probe_inputs for
# representation drift and weight analysis; training/evaluation/baseline/merge dispatch on task.type.
TASK_TYPE_MODULES = {
    "sequence_classification": None,  # the built-in path in training.py, evaluation.py, baseline.py, merge.py
    "causal_lm": "tunetrace.causal_lm",
    "generative_classification": "tunetrace.generative",
    "distribution": "tunetrace.distribution",
    "extractive_qa": "tunetrace.extractive_qa",
}


def task_handler(task_type: str) -> Any:
    """The module implementing a task type, or None for the built-in sequence_classification path."""
    import importlib

    if task_type not in TASK_TYPE_MODULES:
        raise ValueError(f"tasks.<name>.type: unknown task type '{task_type}'; known: {sorted(TASK_TYPE_MODULES)}")
    name = TASK_TYPE_MODULES[task_type]
    return importlib.import_module(name) if name else None


def load_base_model(model_spec: Any, task: Any) -> torch.nn.Module:
    """The pretrained model every run of `task` starts from (classification: a fresh head)."""
    from .models import load_classifier

    handler = task_handler(task.type)
    return handler.load_base_model(model_spec, task) if handler else load_classifier(model_spec, task.label_names)


def load_tuned_model(model_spec: Any, task: Any, method: Any, final_dir: Any) -> torch.nn.Module:
    """A run's final model from its `final/` directory (LoRA: the base with the adapter attached)."""
    from .models import load_adapter_model, load_classifier

    if (handler := task_handler(task.type)) is not None:
        return handler.load_tuned_model(model_spec, task, method, final_dir)
    if method.is_lora:
        return load_adapter_model(model_spec, task.label_names, str(final_dir))
    return load_classifier(model_spec, task.label_names, path=str(final_dir))


def probe_inputs(model_spec: Any, task: Any, frame: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    """The tokenizer and the text the model reads for each eval row (id, text[, text_pair]), for
    representation probes: decoder tasks give their prompt, extractive QA its question/context pair."""
    from .models import load_tokenizer

    handler = task_handler(task.type)
    return handler.probe_inputs(model_spec, task, frame) if handler else (load_tokenizer(model_spec), frame)
