"""The task-type registry: each name, where its `TaskType` lives, and the facts that config checks and
the DAG build need before any model loads. Imports nothing of the package (no torch, no task type):
`tunetrace.tasks.dispatch.get_task_type` turns an entry into the type's instance.

Adding a task type is one module under `tunetrace/tasks/`, one entry here and one schema fragment
(docs/extending.md); the conformance matrix (tests/test_task_conformance.py) runs every entry here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

CLASSIFICATION_METRICS = {
    "accuracy": True,
    "f1": True,
    "macro_f1": True,
    "precision": True,
    "recall": True,
    "loss": False,
}


@dataclasses.dataclass(frozen=True)
class Entry:
    """Where a task type's class lives ("module:Class") and what can be known without importing it."""

    target: str
    # metrics a task of this type can name as primary_metric, the first being the default -> higher is better
    metrics: Mapping[str, bool]
    text_pairs: bool = False  # accepts two text_fields (a sentence pair)
    label_head: bool = False  # trains a head over the labels with a cross-entropy loss (tasks.<t>.class_weights apply)
    # the baseline (in results/baseline/{task}/metrics.json) that is the pretrained model scored as it is;
    # None where the type adds a newly initialised head, whose untrained output says nothing of the base model
    base_model_baseline: str | None = None
    # computes its metrics during training (Trainer compute_metrics); the others report only eval_loss there
    metrics_in_training: bool = False
    # for the runtime estimate at the DAG build (tunetrace.cluster.requests): each example fills max_length (a
    # context windowed at doc_stride), and evaluating it may decode up to max_new_tokens more
    fills_max_length: bool = False
    decodes_in_eval: bool = False

    @property
    def module(self) -> str:
        return self.target.split(":", 1)[0]


REGISTRY: dict[str, Entry] = {
    "sequence_classification": Entry(
        "tunetrace.tasks.classification:SequenceClassification",
        CLASSIFICATION_METRICS,
        text_pairs=True,
        label_head=True,
        metrics_in_training=True,
    ),
    "generative_classification": Entry(
        "tunetrace.tasks.generative:GenerativeClassification",
        CLASSIFICATION_METRICS,
        text_pairs=True,
        base_model_baseline="base_prompted",
        decodes_in_eval=True,
    ),
    "causal_lm": Entry(
        "tunetrace.tasks.causal_lm:CausalLM", {"loss": False, "perplexity": False}, base_model_baseline="base_model"
    ),
    "distribution": Entry(
        "tunetrace.tasks.distribution:Distribution",
        {"wasserstein": False, "mae": False, "correlation": True},
        base_model_baseline="base_model",
    ),
    "extractive_qa": Entry(
        "tunetrace.tasks.extractive_qa:ExtractiveQA", {"squad_f1": True, "exact": True}, fills_max_length=True
    ),
}


def task_type_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def entry(name: str) -> Entry:
    """The registry entry of a task type; an unknown name names the config key and the known types."""
    if name not in REGISTRY:
        raise ValueError(f"tasks.<name>.type: unknown task type '{name}'; known: {sorted(REGISTRY)}")
    return REGISTRY[name]


def primary_metric(name: str, requested: str | None) -> str:
    """The metric a task of type `name` is judged by: `requested` when the type reports it, else its default."""
    metrics = entry(name).metrics
    return requested if requested in metrics else next(iter(metrics))


def higher_is_better(name: str, metric: str) -> bool:
    """Direction of a metric of a task type (metrics it does not list count as higher-is-better)."""
    return entry(name).metrics.get(metric, True)
