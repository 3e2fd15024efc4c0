"""models.checks.check_model and the meta-device skeletons it reads (the refusals are in test_bad_inputs.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunetrace.config import LoraSpec, ModelSpec, TaskSpec
from tunetrace.models.checks import check_model
from tunetrace.models.loading import LORA_TARGETS, linear_layer_names
from tunetrace.tasks.dispatch import get_task_type
from tunetrace.tasks.registry import task_type_names

MINILM = ModelSpec.from_dict({})
# the model each registered type is checked with: an encoder for the head types, the tiny decoder otherwise
ENCODER_TYPES = ("sequence_classification", "extractive_qa")


def test_check_model_writes_the_resolved_lora_targets(tmp_path: Path) -> None:
    """The summary names the model, the task type's model class, and each LoRA method's targets: the
    architecture default for null, the configured ones otherwise, with the modules they match."""
    task = TaskSpec.from_dict("tiny", {"source": {}, "labels": ["a", "b", "c"]})
    lora = {"lora_r4": LoraSpec.from_dict({}), "lora_qkv": LoraSpec.from_dict({"target_modules": ["query", "key"]})}
    summary = check_model(MINILM, task, lora, tmp_path / "model.json")
    assert json.loads((tmp_path / "model.json").read_text()) == summary
    assert summary["model"]["model_type"] == "bert" and summary["model"]["num_hidden_layers"] == 6
    assert summary["task"]["model_class"] == "MeanPooledBertForSequenceClassification"  # MiniLM's pooling: mean
    assert summary["lora"]["lora_r4"] == {"target_modules": ["query", "value"], "from": "architecture default",
                                          "modules": 12}
    assert summary["lora"]["lora_qkv"]["from"] == "config" and summary["lora"]["lora_qkv"]["modules"] == 12


@pytest.mark.usefixtures("tiny_decoder_cache")
@pytest.mark.parametrize("type_name", task_type_names())
def test_every_task_type_builds_a_meta_skeleton(type_name: str) -> None:
    """Every registered type's model_skeleton is the class its load_model returns, built on the meta device (no
    weights held), with the linear layers its architecture's default LoRA targets name."""
    model = MINILM if type_name in ENCODER_TYPES else ModelSpec.from_dict({"name_or_path": "tiny:llama"})
    task = TaskSpec.from_dict("t", {"type": type_name, "source": {}, "options": ["a", "b"]})
    task_type = get_task_type(type_name)
    skeleton = task_type.model_skeleton(model, task)
    assert type(skeleton) is type(task_type.load_model(model, task))
    assert {p.device.type for p in skeleton.parameters()} == {"meta"}
    assert set(LORA_TARGETS[skeleton.config.model_type]) <= set(linear_layer_names(skeleton))
