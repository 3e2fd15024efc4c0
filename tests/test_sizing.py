"""training.sizing: planned optimiser steps (as the Trainer counts them) and the too-few-steps rule of thumb."""

from __future__ import annotations

import json
import logging

import pytest

from guard_helpers import MODEL, tiny_method, tiny_task
from tunetrace.training.loop import train_run
from tunetrace.training.sizing import SizingSpec, log_plan, plan, planned_steps, too_few_steps

SPEC = SizingSpec.from_dict({})


def test_demo_run_plans_ninety_steps():
    """480 rows, batch 16, 3 epochs on one process: 30 steps per epoch, 90 in all."""
    assert planned_steps(480, 16, 1, 1, 3, None) == 90


def test_accumulation_and_ranks_divide_the_steps():
    """100 rows on 2 ranks (50 each), batch 8 (7 batches), accumulation 2: 4 steps per epoch (last group partial)."""
    assert planned_steps(100, 8, 2, 2, 1, None) == 4
    assert planned_steps(100, 8, 2, 2, 2.5, None) == 10


def test_max_steps_overrides_epochs():
    """max_steps is the plan whatever the epochs say."""
    assert planned_steps(480, 16, 1, 1, 3, 7) == 7


def test_demo_plan_passes_the_rule_of_thumb():
    """90 steps and 3 epochs of a 2-label task pass (60 steps, 1 epoch needed): the default study gets no warning."""
    assert too_few_steps(plan(480, 2, 16, 1, 1, 3, None), SPEC) is None


def test_many_labels_need_more_steps():
    """The same 90 steps are too few for 10 labels (30 per label: 300)."""
    problem = too_few_steps(plan(480, 10, 16, 1, 1, 3, None), SPEC)
    assert problem is not None and "90 optimiser steps < 300" in problem


def test_less_than_one_epoch_is_too_little():
    """100 steps of batch 8 over 10,000 rows see 8% of the data: too few, whatever the step count."""
    problem = too_few_steps(plan(10_000, None, 8, 1, 1, 3, 100), SPEC)
    assert problem is not None and "0.08 passes over the 10000 training examples" in problem


def test_log_plan_warns_with_the_run_name(caplog: pytest.LogCaptureFixture):
    """A 4-step plan logs the step count and a WARNING naming the run and the fix."""
    with caplog.at_level(logging.INFO, logger="tunetrace.training.sizing"):
        log_plan("full/tiny/seed0", plan(48, 2, 8, 1, 1, 3, 4), SPEC)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("full/tiny/seed0: too few steps")
    assert "raise methods.<m>.epochs or max_steps" in warnings[0]


def test_tiny_run_records_the_trainer_plan_and_warns(tmp_path, caplog: pytest.LogCaptureFixture):
    """A 1-epoch tiny run (48 rows, batch 8): run.json's planned_steps (the Trainer's count), the sizing plan and
    the steps taken are all 6, and the log warns that 6 steps are too few."""
    task, data = tiny_task(tmp_path)
    method = tiny_method("full", max_steps=None, epochs=1, save_every_steps=None)
    with caplog.at_level(logging.INFO, logger="tunetrace.training.sizing"):
        train_run(MODEL, task, method, 0, data, tmp_path / "run", sizing=SPEC)
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["planned_steps"] == meta["sizing"]["planned_steps"] == meta["global_steps"] == 6
    assert "6 optimiser steps < 60" in meta["sizing"]["too_few_steps"]
    assert any("too few steps" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
