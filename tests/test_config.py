"""Config validation: defaults, and one clear message naming the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, tiny_config, write_sentiment_csv
from tunetrace.config import ConfigError, MethodSpec, TaskSpec, check_data_files, load_config, validate_config


def test_embedded_default_config_is_valid() -> None:
    """The shipped config/config.yaml validates and its data files exist."""
    config = load_config(REPO / "config" / "config.yaml", workdir=REPO)
    assert {m["type"] for m in config["methods"].values()} == {"full", "lora"}


def test_defaults_are_filled_in_nested_sections() -> None:
    """Absent keys get the schema default, also inside tasks, methods and lora blocks."""
    config = validate_config(tiny_config())
    lora = config["methods"]["lora_r4"]
    assert lora["lora"]["dropout"] == 0.05 and lora["scheduler"] == "linear"
    assert config["tasks"]["tiny"]["primary_metric"] == "accuracy"
    assert config["evaluation"]["merge_tolerance"] == 1e-4
    assert config["tracking"]["wandb_mode"] == "disabled"


def _error(config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    return str(info.value)


def test_unknown_key_is_named_with_allowed_keys() -> None:
    """An unknown method key names its path and lists the allowed keys."""
    config = tiny_config()
    config["methods"]["full"]["learnig_rate"] = 1e-4
    message = _error(config)
    assert "methods.full" in message and "learnig_rate" in message and "learning_rate" in message


def test_wrong_type_is_named() -> None:
    """A string where a number belongs names the key and the allowed type."""
    config = tiny_config()
    config["methods"]["full"]["batch_size"] = "sixteen"
    message = _error(config)
    assert "methods.full.batch_size" in message and "integer" in message


def test_method_type_outside_enum_lists_allowed_values() -> None:
    """A method type other than full/lora is rejected, listing both."""
    config = tiny_config()
    config["methods"]["full"]["type"] = "adapter"
    message = _error(config)
    assert "methods.full.type" in message and "full" in message and "lora" in message


def test_negative_learning_rate_is_rejected() -> None:
    """A negative learning rate names the key and the bound."""
    config = tiny_config()
    config["methods"]["lora_r4"]["learning_rate"] = -0.001
    message = _error(config)
    assert "methods.lora_r4.learning_rate" in message and "> 0" in message


def test_missing_data_file_is_named(tmp_path: Path) -> None:
    """A task whose data file is absent names the config key and the path."""
    config = validate_config(tiny_config())
    write_sentiment_csv(tmp_path / "data" / "train.csv", 8)
    with pytest.raises(ConfigError) as info:
        check_data_files(config, tmp_path)
    assert "tasks.tiny.source.eval" in str(info.value) and "data/eval.csv" in str(info.value)


def test_positive_label_must_be_a_label() -> None:
    """positive_label outside labels is a config error."""
    config = tiny_config()
    config["tasks"]["tiny"]["positive_label"] = "neutral"
    assert "tasks.tiny.positive_label" in _error(config)


def test_typed_views_round_trip() -> None:
    """Typed specs expose the validated values (LoRA block, positive class index)."""
    config = validate_config(tiny_config())
    method = MethodSpec.from_dict("lora_r4", config["methods"]["lora_r4"])
    task = TaskSpec.from_dict("tiny", config["tasks"]["tiny"])
    assert method.is_lora and method.lora.r == 4 and method.lora.alpha == 8
    assert task.label_names == ["negative", "positive"] and task.positive_index == 1


def test_schema_documents_every_key() -> None:
    """Every property in the config schema has a description and a default (or is required)."""
    from tunetrace.config import load_schema

    schema = load_schema()
    missing: list[str] = []

    def walk(node: dict, path: str, required: set[str]) -> None:
        for name, sub in node.get("properties", {}).items():
            if "$ref" in sub:
                continue
            if "description" not in sub or ("default" not in sub and name not in required):
                missing.append(f"{path}.{name}")
            walk(sub, f"{path}.{name}", set(sub.get("required", [])))

    walk(schema, "", set(schema.get("required", [])))
    for name, sub in schema["$defs"].items():
        walk(sub, f"$defs.{name}", set(sub.get("required", [])))
    assert not missing, f"undocumented keys: {missing}"
