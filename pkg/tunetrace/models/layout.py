"""The layout of the model a task type builds: its modules (name, class, layer kind), parameter count and
config facts. LoRA targets are checked against a layout, and check_model caches the layout per machine.

check_model (rule check_model) needs only these facts of the model the runs will build. Building them means
importing torch and the architecture's transformers code and building the model on the meta device: seconds
for a fresh process, on the critical path of every study. The layout is a pure function of the model
directory's JSON files (config.json, modules.json and the rest beside the weights), the model and task
settings, and the versions of transformers, torch and tunetrace's own code. Under a key made of exactly
those, it is kept in `$TUNETRACE_CACHE/model-layouts/` (default ~/.cache/tunetrace), so a later study of the
same model reads it without importing torch.

The cache only ever speeds up a pass:
- a refusal found on a cached layout is confirmed on a freshly built one before it is raised, so a corrupt
  or forged cache entry cannot stop a study;
- a cached layout that wrongly accepts a target only moves the failure to the training jobs, which check
  their real model (apply_lora) with the same message;
- models whose layout depends on more than those files are never cached: `trust_remote_code` models (their
  code) and hub ids that are not a local directory.
`TUNETRACE_MODEL_LAYOUT_CACHE=off` turns the cache off.

Imports no torch; `ModelLayout.of` imports it to read a built model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunetrace.fileio import cache_root, cache_switched_off, prune_oldest, write_json
from tunetrace.models.names import ModelError, resolve_model_path

if TYPE_CHECKING:
    import torch

    from tunetrace.config import LoraSpec, ModelSpec, TaskSpec

log = logging.getLogger(__name__)

# Default LoRA targets per architecture (config `lora.target_modules` overrides them).
LORA_TARGETS = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "deberta-v2": ["query_proj", "value_proj"],
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
    "gpt_oss": ["q_proj", "v_proj"],  # its experts are parameters, not linear layers: lora.target_parameters
    "qwen3": ["q_proj", "v_proj"],
    "gemma": ["q_proj", "v_proj"],
    "gpt2": ["c_attn"],
    "gpt_neox": ["query_key_value"],
    "opt": ["q_proj", "v_proj"],
}
LORA_KEY = "methods.<name>.lora.target_modules"
LORA_PARAMETERS_KEY = "methods.<name>.lora.target_parameters"
# A module's kind: a linear layer (what target_modules usually lists), another layer type PEFT's LoRA wraps,
# or anything else (LoRA refuses it)
LINEAR, ADAPTABLE, OTHER = "linear", "adaptable", "other"
CONFIG_FACTS = ("model_type", "architectures", "hidden_size", "num_hidden_layers", "vocab_size")
CACHE_DIR = "model-layouts"
CACHE_SWITCH = "TUNETRACE_MODEL_LAYOUT_CACHE"
CACHE_ENTRIES = 256  # the most recently used kept: every code edit is a new key per model and task
LAYOUT_FORMAT = 2  # bump when the cached JSON's shape changes


def _kind(module: torch.nn.Module, nn: Any) -> str:
    """LINEAR, ADAPTABLE or OTHER; `nn` is torch.nn (imported by the caller, once per model)."""
    if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D":  # transformers' GPT-2 layer
        return LINEAR
    if isinstance(module, (nn.Embedding, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MultiheadAttention)):
        return ADAPTABLE
    return OTHER


@dataclasses.dataclass(frozen=True)
class ModelLayout:
    """What LoRA target checks and the check summary read of a model: `modules` holds (full name, class name,
    kind) for every named module, in the model's order; `parameter_names` the full name of every parameter
    (what lora.target_parameters is checked against)."""

    model_class: str
    config: dict[str, Any]  # CONFIG_FACTS, None where the architecture does not define one
    parameters: int
    modules: tuple[tuple[str, str, str], ...]
    parameter_names: tuple[str, ...] = ()

    @property
    def model_type(self) -> str:
        return self.config.get("model_type") or ""

    @classmethod
    def of(cls, model: torch.nn.Module) -> ModelLayout:
        """The layout of a built model (on the meta device or loaded)."""
        from torch import nn

        config = getattr(model, "config", None)
        return cls(
            model_class=type(model).__name__,
            config={key: getattr(config, key, None) for key in CONFIG_FACTS},
            parameters=int(sum(p.numel() for p in model.parameters())),
            modules=tuple(
                (name, type(module).__name__, _kind(module, nn)) for name, module in model.named_modules() if name
            ),
            parameter_names=tuple(name for name, _ in model.named_parameters()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_class": self.model_class,
            "config": self.config,
            "parameters": self.parameters,
            "modules": [list(m) for m in self.modules],
            "parameter_names": list(self.parameter_names),
        }

    @classmethod
    def from_dict(cls, data: Any) -> ModelLayout:
        """Refuses (ValueError) anything but the shape to_dict writes."""
        if not isinstance(data, dict) or set(data) != {
            "model_class",
            "config",
            "parameters",
            "modules",
            "parameter_names",
        }:
            raise ValueError("not a model layout")
        modules, parameter_names = data["modules"], data["parameter_names"]
        if not (isinstance(parameter_names, list) and all(isinstance(n, str) for n in parameter_names)):
            raise ValueError("malformed model layout")
        if not (
            isinstance(data["model_class"], str)
            and isinstance(data["config"], dict)
            and set(data["config"]) == set(CONFIG_FACTS)
            and isinstance(data["parameters"], int)
            and isinstance(modules, list)
            and modules
            and all(
                isinstance(m, list)
                and len(m) == 3
                and all(isinstance(x, str) for x in m)
                and m[2] in (LINEAR, ADAPTABLE, OTHER)
                for m in modules
            )
        ):
            raise ValueError("malformed model layout")
        return cls(
            data["model_class"],
            dict(data["config"]),
            data["parameters"],
            tuple((m[0], m[1], m[2]) for m in modules),
            tuple(parameter_names),
        )


def _matches(module_name: str, target: str) -> bool:
    """PEFT's rule for a list of target names: the module's full name is the target or ends with `.target`."""
    return module_name == target or module_name.endswith("." + target)


def linear_layer_names(layout: ModelLayout) -> list[str]:
    """The distinct last name parts of the model's linear layers (what `target_modules` usually lists)."""
    return sorted({name.rsplit(".", 1)[-1] for name, _, kind in layout.modules if kind == LINEAR})


def matching_modules(layout: ModelLayout, targets: list[str]) -> list[str]:
    """Full names of the modules PEFT adapts for these target names."""
    return [name for name, _, _ in layout.modules if any(_matches(name, t) for t in targets)]


def _target_problem(layout: ModelLayout, target: str) -> str | None:
    """Why PEFT would refuse `target` (no module matches, or one it matches is no layer LoRA can wrap)."""
    matched = [(cls_name, kind) for name, cls_name, kind in layout.modules if _matches(name, target)]
    if not matched:
        return f"'{target}' matches no module"
    refused = sorted({cls_name for cls_name, kind in matched if kind == OTHER})
    return f"'{target}' matches {', '.join(refused)} modules, which LoRA cannot adapt" if refused else None


def lora_targets(layout: ModelLayout, spec: LoraSpec, key: str = LORA_KEY) -> list[str]:
    """Configured target modules, or the default for the model's architecture; each must name layers LoRA can
    adapt (checked here, so a typo is one line naming `key`, not PEFT's error in the middle of a job)."""
    model_type = layout.model_type
    if spec.target_modules:
        targets = list(spec.target_modules)
    elif model_type in LORA_TARGETS:
        targets = LORA_TARGETS[model_type]
    else:
        raise ModelError(
            f"invalid config at '{key}': null, and architecture '{model_type}' has no default; list "
            f"some of its linear layers: {', '.join(linear_layer_names(layout))} "
            f"(defaults exist for {', '.join(sorted(LORA_TARGETS))})"
        )
    problems = [p for p in (_target_problem(layout, t) for t in targets) if p]
    if problems:
        default = (
            f", or null for the default ({', '.join(LORA_TARGETS[model_type])})" if model_type in LORA_TARGETS else ""
        )
        raise ModelError(
            f"invalid config at '{key}': {'; '.join(problems)}. LoRA can adapt these linear layers of "
            f"{model_type} ({layout.model_class}): {', '.join(linear_layer_names(layout))}; "
            f"set {key} to some of them{default}"
        )
    return targets


def parameter_targets(layout: ModelLayout, spec: LoraSpec, key: str = LORA_PARAMETERS_KEY) -> list[str]:
    """Configured target parameters (PEFT `target_parameters`, e.g. the experts of a mixture of experts); each
    must end the full name of some parameter of the model (PEFT's rule), checked here so a typo is one line."""
    targets = list(spec.target_parameters or ())
    missing = [t for t in targets if not any(_matches(name, t) for name in layout.parameter_names)]
    if missing:
        candidates = sorted(
            {
                ".".join([p for p in n.split(".") if not p.isdigit()][-3:])
                for n, (_, _, kind) in _owners(layout)
                if kind == OTHER
            }
        )
        raise ModelError(
            f"invalid config at '{key}': {', '.join(repr(t) for t in missing)} ends no parameter name "
            f"of {layout.model_type} ({layout.model_class}); parameters outside linear layers end in: "
            f"{', '.join(candidates) or 'none'}; fix the names or set {key} to null"
        )
    if targets and spec.dropout:  # PEFT's ParamWrapper has no dropout
        raise ModelError(
            f"invalid config at '{key.rsplit('.', 1)[0]}.dropout': {spec.dropout}, but LoRA on "
            f"parameters ({key}) works only without dropout; set it to 0"
        )
    return targets


def _owners(layout: ModelLayout) -> list[tuple[str, tuple[str, str, str]]]:
    """Each parameter with the module that holds it directly (name, class, kind)."""
    modules = {m[0]: m for m in layout.modules}
    return [(name, modules.get(name.rsplit(".", 1)[0], ("", "", LINEAR))) for name in layout.parameter_names]


# --- the per-machine cache ---------------------------------------------------------------------------------


def _package_digest() -> str:
    """sha256 over tunetrace's own source files (a few ms): any edit of the code that builds models is a new key."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def layout_key(type_name: str, model_spec: ModelSpec, task: TaskSpec) -> str | None:
    """The cache key of the layout task type `type_name` builds for this model and task; None when the layout
    must be built (cache off, remote code, a hub id that is no local directory)."""
    if cache_switched_off(CACHE_SWITCH):
        return None
    if model_spec.trust_remote_code:
        return None
    model_dir = Path(resolve_model_path(model_spec.name_or_path))
    if not model_dir.is_dir():
        return None
    digest = hashlib.sha256(
        json.dumps(
            {
                "format": LAYOUT_FORMAT,
                "task_type": type_name,
                "model": dataclasses.asdict(model_spec),
                "task": dataclasses.asdict(task),
                "transformers": _version("transformers"),
                "torch": _version("torch"),
                "tunetrace": _package_digest(),
            },
            sort_keys=True,
            default=str,
        ).encode()
    )
    for path in sorted(model_dir.rglob("*.json")):  # config.json, and what a head's choice reads (pooling)
        digest.update(path.relative_to(model_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_file(key: str) -> Path:
    return cache_root() / CACHE_DIR / f"{key}.json"


def read_cached(key: str | None) -> ModelLayout | None:
    """The cached layout under `key`; None when there is none or it cannot be read (logged, then rebuilt)."""
    if key is None or not cache_file(key).is_file():
        return None
    try:
        entry = json.loads(cache_file(key).read_text(encoding="utf-8"))
        if not isinstance(entry, dict) or entry.get("key") != key:
            raise ValueError("its key does not match its name")
        layout = ModelLayout.from_dict(entry.get("layout"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        log.warning("ignoring the model layout cache entry %s (%s); building the layout", cache_file(key), err)
        return None
    with contextlib.suppress(OSError):  # its mtime is its last use: the pruning keeps the most recently used
        os.utime(cache_file(key))
    return layout


def write_cached(key: str | None, layout: ModelLayout) -> None:
    """Keep `layout` under `key` (atomically; a cache that cannot be written only costs the next study time)."""
    if key is None:
        return
    try:
        write_json(cache_file(key), {"key": key, "layout": layout.to_dict()})
    except OSError as err:
        log.warning("cannot write the model layout cache entry %s (%s)", cache_file(key), err)
        return
    prune_oldest(cache_file(key).parent, CACHE_ENTRIES)  # the most recently used: a read touches its entry
