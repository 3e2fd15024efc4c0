"""The TaskType contract: everything a task type contributes to a study, and nothing else.

Generic steps (prepare, train, evaluate, baseline, merge, verify, representations, validation,
report) call these methods and never branch on a type's name. A type implements the abstract
methods; the concrete ones (model loading with LoRA, adapters, tuned models) fit most types and are
overridden where a type differs (extractive QA's LoRA keeps its span head trainable, for example).
"""

from __future__ import annotations

import abc
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec, ValidationSpec
    from tunetrace.models.placement import Placement
    from tunetrace.registry import Entry
    from tunetrace.tasks.partial import BatchStore


@dataclasses.dataclass
class TrainingParts:
    """What a task type contributes to a run; the loop around it (resume, monitor, representation
    capture, checkpoints, export) is the same for every task type (`training.loop.train_run`)."""

    model: Any
    tokenizer: Any
    train_set: Any
    eval_set: Any  # None: this task type has no in-training evaluation
    collator: Any
    truncated: int = 0  # training examples cut at max_length
    info: dict[str, Any] = dataclasses.field(default_factory=dict)  # extra run.json fields
    trainer_class: Any = None  # default: transformers.Trainer
    compute_metrics: Any = None


@dataclasses.dataclass
class Evaluation:
    """A scored model (or baseline): the metrics document, one row per example, a plain-text report."""

    metrics: dict[str, Any]
    predictions: pd.DataFrame | None = None
    report: str = ""

    @classmethod
    def of_baselines(
        cls, primary_metric: str, baselines: dict[str, Any], reference: str, predictions: pd.DataFrame | None
    ) -> Evaluation:
        """A task's baseline document: every baseline's metrics, the one it is judged against (`reference`, whose
        primary value becomes the document's) and that baseline's per-example rows."""
        document = {
            "primary_metric": primary_metric,
            "reference": reference,
            "primary": baselines[reference]["primary"],
            "baselines": baselines,
        }
        return cls(document, predictions)


@dataclasses.dataclass
class ModelOutputs:
    """A model's raw outputs on an eval split: one row per example (column `id`, in the split's order) with
    what `score` needs (logits, per-example losses, answers) and nothing `score` computes. The training job
    writes them from its saved final model; evaluate_run scores them, so a change of evaluation settings
    rescores without loading the model. Array columns hold one list per row; `info` is JSON (counts)."""

    table: pd.DataFrame
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


def array_column(outputs: ModelOutputs, name: str) -> Any:
    """An array column of `outputs.table` as one 2-D float array (rows x values)."""
    import numpy as np

    return (
        np.stack([np.asarray(v, dtype=np.float32) for v in outputs.table[name]])
        if len(outputs.table)
        else (np.zeros((0, 0), dtype=np.float32))
    )


@dataclasses.dataclass(frozen=True)
class MergeQuantity:
    """One number comparing the adapter model with the merged model.

    `bound` "max": passes when value <= tolerance (a difference); "min": when value >= tolerance (an
    agreement). Without a tolerance the quantity is reported, not checked.
    """

    name: str
    value: float | None
    tolerance: float | None = None
    bound: str = "max"

    @property
    def checked(self) -> bool:
        return self.tolerance is not None

    @property
    def passed(self) -> bool:
        if self.tolerance is None:
            return True
        if self.value is None:
            return False
        return self.value <= self.tolerance if self.bound == "max" else self.value >= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "tolerance": self.tolerance,
            "bound": self.bound,
            "checked": self.checked,
            "passed": self.passed,
        }


@dataclasses.dataclass
class MergeCheck:
    """Adapter model against merged model on the eval split: named quantities, passed when all checked pass."""

    quantities: list[MergeQuantity]
    examples: int
    details: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. each model's loss

    @property
    def passed(self) -> bool:
        return all(q.passed for q in self.quantities)

    def failures(self) -> list[str]:
        return [
            f"{q.name} {q.value:.3g} ({'>' if q.bound == 'max' else '<'} tolerance {q.tolerance:.3g})"
            if q.value is not None
            else f"{q.name} undefined"
            for q in self.quantities
            if not q.passed
        ]


class TaskType(abc.ABC):
    """A kind of task (classification, causal LM, extractive QA, ...): how its rows, models and scores work."""

    name: ClassVar[str]
    peft_task_type: ClassVar[str | None] = None  # PEFT's task_type for LoRA on this type's model
    # The name of the baseline in `baseline()`'s document that needs no model at all (the majority class,
    # the uniform distribution, "no answer"): a run that does not beat it learned nothing. None: the type
    # has no such baseline (its baselines are all models), and validation skips that check.
    trivial_baseline: ClassVar[str | None] = None

    def __init__(self, entry: Entry) -> None:
        self.entry = entry  # the registry's facts about this type (one source: the registry)

    def primary_metric(self, task: TaskSpec) -> str:
        return task.primary_metric if task.primary_metric in self.entry.metrics else next(iter(self.entry.metrics))

    def higher_is_better(self, metric: str) -> bool:
        return self.entry.metrics.get(metric, True)

    def num_labels(self, task: TaskSpec) -> int | None:
        """Classes of a classification head (chance-level loss checks); None where the type has no head."""
        return None

    def prediction_flags(self, predictions: pd.DataFrame, task: TaskSpec, spec: ValidationSpec) -> list[dict[str, str]]:
        """Signs of a degenerate model in a run's eval predictions (predictions.parquet, as `evaluate` wrote
        it): [{"code", "message"}, ...], each message saying what was seen (numbers) and what usually fixes
        it. Validation adds the run, the file and the severity. Default: none (types without labels)."""
        return []

    # --- data ---
    @abc.abstractmethod
    def standardise(self, frame: pd.DataFrame, task: TaskSpec, origin: str, id_prefix: str) -> pd.DataFrame:
        """Source rows -> the type's standard columns (artifacts.COL_* and its own), errors naming file/row/column."""

    def class_labels(self, task: TaskSpec) -> list[str] | None:
        """The classes a prepared row's `artifacts.COL_LABEL` indexes, in index order, for prepare_data's
        degenerate-data check (rows per class); None where rows carry no class label."""
        return None

    # --- models ---
    @abc.abstractmethod
    def load_model(
        self,
        model_spec: ModelSpec,
        task: TaskSpec,
        path: str | None = None,
        gradient_checkpointing: bool = False,
        placement: Placement | None = None,
    ) -> torch.nn.Module:
        """The type's model from the base (`path` None) or from a saved directory (full run, merged model);
        an inference job passes its `placement` (models.placement), training none (loaded on the CPU)."""

    def model_skeleton(self, model_spec: ModelSpec, task: TaskSpec) -> torch.nn.Module:
        """The model `load_model` would return, built from the base's config on the meta device (no weights
        read): check_model matches LoRA targets against its module names before any job loads weights.
        Default: the bare backbone (AutoModel); a type with a head builds its head's class."""
        from tunetrace.models.loading import meta_skeleton

        return meta_skeleton(model_spec, "AutoModel")

    def load_tokenizer(self, model_spec: ModelSpec, path: str | None = None) -> Any:
        from tunetrace.models.loading import load_tokenizer

        return load_tokenizer(model_spec, path)

    def apply_lora(self, model: torch.nn.Module, method: MethodSpec) -> torch.nn.Module:
        from tunetrace.models.loading import apply_lora

        model = apply_lora(model, method.lora, self.peft_task_type)
        if method.gradient_checkpointing:
            model.enable_input_require_grads()
        return model

    def build_model(self, model_spec: ModelSpec, task: TaskSpec, method: MethodSpec) -> torch.nn.Module:
        """The model a run trains: the base, with LoRA applied for lora methods."""
        from tunetrace.models.loading import name_adapter_base

        model = self.load_model(model_spec, task, gradient_checkpointing=method.gradient_checkpointing)
        return name_adapter_base(self.apply_lora(model, method), model_spec) if method.is_lora else model

    def load_adapter_model(
        self, model_spec: ModelSpec, task: TaskSpec, adapter_dir: str | os.PathLike, placement: Placement | None = None
    ) -> torch.nn.Module:
        """The base with a trained LoRA adapter attached (not merged); PEFT puts each adapter weight on the
        device of the layer it adapts, so a placed or sharded base stays so."""
        from peft import PeftModel

        return PeftModel.from_pretrained(self.load_model(model_spec, task, placement=placement), str(adapter_dir))

    def load_tuned_model(
        self,
        model_spec: ModelSpec,
        task: TaskSpec,
        method: MethodSpec,
        final_dir: str | os.PathLike,
        placement: Placement | None = None,
    ) -> torch.nn.Module:
        """A run's final model from its `final/` directory (LoRA: the base with the adapter attached)."""
        if method.is_lora:
            return self.load_adapter_model(model_spec, task, final_dir, placement=placement)
        return self.load_model(model_spec, task, path=str(Path(final_dir)), placement=placement)

    # --- training, evaluation, baselines, merge check, probes ---
    @abc.abstractmethod
    def training_parts(
        self, model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, data_dir: str | os.PathLike
    ) -> TrainingParts:
        """Model, data, collator and loss of one run (the global seed is set before this)."""

    @abc.abstractmethod
    def predict(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        frame: pd.DataFrame,
        task: TaskSpec,
        batch_size: int,
        store: BatchStore | None = None,
    ) -> ModelOutputs:
        """The model's raw outputs on `frame` (a prepared eval split), in its row order. With a `store`
        (tasks.partial), each finished batch of forward passes is kept, and those an earlier attempt finished
        are loaded instead of recomputed."""

    @abc.abstractmethod
    def score(
        self, outputs: ModelOutputs, frame: pd.DataFrame, task: TaskSpec, spec: EvalSpec, seed: int
    ) -> Evaluation:
        """Metrics (with `primary_metric` and `primary`), one row per example and a report, from `predict`'s
        outputs on the same `frame`."""

    def evaluate(
        self, model: torch.nn.Module, tokenizer: Any, frame: pd.DataFrame, task: TaskSpec, spec: EvalSpec, seed: int
    ) -> Evaluation:
        """Predict on `frame` and score, in one go."""
        return self.score(self.predict(model, tokenizer, frame, task, spec.batch_size), frame, task, spec, seed)

    @abc.abstractmethod
    def baseline(
        self,
        model_spec: ModelSpec,
        task: TaskSpec,
        spec: EvalSpec,
        data_dir: str | os.PathLike,
        seed: int,
        store: BatchStore | None = None,
    ) -> Evaluation:
        """What the task looks like before fine-tuning: metrics {primary_metric, reference, primary, baselines}
        and the per-example predictions of the reference baseline (or of the base model); `store` as in
        `predict`, for the base model's forward passes."""

    @abc.abstractmethod
    def merge_check(
        self,
        adapter: torch.nn.Module,
        merged: torch.nn.Module,
        tokenizer: Any,
        frame: pd.DataFrame,
        task: TaskSpec,
        spec: EvalSpec,
    ) -> MergeCheck:
        """Compare the adapter model with the merged model on `frame`, with the type's own named quantities."""

    @abc.abstractmethod
    def probe_inputs(self, model_spec: ModelSpec, task: TaskSpec, frame: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
        """Tokenizer and the text the model reads for each row (id, text[, text_pair]), for representation probes."""
