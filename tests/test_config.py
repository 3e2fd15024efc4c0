"""Config validation: defaults, and one clear message naming the bad key."""

from __future__ import annotations

import dataclasses
import importlib
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


# ---------------------------------------------------------------- one source of defaults: the schema

# Each settings dataclass (module:class) with the smallest config slice it accepts (required keys only).
SPECS = {
    "tunetrace.config:ModelSpec": {},
    "tunetrace.config:TaskSpec": {"source": {}},
    "tunetrace.config:LoraSpec": {},
    "tunetrace.config:MethodSpec": {"type": "full"},
    "tunetrace.config:EvalSpec": {},
    "tunetrace.config:TrackingSpec": {},
    "tunetrace.guard.gates:GateSpec": {},
    "tunetrace.guard.validation:ValidationSpec": {},
    "tunetrace.training.sizing:SizingSpec": {},
    "tunetrace.analysis.weightspace:WeightSpec": {},
    "tunetrace.analysis.representations:RepresentationSpec": {},
}


def _spec_class(target: str) -> type:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


# Fields that are no config key of the class's schema section: `name` (the key the slice sits under),
# MethodSpec.gpus and .nodes (from resources.gpus and resources.nodes).
NOT_CONFIG_KEYS = {"name", "gpus", "nodes"}


def _build(cls: type, data: dict):
    return cls.from_dict("x", data) if cls in (TaskSpec, MethodSpec) else cls.from_dict(data)


def _schema_default(prop: dict, top: bool = True):
    """A property's default as a spec holds it: nested blocks filled, a top-level array as a tuple (read
    straight from the schema, not through schema_defaults_for)."""
    value = prop["default"]
    if isinstance(value, dict) and "properties" in prop:
        value = {**value, **{k: _schema_default(p, False) for k, p in prop["properties"].items() if "default" in p}}
    return tuple(value) if top and isinstance(value, list) else value


@pytest.mark.parametrize("target", SPECS)
def test_spec_from_empty_slice_holds_the_schema_defaults(target: str) -> None:
    """`Spec.from_dict` of a slice with only the required keys equals the schema's defaults, field by
    field, so a default is changed in the schema and nowhere else."""
    from tunetrace import registry
    from tunetrace.config import LoraSpec, schema_section

    cls, required = _spec_class(target), SPECS[target]
    section = schema_section(cls.SCHEMA_SECTION)
    spec = _build(cls, required)
    fields = {f.name for f in dataclasses.fields(cls)} - NOT_CONFIG_KEYS
    assert fields <= set(section["properties"]), f"{cls.__name__} fields missing from {cls.SCHEMA_SECTION}"
    for name in sorted(fields):
        prop = section["properties"][name]
        if "default" not in prop:  # a required key, given above; a task's source gets $defs/source's defaults
            given = required[name]
            if "$ref" in prop:
                given = _schema_default({**schema_section(prop["$ref"]), "default": given})
            assert getattr(spec, name) == given, f"{cls.__name__}.{name}"
            continue
        expected = _schema_default(prop)
        if cls is TaskSpec and name == "primary_metric":  # null: the task type's default
            expected = registry.primary_metric(spec.type, expected)
        if cls is MethodSpec and name == "lora":
            expected = LoraSpec.from_dict(expected)
        assert getattr(spec, name) == expected, f"{cls.__name__}.{name}"
    if cls is MethodSpec:
        assert spec.gpus == section["properties"]["resources"]["properties"]["gpus"]["default"]
        assert spec.nodes == section["properties"]["resources"]["properties"]["nodes"]["default"]


@pytest.mark.parametrize("target", SPECS)
def test_spec_dataclasses_restate_no_default(target: str) -> None:
    """No settings dataclass field has a default of its own (the schema holds them all); a re-added
    `field: int = 5` or default_factory fails here."""
    cls = _spec_class(target)
    with_default = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    ]
    assert not with_default, f"{cls.__name__} restates defaults for {with_default}; they belong in the schema"


def test_schema_defaults_for_fills_a_slice_and_keeps_given_values() -> None:
    """schema_defaults_for fills nested blocks (lora, resources, gate; a task's source through its $ref),
    keeps given values, does not touch its argument, and leaves a filled slice unchanged."""
    from tunetrace.config import schema_defaults_for

    method = {"type": "lora", "lora": {"r": 4}}
    filled = schema_defaults_for("$defs/method", method)
    assert method == {"type": "lora", "lora": {"r": 4}}
    assert filled["lora"] == {
        "r": 4,
        "alpha": 16,
        "dropout": 0.05,
        "target_modules": None,
        "target_parameters": None,
        "bias": "none",
    }
    assert filled["resources"]["gpus"] == 0 and filled["gate"]["pilot_steps"] == 20
    task = schema_defaults_for("$defs/task", {"source": {"train": "t.csv"}})
    assert task["source"]["eval_fraction"] == 0.2 and task["source"]["format"] == "auto"
    assert task["expected_range"] == {"min": None, "max": None}
    assert schema_defaults_for("$defs/task", task) == task


def test_workflow_slices_build_the_same_specs() -> None:
    """A slice validate_config filled (what the workflow passes) and the bare slice give equal specs."""
    from tunetrace.config import EvalSpec

    config = validate_config(tiny_config())
    raw = tiny_config()
    for name in raw["methods"]:
        assert MethodSpec.from_dict(name, config["methods"][name]) == MethodSpec.from_dict(name, raw["methods"][name])
    assert TaskSpec.from_dict("tiny", config["tasks"]["tiny"]) == TaskSpec.from_dict("tiny", raw["tasks"]["tiny"])
    assert EvalSpec.from_dict(config["evaluation"]) == EvalSpec.from_dict(raw["evaluation"])


def _with_task(**keys) -> dict:
    config = tiny_config()
    config["tasks"]["tiny"].update(keys)
    return config


def test_criteria_are_filled_and_checked_against_the_task_type() -> None:
    """A criterion gets stratum/min/max/severity defaults; an unknown metric, a stratum without group_field, no
    bound, or min > max is refused naming the key."""
    filled = validate_config(_with_task(criteria=[{"metric": "accuracy", "min": 0.7}]))
    assert filled["tasks"]["tiny"]["criteria"] == [
        {"metric": "accuracy", "min": 0.7, "max": None, "stratum": None, "severity": "critical"}
    ]
    with pytest.raises(ConfigError, match=r"tasks\.tiny\.criteria\[0\]\.metric.*'perplexity'.*accuracy"):
        validate_config(_with_task(criteria=[{"metric": "perplexity", "max": 2.0}]))
    with pytest.raises(ConfigError, match=r"criteria\[0\]\.stratum.*group_field"):
        validate_config(_with_task(group_field=None, criteria=[{"metric": "accuracy", "stratum": "x", "min": 0.5}]))
    with pytest.raises(ConfigError, match=r"criteria\[0\]'.*needs a bound"):
        validate_config(_with_task(criteria=[{"metric": "accuracy"}]))
    with pytest.raises(ConfigError, match=r"criteria\[0\]'.*min 0.9 > max 0.5"):
        validate_config(_with_task(criteria=[{"metric": "accuracy", "min": 0.9, "max": 0.5}]))


def test_class_weights_are_balanced_or_one_per_label() -> None:
    """class_weights: balanced or a list of one positive weight per label; other lengths, values or task types are
    refused naming the key."""
    assert validate_config(_with_task(class_weights="balanced"))["tasks"]["tiny"]["class_weights"] == "balanced"
    assert TaskSpec.from_dict("tiny", _with_task(class_weights=[1.0, 3.0])["tasks"]["tiny"]).class_weights == (1.0, 3.0)
    with pytest.raises(ConfigError, match=r"tasks\.tiny\.class_weights.*3 weights for 2 labels"):
        validate_config(_with_task(class_weights=[1.0, 2.0, 3.0]))
    with pytest.raises(ConfigError, match=r"tasks\.tiny\.class_weights"):
        validate_config(_with_task(class_weights="inverse"))
    lm = {"type": "causal_lm", "source": {"train": "x.jsonl"}, "class_weights": "balanced"}
    with pytest.raises(ConfigError, match=r"tasks\.lm\.class_weights.*only sequence_classification"):
        validate_config({**tiny_config(), "tasks": {"lm": lm}})


def test_gate_base_model_baseline_is_refused_for_an_untrained_head() -> None:
    """gate.baseline base_model is accepted for a causal LM task and refused, naming the key and why, for a
    sequence classifier (its new head is untrained)."""
    config = tiny_config()
    config["methods"]["full"]["gate"] = {"enabled": True, "baseline": "base_model"}
    with pytest.raises(ConfigError, match=r"methods\.full\.gate\.baseline.*task tiny.*newly initialised output head"):
        validate_config(config)
    lm = {"type": "causal_lm", "source": {"train": "x.jsonl"}}
    assert validate_config({**config, "tasks": {"lm": lm}})["methods"]["full"]["gate"]["baseline"] == "base_model"


def test_early_stopping_metric_is_checked_against_what_the_type_computes_in_training() -> None:
    """early_stopping_metric: a classifier may follow f1 or eval_loss; a distribution task only eval_loss
    (its primary metric is computed only after training); an unknown metric is refused naming the key."""
    config = tiny_config()
    config["methods"]["full"].update(eval_every_steps=2, early_stopping_patience=2, early_stopping_metric="f1")
    assert MethodSpec.from_dict("full", validate_config(config)["methods"]["full"]).early_stopping_metric == "f1"
    config["methods"]["full"]["early_stopping_metric"] = "perplexity"
    with pytest.raises(ConfigError, match=r"methods\.full\.early_stopping_metric.*no 'perplexity'"):
        validate_config(config)
    dist = {"type": "distribution", "source": {"train": "x.jsonl"}, "options": ["a", "b"], "target_field": "t"}
    config["methods"]["full"]["early_stopping_metric"] = "primary"
    with pytest.raises(ConfigError, match=r"computes only the eval loss.*'wasserstein'.*eval_loss"):
        validate_config({**config, "tasks": {"d": dist}})
    config["methods"]["full"]["early_stopping_metric"] = "eval_loss"
    validate_config({**config, "tasks": {"d": dist}})
