"""Config validation (JSON Schema is the single source of truth) and typed views of its slices.

Workflow rules pass each job only the slice it needs, as canonical JSON; the dataclasses here
rebuild typed objects from those slices.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import yaml

from tunetrace import registry

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "config.schema.yaml"


class ConfigError(ValueError):
    """The experiment config is invalid; the message names the key and what is allowed."""


class StudyStopped(RuntimeError):
    """The study stops on purpose (validation.strict found critical red flags, ...). The message is the whole
    story: what stopped, which runs and files, and the fix; an adapter prints it and exits 1, no traceback."""


# libyaml's parser where PyYAML has it: the same safe constructors, a tenth of the time on the 35 KB schema,
# which snakemake's planning and every job's adapter read
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: str | os.PathLike) -> Any:
    """Read a YAML file, naming the file on a syntax error."""
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as err:
        message = yaml_error_message(path, err)
    raise ConfigError(message)  # outside the handler: the one-line message, no parser traceback chained to it


def yaml_error_message(path: str | os.PathLike, err: yaml.YAMLError) -> str:
    """`file:line:column: not valid YAML: what; the fix`, on one line (PyYAML's own text spans several)."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    what = " ".join(str(part) for part in (getattr(err, "context", None), getattr(err, "problem", None)) if part)
    opened = getattr(err, "context_mark", None)
    if opened is not None and mark is not None and opened.line != mark.line:
        what += f" (the construct opened at line {opened.line + 1})"
    return f"{where}: not valid YAML: {what or str(err).splitlines()[0]}; fix the syntax at that line"


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
        what = (
            f"type {error.validator_value}" if error.validator == "type" else f"at least {error.validator_value} items"
        )
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


# The one default-filling mechanism: the whole config (validate_config) and each slice (schema_defaults_for).
DefaultingValidator = _with_defaults(jsonschema.Draft202012Validator)


@functools.cache
def _cached_schema(path: str) -> dict:
    return load_yaml(path)


def load_schema(path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """The config JSON Schema (read once per process; the caller gets its own copy)."""
    return copy.deepcopy(_cached_schema(str(Path(path).resolve())))


def _at_pointer(schema: Mapping[str, Any], section: str) -> Any:
    node: Any = schema
    for part in section.removeprefix("#").strip("/").split("/") if section.strip("#/") else []:
        key = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or key not in node:
            raise KeyError(f"config schema has no section '{section}' (no '{key}')")
        node = node[key]
    return node


def schema_section(section: str) -> dict:
    """A copy of the sub-schema at a JSON pointer into the config schema, e.g. "properties/evaluation",
    "$defs/method" or "$defs/method/properties/lora" (a leading "#/" is allowed; "" is the whole schema)."""
    return copy.deepcopy(_at_pointer(_cached_schema(str(SCHEMA_PATH)), section))


@functools.cache
def _section_validator(section: str) -> Any:
    """A defaulting validator of one sub-schema; `$ref`s inside it resolve against the schema's $defs."""
    root = _cached_schema(str(SCHEMA_PATH))
    return DefaultingValidator({**_at_pointer(root, section), "$defs": root["$defs"]})


def schema_defaults_for(section: str, data: Mapping[str, Any] | None) -> dict:
    """A copy of a config slice with the schema's defaults filled for the sub-schema at `section`
    (a JSON pointer, see schema_section), nested blocks included. Only fills: checking values is
    validate_config's job, so a slice it already filled comes back unchanged."""
    filled = copy.deepcopy(dict(data or {}))
    for _ in _section_validator(section).iter_errors(filled):  # filling happens while validating
        pass
    return filled


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> dict:
    """Return a copy of `config` with defaults filled in; raise ConfigError naming the bad key."""
    validator = _section_validator("") if schema is None else DefaultingValidator(dict(schema))
    _check_type_keys(config)  # on the config as written: the defaults fill every method's lora block
    filled = copy.deepcopy(dict(config))
    errors = sorted(validator.iter_errors(filled), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(f"invalid config at '{_key_path(best)}': {best.message}. {_allowed(best)}".strip())
    _check_semantics(filled)
    return filled


# method keys that apply to one method type only (the schema fills their defaults for every method)
TYPE_ONLY_KEYS = {"lora": "lora"}


def _check_type_keys(config: Mapping[str, Any]) -> None:
    """A method block may not set keys of another method type: a `lora:` block on a `type: full` method would be
    ignored, and the study would train something other than what its config says."""
    methods = config.get("methods")
    for name, method in methods.items() if isinstance(methods, Mapping) else ():
        if not isinstance(method, Mapping):
            continue
        kind = method.get("type", "full")
        for key, owner in TYPE_ONLY_KEYS.items():
            if key in method and kind != owner:
                raise ConfigError(
                    f"invalid config at 'methods.{name}.{key}': applies to methods of type {owner} only, "
                    f"and methods.{name}.type is {kind}; remove the {key} block or set "
                    f"methods.{name}.type: {owner}"
                )


def _check_data_inside_study(name: str, source: Mapping[str, Any]) -> None:
    """A relative data path must stay inside the study directory (`../../etc/passwd` would be read and copied
    into results/); an absolute path, or allow_outside_study: true, says it is meant."""
    if source["format"] == "hub" or source.get("allow_outside_study"):
        return
    for split in ("train", "eval"):
        path = source.get(split)
        if not path or os.path.isabs(path):
            continue
        norm = os.path.normpath(path)
        if norm == ".." or norm.startswith(".." + os.sep):
            raise ConfigError(
                f"invalid config at 'tasks.{name}.source.{split}': data path '{path}' lies outside the "
                f"study directory; move the file into the study, give an absolute path, or set "
                f"tasks.{name}.source.allow_outside_study: true"
            )


def check_tracking(
    config: Mapping[str, Any], env: Mapping[str, str] | None = None, home: str | os.PathLike | None = None
) -> None:
    """tracking.wandb_mode: online needs W&B credentials (WANDB_API_KEY or an api.wandb.ai entry in ~/.netrc) or
    WANDB_MODE=offline in the environment; checked at plan time, not after the first training job has started."""
    env = os.environ if env is None else env
    if (
        config["tracking"]["wandb_mode"] != "online"
        or env.get("WANDB_API_KEY")
        or env.get("WANDB_MODE") in ("offline", "disabled", "dryrun")
    ):
        return
    netrc = Path(env.get("NETRC") or Path(home or Path.home()) / ".netrc")
    if netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="replace"):
        return
    raise ConfigError(
        f"invalid config at 'tracking.wandb_mode': online, but no W&B credentials here (no "
        f"WANDB_API_KEY, no api.wandb.ai entry in {netrc}); run `wandb login`, export WANDB_API_KEY, set "
        f"tracking.wandb_mode: offline, or export WANDB_MODE=offline"
    )


def _check_flag_codes(validation: Mapping[str, Any]) -> None:
    """validation.warning_codes / critical_codes name red flags that exist (a typo would change nothing)."""
    from tunetrace.codes import RED_FLAG_CODES, TREND_SUFFIX, is_known

    for key in ("warning_codes", "critical_codes"):
        unknown = [code for code in validation.get(key) or () if not is_known(code)]
        if unknown:
            raise ConfigError(
                f"invalid config at 'validation.{key}': unknown red-flag code(s) {unknown}; known: "
                f"{', '.join(sorted(RED_FLAG_CODES))}, and <key>{TREND_SUFFIX} for step_time_s, "
                "cpu_rss_mb, gpu<N>_allocated_mb (docs/guard.md describes each)"
            )


def _check_semantics(config: Mapping[str, Any]) -> None:
    """Rules JSON Schema cannot express."""
    for section in ("tasks", "methods"):
        _check_names_differ_in_more_than_case(section, config[section])
    _check_flag_codes(config["validation"])
    for name, task in config["tasks"].items():
        source = task["source"]
        if source["format"] != "hub" and not source["train"]:
            raise ConfigError(f"invalid config at 'tasks.{name}.source.train': a training file is required")
        if source["format"] == "hub" and not source["hub_id"]:
            raise ConfigError(f"invalid config at 'tasks.{name}.source.hub_id': required when format is hub")
        positive = task["positive_label"]
        if positive is not None and str(positive) not in {str(x) for x in task["labels"]}:
            raise ConfigError(
                f"invalid config at 'tasks.{name}.positive_label': {positive!r} is not in labels {task['labels']}"
            )
        _check_data_inside_study(name, source)
        _check_task_type(name, task)
        _check_criteria(name, task)
        _check_class_weights(name, task)
    for name, method in config["methods"].items():
        _check_gate_baseline(name, method, config["tasks"])
        if method["early_stopping_patience"] and not method["eval_every_steps"]:
            raise ConfigError(
                f"invalid config at 'methods.{name}.early_stopping_patience': needs eval_every_steps to be set"
            )
        _check_early_stopping_metric(name, method, config["tasks"])
        if method["deepspeed"] and not method["resources"]["gpus"]:
            raise ConfigError(
                f"invalid config at 'methods.{name}.deepspeed': DeepSpeed needs GPUs; set "
                f"methods.{name}.resources.gpus >= 1 or deepspeed: null"
            )


def _check_early_stopping_metric(name: str, method: Mapping[str, Any], tasks: Mapping[str, Any]) -> None:
    """early_stopping_metric: eval_loss, or a metric (primary: the task's) that every task's type computes during
    training (registry facts); a causal LM's primary metric loss is its eval_loss."""
    requested = method["early_stopping_metric"]
    if not method["early_stopping_patience"] or requested == "eval_loss":
        return
    for task_name, task in tasks.items():
        entry = registry.entry(task["type"])
        metric = registry.primary_metric(task["type"], task["primary_metric"]) if requested == "primary" else requested
        if metric not in entry.metrics:
            raise ConfigError(
                f"invalid config at 'methods.{name}.early_stopping_metric': task {task_name} "
                f"(type {task['type']}) reports no '{metric}'; use primary, eval_loss or one of "
                f"{sorted(entry.metrics)}"
            )
        if not entry.metrics_in_training and metric != "loss":
            raise ConfigError(
                f"invalid config at 'methods.{name}.early_stopping_metric': task {task_name} "
                f"(type {task['type']}) computes only the eval loss during training, not "
                f"'{metric}' ({requested}); set early_stopping_metric: eval_loss"
            )


def _check_gate_baseline(name: str, method: Mapping[str, Any], tasks: Mapping[str, Any]) -> None:
    """gate.baseline base_model only where the task type scores the pretrained model as it is (registry fact)."""
    gate = method["gate"]
    if not gate["enabled"] or gate["baseline"] != "base_model":
        return
    for task_name, task in tasks.items():
        if registry.entry(task["type"]).base_model_baseline is None:
            raise ConfigError(
                f"invalid config at 'methods.{name}.gate.baseline': base_model cannot be scored for task {task_name} "
                f"(type {task['type']}): the type adds a newly initialised output head, so the untrained model "
                "predicts at chance and says nothing of the pretrained model (the trivial baseline already measures "
                "chance); use 'reference' or the task's trivial baseline instead"
            )


def _check_names_differ_in_more_than_case(section: str, entries: Mapping[str, Any]) -> None:
    """Task and method names become directories (results/runs/<method>/<task>/): two names that differ only in
    case would be one directory on a case-insensitive filesystem (macOS, Windows), each run overwriting the other."""
    seen: dict[str, str] = {}
    for name in entries:
        first = seen.setdefault(name.casefold(), name)
        if first != name:
            raise ConfigError(
                f"invalid config at '{section}.{name}': the name differs from '{section}.{first}' only "
                "in case, and both name the same directory on a case-insensitive filesystem; "
                "rename one of them"
            )


def _check_task_type(name: str, task: dict[str, Any]) -> None:
    """Keys a task needs that depend on its type (facts from the task-type registry), checked before any job;
    fills the type's default primary metric."""
    entry = registry.entry(task["type"])
    words = task["label_words"]
    if words is not None and len(words) != len(task["labels"]):
        raise ConfigError(
            f"invalid config at 'tasks.{name}.label_words': {len(words)} words for {len(task['labels'])} labels"
        )
    if len(task["text_fields"]) == 2 and not entry.text_pairs:
        pairs = [n for n in registry.task_type_names() if registry.entry(n).text_pairs]
        raise ConfigError(
            f"invalid config at 'tasks.{name}.text_fields': type {task['type']} reads one text field; "
            f"sentence pairs need type {' or '.join(pairs)}"
        )
    if task["primary_metric"] is not None and task["primary_metric"] not in entry.metrics:
        raise ConfigError(
            f"invalid config at 'tasks.{name}.primary_metric': type {task['type']} does not report "
            f"'{task['primary_metric']}'; allowed: {', '.join(entry.metrics)}"
        )
    task["primary_metric"] = registry.primary_metric(task["type"], task["primary_metric"])  # null: the type's default


def _check_criteria(name: str, task: Mapping[str, Any]) -> None:
    """Each criterion names a metric of the task's type (which gives its direction), a stratum only with a
    group_field, and at least one bound; min <= max."""
    entry = registry.entry(task["type"])
    for i, item in enumerate(task["criteria"]):
        key = f"tasks.{name}.criteria[{i}]"
        if item["metric"] not in entry.metrics:
            raise ConfigError(
                f"invalid config at '{key}.metric': type {task['type']} does not report "
                f"'{item['metric']}'; allowed: {', '.join(entry.metrics)}"
            )
        if item["stratum"] is not None and not task["group_field"]:
            raise ConfigError(
                f"invalid config at '{key}.stratum': a stratum is a value of the task's group_field; "
                f"set tasks.{name}.group_field or remove the stratum"
            )
        if item["min"] is None and item["max"] is None:
            raise ConfigError(f"invalid config at '{key}': a criterion needs a bound; set min or max")
        if item["min"] is not None and item["max"] is not None and item["min"] > item["max"]:
            raise ConfigError(f"invalid config at '{key}': min {item['min']} > max {item['max']}")


def _check_class_weights(name: str, task: Mapping[str, Any]) -> None:
    """class_weights only for a type with a head over the labels (registry fact), one weight per label."""
    weights = task["class_weights"]
    if weights is None:
        return
    if not registry.entry(task["type"]).label_head:
        heads = [n for n in registry.task_type_names() if registry.entry(n).label_head]
        raise ConfigError(
            f"invalid config at 'tasks.{name}.class_weights': only {' and '.join(heads)} trains a loss "
            f"over label classes (this task is {task['type']}); remove it"
        )
    if isinstance(weights, list) and len(weights) != len(task["labels"]):
        raise ConfigError(
            f"invalid config at 'tasks.{name}.class_weights': {len(weights)} weights for "
            f"{len(task['labels'])} labels {task['labels']}; give one per label, in that order, "
            "or `balanced`"
        )


def check_data_files(config: Mapping[str, Any], workdir: str | os.PathLike = ".") -> None:
    """Fail before any job runs when a task's data file is missing."""
    for name, task in config["tasks"].items():
        source = task["source"]
        if source["format"] == "hub":
            continue
        for split in ("train", "eval"):
            path = source[split]
            if path and not (Path(workdir) / path).is_file():
                raise ConfigError(
                    f"invalid config at 'tasks.{name}.source.{split}': data file '{path}' does not exist "
                    f"(relative to the working directory {Path(workdir).resolve()}); fix the path or create the file"
                )


def load_config(path: str | os.PathLike, workdir: str | os.PathLike = ".") -> dict:
    """Load, validate and default a config file (for the CLI and tests)."""
    config = validate_config(load_yaml(path) or {})
    check_data_files(config, workdir)
    check_tracking(config)
    return config


def spec_from_dict(cls: type, data: Mapping[str, Any] | None) -> Any:
    """A settings dataclass from a config slice: the schema's defaults of `cls.SCHEMA_SECTION` are filled
    first (the dataclasses declare no defaults of their own), keys the class does not have are ignored
    (validated upstream). A slice the workflow passes (validated and filled already) is used as is."""
    return spec_from_filled(cls, schema_defaults_for(cls.SCHEMA_SECTION, data))


def spec_from_filled(cls: type, filled: Mapping[str, Any]) -> Any:
    """A settings dataclass from a slice whose defaults are filled (see spec_from_dict); JSON arrays
    become tuples, so specs stay hashable and immutable."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in filled.items() if k in names})


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    SCHEMA_SECTION: ClassVar[str] = "properties/model"

    name_or_path: str
    revision: str | None
    dtype: str
    trust_remote_code: bool
    quantization: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        return spec_from_dict(cls, data)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One task; every field but `name` is a key of `$defs/task` (defaults and meaning there)."""

    SCHEMA_SECTION: ClassVar[str] = "$defs/task"

    name: str
    type: str
    source: Mapping[str, Any]
    text_fields: tuple[str, ...]
    label_field: str
    labels: tuple[Any, ...]
    positive_label: Any
    group_field: str | None
    id_field: str | None
    max_length: int
    primary_metric: str  # null in the config: resolved to the task type's default
    max_train_examples: int | None
    max_eval_examples: int | None
    pooling: str  # sequence_classification: auto, cls or mean (auto resolved by models.pooling)
    # causal_lm, generative_classification, distribution, extractive_qa (see the schema)
    prompt_field: str
    completion_field: str
    messages_field: str
    prompt_template: str | None
    baseline_prompt_template: str | None
    label_words: tuple[str, ...] | None
    decoding: str
    max_new_tokens: int
    options: tuple[str, ...] | None
    target_field: str
    question_field: str
    context_field: str
    answers_field: str
    doc_stride: int
    max_answer_length: int
    n_best: int
    expected_range: Mapping[str, Any]  # {min, max} of the primary metric (validation)
    criteria: tuple[Mapping[str, Any], ...]  # bounds per metric and stratum (validation; rules pass them to it only)
    class_weights: str | tuple[float, ...] | None  # sequence_classification's loss weights per label
    min_train_rows_per_label: int  # degenerate-data check of prepare_data (task types with class labels)
    allow_degenerate_data: bool

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> TaskSpec:
        filled = schema_defaults_for(cls.SCHEMA_SECTION, data)
        filled["primary_metric"] = registry.primary_metric(filled["type"], filled["primary_metric"])
        return spec_from_filled(cls, {**filled, "name": name})

    @property
    def label_names(self) -> list[str]:
        return [str(x) for x in self.labels]

    @property
    def positive_index(self) -> int:
        positive = self.labels[-1] if self.positive_label is None else self.positive_label
        return self.label_names.index(str(positive))


@dataclasses.dataclass(frozen=True)
class LoraSpec:
    SCHEMA_SECTION: ClassVar[str] = "$defs/method/properties/lora"

    r: int
    alpha: float
    dropout: float
    target_modules: tuple[str, ...] | None
    target_parameters: tuple[str, ...] | None
    bias: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoraSpec:
        return spec_from_dict(cls, data)


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """One method; every field but `name`, `lora` (a LoraSpec), `gpus` and `nodes` (from resources.gpus and
    resources.nodes, per node and node count; the other resources only schedule the job) is a key of
    `$defs/method`."""

    SCHEMA_SECTION: ClassVar[str] = "$defs/method"

    name: str
    type: str
    learning_rate: float
    batch_size: int
    gradient_accumulation_steps: int
    epochs: float
    max_steps: int | None
    warmup_ratio: float
    weight_decay: float
    scheduler: str
    max_grad_norm: float
    precision: str
    gradient_checkpointing: bool
    eval_every_steps: int | None
    save_every_steps: int | None
    save_total_limit: int | None
    logging_steps: int
    early_stopping_patience: int | None
    early_stopping_metric: str
    lora: LoraSpec
    processes: int | None
    deepspeed: str | None
    gpus: int  # per node
    nodes: int

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> MethodSpec:
        filled = schema_defaults_for(cls.SCHEMA_SECTION, data)
        resources = filled["resources"]
        return spec_from_filled(
            cls,
            {
                **filled,
                "name": name,
                "lora": spec_from_filled(LoraSpec, filled["lora"]),
                "gpus": int(resources["gpus"]),
                "nodes": int(resources["nodes"]),
            },
        )

    @property
    def is_lora(self) -> bool:
        return self.type == "lora"

    @property
    def processes_per_node(self) -> int:
        """Training processes on each node: `processes`, else one per GPU, at least one."""
        return self.processes or max(self.gpus, 1)

    @property
    def world_size(self) -> int:
        """Training processes of the whole run, all nodes together."""
        return self.processes_per_node * self.nodes


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    SCHEMA_SECTION: ClassVar[str] = "properties/evaluation"

    batch_size: int
    bootstrap_samples: int
    confidence: float
    merge_tolerance: float
    merge_failure: str
    merge_perplexity_tolerance: float
    min_group_class_examples: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalSpec:
        return spec_from_dict(cls, data)


@dataclasses.dataclass(frozen=True)
class TrackingSpec:
    SCHEMA_SECTION: ClassVar[str] = "properties/tracking"

    wandb_mode: str
    project: str
    entity: str | None
    tags: tuple[str, ...]
    group: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrackingSpec:
        return spec_from_dict(cls, data)


@dataclasses.dataclass(frozen=True)
class ValidationSpec:
    SCHEMA_SECTION: ClassVar[str] = "properties/validation"

    strict: bool
    max_final_train_loss: float | None
    max_grad_norm: float
    loss_increase_tolerance: float
    smoothing_window: int
    min_log_points: int
    overfit_ratio: float
    oscillation_ratio: float
    step_time_increase: float
    memory_increase: float
    probe_examples: int
    reload_tolerance: float
    loss_stall_ratio: float
    min_prediction_entropy_ratio: float
    min_gain_over_trivial: float
    min_interval_examples: int
    min_relative_update: float
    min_steps: int
    min_steps_per_label: int
    min_epochs: float
    warning_codes: tuple[str, ...]
    critical_codes: tuple[str, ...]
    smoke_steps: int
    smoke_save_every_steps: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationSpec:
        return spec_from_dict(cls, data)
