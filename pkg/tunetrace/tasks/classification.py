"""sequence_classification: one text or a sentence pair, a classification head over the task's labels.

Baselines: the majority class of the training split, and a linear probe (logistic regression) on the
frozen model's mean-pooled features. The merge check compares adapter and merged logits.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tunetrace import artifacts as A
from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.data.readers import load_prepared
from tunetrace.evaluation.metrics import classification_metrics
from tunetrace.models.pooling import resolve_pooling
from tunetrace.tasks.base import Evaluation, MergeCheck, ModelOutputs, TaskType, TrainingParts, array_column
from tunetrace.tasks.labels import (
    class_weight_vector,
    format_report,
    label_prediction_flags,
    logit_quantities,
    predictions_frame,
    score_predictions,
    standardise_labelled,
)

if TYPE_CHECKING:
    import torch

    from tunetrace.models.placement import Placement
    from tunetrace.tasks.partial import BatchStore

log = logging.getLogger(__name__)


def one_hot_logits(predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Log-probabilities of a hard prediction, smoothed so the loss stays finite."""
    probs = np.full((len(predictions), num_classes), 1e-6)
    probs[np.arange(len(predictions)), predictions] = 1.0
    return np.log(probs / probs.sum(axis=1, keepdims=True))


def linear_probe_logits(
    model_spec: ModelSpec,
    task: TaskSpec,
    train: pd.DataFrame,
    evaluation: pd.DataFrame,
    batch_size: int,
    seed: int,
    store: BatchStore | None = None,
) -> np.ndarray:
    """Log-probabilities of a logistic regression on the frozen model's mean-pooled features (their batches
    kept in `store`, tasks.partial)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from tunetrace.tasks.encoding import mean_pooled_features

    def features(frame: pd.DataFrame, name: str) -> np.ndarray:
        pairs = frame[A.COL_TEXT_PAIR].tolist() if A.COL_TEXT_PAIR in frame else None
        return mean_pooled_features(
            model_spec, frame[A.COL_TEXT].tolist(), pairs, task.max_length, batch_size, store, name
        )

    scaler = StandardScaler()
    x_train = scaler.fit_transform(features(train, "features_train"))
    x_eval = scaler.transform(features(evaluation, "features_eval"))
    probe = LogisticRegression(max_iter=2000, C=1.0, random_state=seed).fit(x_train, train[A.COL_LABEL].to_numpy())
    logits = np.full((len(evaluation), len(task.labels)), np.log(1e-12))
    # clipped so an over-confident probe gives a large but finite loss
    logits[:, probe.classes_] = np.log(np.clip(probe.predict_proba(x_eval), 1e-12, 1.0))
    return logits


def compute_metrics_fn(task: TaskSpec) -> Any:
    """Trainer's compute_metrics for evaluation during training (early stopping)."""

    def compute(prediction: Any) -> dict[str, float]:
        preds = np.argmax(prediction.predictions, axis=-1)
        scores = classification_metrics(prediction.label_ids, preds, len(task.labels), task.positive_index)
        return {k: v for k, v in scores.items() if k != "n"}

    return compute


class SequenceClassification(TaskType):
    name = "sequence_classification"
    peft_task_type = "SEQ_CLS"
    trivial_baseline = "majority"

    def num_labels(self, task: TaskSpec) -> int | None:
        return len(task.labels)

    def prediction_flags(self, predictions: pd.DataFrame, task: TaskSpec, spec: Any) -> list[dict[str, str]]:
        return label_prediction_flags(predictions, task, spec)

    def standardise(self, frame: pd.DataFrame, task: TaskSpec, origin: str, id_prefix: str) -> pd.DataFrame:
        return standardise_labelled(frame, task, origin, id_prefix)

    def class_labels(self, task: TaskSpec) -> list[str] | None:
        return task.label_names

    def load_model(
        self,
        model_spec: ModelSpec,
        task: TaskSpec,
        path: str | None = None,
        gradient_checkpointing: bool = False,
        placement: Placement | None = None,
    ) -> torch.nn.Module:
        from tunetrace.models.loading import load_classifier

        # gradient checkpointing of encoders is switched on by the Trainer (activation_checkpointing)
        return load_classifier(
            model_spec, task.label_names, path=path, pooling=self.pooling(model_spec, task, path), placement=placement
        )

    def model_skeleton(self, model_spec: ModelSpec, task: TaskSpec) -> torch.nn.Module:
        """The head load_model builds: the architecture's own, or models.heads' mean-pooled class (no pooler)."""
        from tunetrace.models.loading import load_model_config, meta_skeleton

        config = load_model_config(model_spec)  # first: a model that cannot load is named before the pooling
        model_class: str | type = "AutoModelForSequenceClassification"
        if self.pooling(model_spec, task) == "mean":
            from tunetrace.models.heads import MEAN_POOLED_HEADS

            model_class = MEAN_POOLED_HEADS[config.model_type]
        return meta_skeleton(model_spec, model_class, num_labels=len(task.labels))

    def pooling(self, model_spec: ModelSpec, task: TaskSpec, path: str | None = None) -> str:
        """task.pooling resolved for the base (path None) or a saved model: "cls" or "mean" (models.pooling)."""
        return resolve_pooling(task.pooling, path or model_spec.name_or_path, model_spec.revision)

    def training_parts(
        self, model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, data_dir: str | os.PathLike
    ) -> TrainingParts:
        from tunetrace.tasks.encoding import encode_classification, make_collator, weighted_loss_trainer

        train_frame, eval_frame = load_prepared(data_dir)
        weights = class_weight_vector(task.class_weights, train_frame[A.COL_LABEL].to_numpy(), task)
        tokenizer = self.load_tokenizer(model_spec)
        train_set, truncated = encode_classification(train_frame, tokenizer, task.max_length)
        eval_set, _ = encode_classification(eval_frame, tokenizer, task.max_length)
        info: dict[str, Any] = {"pooling": self.pooling(model_spec, task)}
        if weights is not None:
            info["class_weights"] = dict(zip(task.label_names, weights, strict=True))
        return TrainingParts(
            model=self.build_model(model_spec, task, method),
            tokenizer=tokenizer,
            train_set=train_set,
            eval_set=eval_set,
            collator=make_collator(tokenizer),
            truncated=truncated,
            compute_metrics=compute_metrics_fn(task),
            info=info,
            trainer_class=weighted_loss_trainer(weights) if weights is not None else None,
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
        from tunetrace.tasks.encoding import encode_classification, predict_logits

        dataset, truncated = encode_classification(frame, tokenizer, task.max_length)
        logits = predict_logits(model, dataset, tokenizer, batch_size, store).numpy()
        return ModelOutputs(
            pd.DataFrame({A.COL_ID: frame[A.COL_ID].to_numpy(), "logits": list(logits)}), {"truncated": truncated}
        )

    def score(
        self, outputs: ModelOutputs, frame: pd.DataFrame, task: TaskSpec, spec: EvalSpec, seed: int
    ) -> Evaluation:
        logits = array_column(outputs, "logits")
        metrics = {
            **score_predictions(logits, frame, task, spec, seed),
            "truncated_eval_examples": outputs.info["truncated"],
        }
        return Evaluation(metrics, predictions_frame(logits, frame, task), format_report(metrics))

    def baseline(
        self,
        model_spec: ModelSpec,
        task: TaskSpec,
        spec: EvalSpec,
        data_dir: str | os.PathLike,
        seed: int,
        store: BatchStore | None = None,
    ) -> Evaluation:
        train, evaluation = load_prepared(data_dir)
        k = len(task.labels)
        majority = int(np.bincount(train[A.COL_LABEL].to_numpy(), minlength=k).argmax())
        results: dict[str, Any] = {
            "majority": score_predictions(
                one_hot_logits(np.full(len(evaluation), majority), k), evaluation, task, spec, seed
            )
        }
        results["majority"]["class"] = task.label_names[majority]
        probe = linear_probe_logits(model_spec, task, train, evaluation, spec.batch_size, seed, store)
        results["linear_probe"] = score_predictions(probe, evaluation, task, spec, seed)
        better = max if self.higher_is_better(task.primary_metric) else min
        reference = better(("majority", "linear_probe"), key=lambda name: results[name]["primary"])
        log.info(
            "baseline %s: majority %.4f, linear probe %.4f",
            task.name,
            results["majority"]["primary"],
            results["linear_probe"]["primary"],
        )
        logits = {"majority": one_hot_logits(np.full(len(evaluation), majority), k), "linear_probe": probe}[reference]
        return Evaluation.of_baselines(
            task.primary_metric, results, reference, predictions_frame(logits, evaluation, task)
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
        from tunetrace.tasks.encoding import encode_classification, predict_logits

        dataset, _ = encode_classification(frame, tokenizer, task.max_length)
        a = predict_logits(adapter, dataset, tokenizer, spec.batch_size).numpy()
        b = predict_logits(merged, dataset, tokenizer, spec.batch_size).numpy()
        quantities, details = logit_quantities(a, b, frame[A.COL_LABEL].to_numpy(), spec.merge_tolerance)
        return MergeCheck(quantities, examples=len(frame), details=details)

    def probe_inputs(self, model_spec: ModelSpec, task: TaskSpec, frame: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
        return self.load_tokenizer(model_spec), frame
