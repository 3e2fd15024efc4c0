"""Config validation (JSON Schema is the single source of truth) and typed views of its slices.

Workflow rules pass each job only the slice it needs, as canonical JSON; the dataclasses here
rebuild typed objects from those slices.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from tunetrace.tasks import registry

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "config.schema.yaml"
METHOD_TYPES = ("full", "lora")


class ConfigError(ValueError):
    """The experiment config is invalid; the message names the key and what is allowed."""


def load_yaml(path: str | os.PathLike) -> Any:
    """Read a YAML file, naming the file on a syntax error."""
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def _allowed(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(schema.get("properties"), dict):
        return "allowed keys: " + ", ".join(sorted(schema["properties"]))
    if error.validator == "enum":
        return "allowed: " + ", ".join(map(str, error.validator_value))
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
        return f"allowed: {op[error.validator]} {error.validator_value}"
    if error.validator in ("type", "minItems"):
        what = f"type {error.validator_value}" if error.validator == "type" else f"at least {error.validator_value} items"
        return f"allowed: {what}" + (f" ({schema['description']})" if schema.get("description") else "")
    if error.validator == "pattern" or error.validator == "propertyNames":
        return "names must start with a letter and contain only letters, digits and _"
    return str(schema.get("description", "")).strip()


def _with_defaults(validator_class: type) -> type:
    """A validator that fills `default` values of absent properties while validating."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # type: ignore[no-untyped-def]
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def load_schema(path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """The config JSON Schema."""
    return load_yaml(path)


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> dict:
    """Return a copy of `config` with defaults filled in; raise ConfigError naming the bad key."""
    schema = dict(schema or load_schema())
    filled = copy.deepcopy(dict(config))
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(
            f"invalid config at '{_key_path(best)}': {best.message}. {_allowed(best)}".strip()
        )
    _check_semantics(filled)
    return filled


def _check_semantics(config: Mapping[str, Any]) -> None:
    """Rules JSON Schema cannot express."""
    for name, task in config["tasks"].items():
        source = task["source"]
        if source["format"] != "hub" and not source.get("train"):
            raise ConfigError(f"invalid config at 'tasks.{name}.source.train': a training file is required")
        if source["format"] == "hub" and not source.get("hub_id"):
            raise ConfigError(f"invalid config at 'tasks.{name}.source.hub_id': required when format is hub")
        positive = task.get("positive_label")
        if positive is not None and str(positive) not in {str(x) for x in task["labels"]}:
            raise ConfigError(
                f"invalid config at 'tasks.{name}.positive_label': {positive!r} is not in labels {task['labels']}"
            )
        _check_task_type(name, task)
    for name, method in config["methods"].items():
        if method.get("early_stopping_patience") and not method.get("eval_every_steps"):
            raise ConfigError(
                f"invalid config at 'methods.{name}.early_stopping_patience': needs eval_every_steps to be set"
            )
        gpus = (method.get("resources") or {}).get("gpus", 0)
        if method.get("deepspeed") and not gpus:
            raise ConfigError(
                f"invalid config at 'methods.{name}.deepspeed': DeepSpeed needs GPUs; set "
                f"methods.{name}.resources.gpus >= 1 or deepspeed: null"
            )


def _check_task_type(name: str, task: dict[str, Any]) -> None:
    """Keys a task needs that depend on its type (facts from the task-type registry), checked before any job;
    fills the type's default primary metric."""
    entry = registry.entry(task["type"])
    words = task.get("label_words")
    if words is not None and len(words) != len(task["labels"]):
        raise ConfigError(f"invalid config at 'tasks.{name}.label_words': {len(words)} words for {len(task['labels'])} labels")
    if len(task.get("text_fields", [])) == 2 and not entry.text_pairs:
        pairs = [n for n in registry.task_type_names() if registry.entry(n).text_pairs]
        raise ConfigError(f"invalid config at 'tasks.{name}.text_fields': type {task['type']} reads one text field; "
                          f"sentence pairs need type {' or '.join(pairs)}")
    if task.get("primary_metric") is not None and task["primary_metric"] not in entry.metrics:
        raise ConfigError(f"invalid config at 'tasks.{name}.primary_metric': type {task['type']} does not report "
                          f"'{task['primary_metric']}'; allowed: {', '.join(entry.metrics)}")
    task["primary_metric"] = registry.primary_metric(task["type"], task.get("primary_metric"))  # null: the type's default


def check_data_files(config: Mapping[str, Any], workdir: str | os.PathLike = ".") -> None:
    """Fail before any job runs when a task's data file is missing."""
    for name, task in config["tasks"].items():
        source = task["source"]
        if source["format"] == "hub":
            continue
        for split in ("train", "eval"):
            path = source.get(split)
            if path and not (Path(workdir) / path).is_file():
                raise ConfigError(
                    f"invalid config at 'tasks.{name}.source.{split}': data file '{path}' does not exist "
                    f"(relative to the working directory {Path(workdir).resolve()}); fix the path or create the file"
                )


def load_config(path: str | os.PathLike, workdir: str | os.PathLike = ".") -> dict:
    """Load, validate and default a config file (for the CLI and tests)."""
    config = validate_config(load_yaml(path) or {})
    check_data_files(config, workdir)
    return config


def spec_from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """A settings dataclass from a config slice, ignoring keys it does not have (validated upstream)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name_or_path: str = "embedded:all-MiniLM-L6-v2"
    revision: str | None = None
    dtype: str = "float32"
    trust_remote_code: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelSpec":
        return spec_from_dict(cls, data)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    type: str = "sequence_classification"
    source: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    text_fields: tuple[str, ...] = ("text",)
    label_field: str = "label"
    labels: tuple[Any, ...] = (0, 1)
    positive_label: Any = None
    group_field: str | None = None
    id_field: str | None = None
    max_length: int = 128
    primary_metric: str = "accuracy"
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    # causal_lm, generative_classification, distribution, extractive_qa (see the schema)
    prompt_field: str = "prompt"
    completion_field: str = "completion"
    messages_field: str = "messages"
    prompt_template: str | None = None
    baseline_prompt_template: str | None = None
    label_words: tuple[str, ...] | None = None
    decoding: str = "score"
    max_new_tokens: int = 16
    options: tuple[str, ...] | None = None
    target_field: str = "target"
    question_field: str = "question"
    context_field: str = "context"
    answers_field: str = "answers"
    doc_stride: int = 128
    max_answer_length: int = 30
    n_best: int = 20
    expected_range: Mapping[str, Any] | None = None  # {min, max} of the primary metric (validation)

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> "TaskSpec":
        data = dict(data)
        data["text_fields"] = tuple(data.get("text_fields", ("text",)))
        data["labels"] = tuple(data.get("labels", (0, 1)))
        data["primary_metric"] = registry.primary_metric(data.get("type", "sequence_classification"),
                                                         data.get("primary_metric"))
        for key in ("label_words", "options"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return spec_from_dict(cls, {**data, "name": name})

    @property
    def label_names(self) -> list[str]:
        return [str(x) for x in self.labels]

    @property
    def positive_index(self) -> int:
        positive = self.labels[-1] if self.positive_label is None else self.positive_label
        return self.label_names.index(str(positive))


@dataclasses.dataclass(frozen=True)
class LoraSpec:
    r: int = 8
    alpha: float = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None
    bias: str = "none"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LoraSpec":
        data = dict(data)
        if data.get("target_modules") is not None:
            data["target_modules"] = tuple(data["target_modules"])
        return spec_from_dict(cls, data)


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    name: str
    type: str
    learning_rate: float = 5e-5
    batch_size: int = 16
    gradient_accumulation_steps: int = 1
    epochs: float = 3
    max_steps: int | None = None
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    scheduler: str = "linear"
    max_grad_norm: float = 1.0
    precision: str = "fp32"
    gradient_checkpointing: bool = False
    eval_every_steps: int | None = None
    save_every_steps: int | None = None
    save_total_limit: int | None = None
    logging_steps: int = 5
    early_stopping_patience: int | None = None
    lora: LoraSpec = dataclasses.field(default_factory=LoraSpec)
    processes: int | None = None
    deepspeed: str | None = None
    gpus: int = 0  # from resources.gpus; the other resources only schedule the job

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> "MethodSpec":
        data = dict(data)
        data["lora"] = LoraSpec.from_dict(data.get("lora") or {})
        data["gpus"] = int((data.get("resources") or {}).get("gpus", 0))
        return spec_from_dict(cls, {**data, "name": name})

    @property
    def is_lora(self) -> bool:
        return self.type == "lora"

    @property
    def world_size(self) -> int:
        """Training processes: `processes`, else one per GPU, at least one."""
        return self.processes or max(self.gpus, 1)


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    batch_size: int = 64
    bootstrap_samples: int = 1000
    confidence: float = 0.95
    merge_tolerance: float = 1e-4
    merge_failure: str = "error"
    merge_perplexity_tolerance: float = 0.01

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EvalSpec":
        return spec_from_dict(cls, data)


@dataclasses.dataclass(frozen=True)
class TrackingSpec:
    wandb_mode: str = "disabled"
    project: str = "tunetrace"
    entity: str | None = None
    tags: tuple[str, ...] = ()
    group: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrackingSpec":
        data = dict(data)
        data["tags"] = tuple(data.get("tags", ()))
        return spec_from_dict(cls, data)
