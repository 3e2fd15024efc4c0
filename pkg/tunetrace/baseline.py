"""What the pretrained model does before fine-tuning: majority class and a linear probe."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch

from . import artifacts as A
from .config import EvalSpec, ModelSpec, TaskSpec
from .data import load_prepared
from .evaluation import score_predictions
from .fileio import write_json
from .models import resolve_model_path, set_offline_if_local, load_tokenizer

log = logging.getLogger(__name__)


@torch.no_grad()
def mean_pooled_features(model_spec: ModelSpec, texts: list[str], pairs: list[str] | None, max_length: int,
                         batch_size: int) -> np.ndarray:
    """Mean of the last hidden layer over non-padding tokens, per example."""
    from tqdm.auto import tqdm
    from transformers import AutoModel

    set_offline_if_local(model_spec.name_or_path)
    tokenizer = load_tokenizer(model_spec)
    model = AutoModel.from_pretrained(resolve_model_path(model_spec.name_or_path),
                                      trust_remote_code=model_spec.trust_remote_code).eval()
    chunks = []
    for start in tqdm(range(0, len(texts), batch_size), desc="features", leave=False, mininterval=5):
        second = pairs[start:start + batch_size] if pairs else None
        batch = tokenizer(texts[start:start + batch_size], second, truncation=True, max_length=max_length,
                          padding=True, return_tensors="pt")
        hidden = model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).float()
        chunks.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)).numpy())
    return np.concatenate(chunks)


def _one_hot_logits(predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Log-probabilities of a hard prediction, smoothed so the loss stays finite."""
    probs = np.full((len(predictions), num_classes), 1e-6)
    probs[np.arange(len(predictions)), predictions] = 1.0
    return np.log(probs / probs.sum(axis=1, keepdims=True))


def evaluate_baseline(model_spec: ModelSpec, task: TaskSpec, spec: EvalSpec, data_dir: str | os.PathLike,
                      out_path: str | os.PathLike, seed: int = 0) -> dict[str, Any]:
    """Majority-class and linear-probe (logistic regression on frozen features) baselines."""
    from .tasks import task_handler

    if (handler := task_handler(task.type)) is not None:
        return handler.evaluate_baseline(model_spec, task, spec, data_dir, out_path, seed)
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train, evaluation = load_prepared(data_dir)
    k = len(task.labels)
    majority = int(np.bincount(train[A.COL_LABEL].to_numpy(), minlength=k).argmax())
    results: dict[str, Any] = {
        "majority": score_predictions(_one_hot_logits(np.full(len(evaluation), majority), k), evaluation, task, spec, seed)
    }
    results["majority"]["class"] = task.label_names[majority]

    def features(frame: Any) -> np.ndarray:
        pairs = frame[A.COL_TEXT_PAIR].tolist() if A.COL_TEXT_PAIR in frame else None
        return mean_pooled_features(model_spec, frame[A.COL_TEXT].tolist(), pairs, task.max_length, spec.batch_size)

    scaler = StandardScaler()
    x_train = scaler.fit_transform(features(train))
    x_eval = scaler.transform(features(evaluation))
    probe = LogisticRegression(max_iter=2000, C=1.0, random_state=seed).fit(x_train, train[A.COL_LABEL].to_numpy())
    logits = np.full((len(evaluation), k), np.log(1e-12))
    # clipped so an over-confident probe gives a large but finite loss
    logits[:, probe.classes_] = np.log(np.clip(probe.predict_proba(x_eval), 1e-12, 1.0))
    results["linear_probe"] = score_predictions(logits, evaluation, task, spec, seed)
    reference = max(("majority", "linear_probe"), key=lambda name: results[name]["primary"])
    output = {"task": task.name, "model": model_spec.name_or_path, "primary_metric": task.primary_metric,
              "reference": reference, "primary": results[reference]["primary"], "baselines": results}
    write_json(out_path, output)
    log.info("baseline %s: majority %.4f, linear probe %.4f", task.name, results["majority"]["primary"],
             results["linear_probe"]["primary"])
    return output
