"""Sizing guidance at plan time: how many optimiser steps a run will take, and whether that is too few.

The rule of thumb (docs/guard.md): a run needs at least max(`min_steps`, `min_steps_per_label` x
labels) optimiser steps and at least `min_epochs` passes over its training examples. On the demo
study the train loss sits at chance (ln 2) for the first ~30 (full) and ~45 (LoRA) of its 90 steps
before it falls; runs much shorter than that end where they started: predicting the majority class.

Kept apart from guard.validation on purpose: training imports this module (its code hash reruns
training), and must not import the validation checks.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from typing import Any, ClassVar

from tunetrace.config import spec_from_dict

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SizingSpec:
    """The sizing keys of the `validation` section (the other keys are dropped)."""

    SCHEMA_SECTION: ClassVar[str] = "properties/validation"

    min_steps: int
    min_steps_per_label: int
    min_epochs: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SizingSpec:
        return spec_from_dict(cls, data)


def planned_steps(
    examples: int, batch_size: int, accumulation: int, world_size: int, epochs: float, max_steps: int | None
) -> int:
    """Optimiser steps of a run, as transformers.Trainer counts them: each rank sees ceil(examples /
    world_size) examples per epoch in ceil(.../batch_size) batches; a step every `accumulation` batches
    (a partial group at the epoch's end still steps); `max_steps` overrides epochs."""
    if max_steps:
        return int(max_steps)
    batches = math.ceil(math.ceil(examples / world_size) / batch_size)
    return math.ceil(epochs * max(math.ceil(batches / accumulation), 1))


def plan(
    examples: int,
    num_labels: int | None,
    batch_size: int,
    accumulation: int,
    world_size: int,
    epochs: float,
    max_steps: int | None,
) -> dict[str, Any]:
    """The facts of a run's size, as recorded in run.json under `sizing`."""
    steps = planned_steps(examples, batch_size, accumulation, world_size, epochs, max_steps)
    effective = batch_size * accumulation * world_size
    return {
        "train_examples": examples,
        "num_labels": num_labels,
        "batch_size": batch_size,
        "gradient_accumulation_steps": accumulation,
        "world_size": world_size,
        "effective_batch": effective,
        "epochs": None if max_steps else epochs,
        "max_steps": max_steps,
        "planned_steps": steps,
        "planned_epochs": steps * effective / examples if examples else 0.0,
    }


def too_few_steps(facts: Mapping[str, Any], spec: SizingSpec) -> str | None:
    """Why the planned run is too short under the rule of thumb, or None when it is not."""
    labels = facts["num_labels"]
    needed = max(spec.min_steps, spec.min_steps_per_label * labels if labels else 0)
    steps, epochs = facts["planned_steps"], facts["planned_epochs"]
    short = []
    if steps < needed:
        rule = f"max(validation.min_steps {spec.min_steps}" + (
            f", validation.min_steps_per_label {spec.min_steps_per_label} x {labels} labels)" if labels else ")"
        )
        short.append(f"{steps} optimiser steps < {needed} = {rule}")
    if epochs < spec.min_epochs:
        short.append(
            f"{epochs:.2f} passes over the {facts['train_examples']} training examples "
            f"< validation.min_epochs {spec.min_epochs:g}"
        )
    if not short:
        return None
    return (
        "; ".join(short) + f" (effective batch {facts['effective_batch']} = batch_size {facts['batch_size']} x "
        f"gradient_accumulation_steps {facts['gradient_accumulation_steps']} x world size {facts['world_size']}). "
        "Too few steps usually end in a model that predicts the majority class: raise methods.<m>.epochs or "
        "max_steps, or lower batch_size"
    )


def log_plan(run: str, facts: Mapping[str, Any], spec: SizingSpec | None) -> str | None:
    """Log the plan of one run; WARN (and return why) when it is too short."""
    log.info(
        "%s: %d planned optimiser steps (%d training examples, effective batch %d, %.2f epochs)",
        run,
        facts["planned_steps"],
        facts["train_examples"],
        facts["effective_batch"],
        facts["planned_epochs"],
    )
    problem = too_few_steps(facts, spec) if spec is not None else None
    if problem:
        log.warning("%s: too few steps for its task size: %s", run, problem)
    return problem
