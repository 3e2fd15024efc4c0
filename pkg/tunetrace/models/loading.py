"""Load the base model and tokenizer, apply LoRA, count parameters.

Full fine-tuning and LoRA share one path: LoRA is `apply_lora(model, spec)` on the same model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

from tunetrace.models.layout import LORA_KEY, ModelLayout, parameter_targets
from tunetrace.models.layout import lora_targets as layout_lora_targets
from tunetrace.models.names import (
    MODEL_KEY,
    ModelError,
    check_hub_cache,
    check_model_name,
    is_local,
    resolve_model_path,
    set_offline_if_local,
)
from tunetrace.models.quantization import forget_packed_layout, quantization_kwargs, source_config

if TYPE_CHECKING:
    from tunetrace.config import LoraSpec, ModelSpec
    from tunetrace.models.placement import Placement

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _pretrained_kwargs(spec: ModelSpec) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code}
    if spec.revision and not is_local(spec.name_or_path):
        kwargs["revision"] = spec.revision
    return kwargs


def _weights_kwargs(spec: ModelSpec, source: str) -> dict[str, Any]:
    """dtype and quantisation arguments of a weights load (models/quantization.py: MXFP4 dequantised to bf16,
    optional bitsandbytes 4-bit)."""
    return {"dtype": DTYPES[spec.dtype], **quantization_kwargs(source_config(source), spec.quantization)}


def load_model_config(spec: ModelSpec) -> Any:
    """The base model's config (config.json only, never weights). Local names are checked on disk and a hub id,
    offline, in the local cache first, so a model that cannot load fails in one line naming model.name_or_path."""
    from transformers import AutoConfig

    check_model_name(spec.name_or_path)
    check_hub_cache(spec.name_or_path, spec.revision)
    set_offline_if_local(spec.name_or_path)
    try:
        return AutoConfig.from_pretrained(resolve_model_path(spec.name_or_path), **_pretrained_kwargs(spec))
    except (OSError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(
            f"{MODEL_KEY}: cannot load the config of '{spec.name_or_path}' ({reason}); check the "
            "hub id and model.revision, network access, or model.trust_remote_code"
        ) from err


def meta_skeleton(spec: ModelSpec, model_class: str | type, **config_overrides: Any) -> torch.nn.Module:
    """The model `model_class` builds from the base's config on the meta device: every module and shape, no
    weights read and no memory taken, so checks see the module names of even a large model in about a second.
    `model_class`: the name of a transformers Auto class ("AutoModelForCausalLM") or a model class."""
    import transformers

    config = load_model_config(spec)
    for name, value in config_overrides.items():
        setattr(config, name, value)
    with torch.device("meta"):
        if isinstance(model_class, str):
            return getattr(transformers, model_class).from_config(config, trust_remote_code=spec.trust_remote_code)
        return model_class._from_config(config)


@contextmanager
def timed_load(source: Any) -> Iterator[None]:
    """Log one INFO line per model load (`loaded model <source> in <s> s`): bench_overhead and bench_demo
    count and time the loads of each job from these lines."""
    start = time.perf_counter()
    yield
    log.info("loaded model %s in %.2f s", source, time.perf_counter() - start)


def load_tokenizer(spec: ModelSpec, path: str | None = None) -> Any:
    """The tokenizer, with a pad token and right padding side set for decoders that lack one."""
    from transformers import AutoTokenizer

    set_offline_if_local(spec.name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path or resolve_model_path(spec.name_or_path), **_pretrained_kwargs(spec))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def placed(spec: ModelSpec, source: str, placement: Placement | None) -> dict[str, Any]:
    """from_pretrained's dtype and quantisation arguments (_weights_kwargs) and, for an inference job's
    `placement` (models.placement), its device map; no placement (training, which places the model itself): the
    CPU."""
    return {**_weights_kwargs(spec, source), **(placement.load_kwargs() if placement is not None else {})}


def load_classifier(
    spec: ModelSpec,
    labels: list[str],
    path: str | None = None,
    pooling: str = "cls",
    placement: Placement | None = None,
) -> torch.nn.Module:
    """A sequence-classification model from the base (or from `path`, e.g. a merged model) whose head reads
    `pooling`: "cls" the architecture's own head, "mean" a models.heads class (models.pooling resolves
    task.pooling). The pooling goes into the config, so the saved model's config.json records it."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from tunetrace.models.pooling import POOLING_FIELD

    set_offline_if_local(spec.name_or_path)
    source = path or resolve_model_path(spec.name_or_path)
    model_class: Any = AutoModelForSequenceClassification
    if pooling == "mean":
        from tunetrace.models.heads import MEAN_POOLED_HEADS

        model_class = MEAN_POOLED_HEADS[AutoConfig.from_pretrained(source, **_pretrained_kwargs(spec)).model_type]
    with timed_load(source):
        model = model_class.from_pretrained(
            source,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)},
            **placed(spec, source, placement),
            **_pretrained_kwargs(spec),
        )
    forget_packed_layout(model)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    setattr(model.config, POOLING_FIELD, pooling)
    return model


def lora_targets(model: torch.nn.Module, spec: LoraSpec, key: str = LORA_KEY) -> list[str]:
    """The LoRA targets of a built model: models.layout.lora_targets on its layout (one line naming `key` for
    a target LoRA cannot adapt)."""
    return layout_lora_targets(ModelLayout.of(model), spec, key)


def apply_lora(model: torch.nn.Module, spec: LoraSpec, task_type: str = "SEQ_CLS") -> torch.nn.Module:
    """Wrap `model` with LoRA adapters; the task head stays trainable (PEFT modules_to_save). Expert weights that
    are parameters (gpt-oss `mlp.experts.gate_up_proj`) are adapted through PEFT `target_parameters`."""
    from peft import LoraConfig, get_peft_model

    layout = ModelLayout.of(model)
    config = LoraConfig(
        task_type=task_type,
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=layout_lora_targets(layout, spec),
        target_parameters=parameter_targets(layout, spec) or None,
        bias=spec.bias,
    )
    return get_peft_model(model, config)


def name_adapter_base(model: torch.nn.Module, spec: ModelSpec) -> torch.nn.Module:
    """Name the base model by its symbolic name (`embedded:...`, `tiny:llama`, a hub id and revision) in
    every adapter config of a PEFT model, so adapter_config.json and its model card hold no path of this
    machine (PEFT would store the directory the base was loaded from). Loading never reads the field:
    TaskType.load_adapter_model loads the base through tunetrace's own name resolution."""
    import warnings

    # PEFT looks for the base's config.json under that name when saving, to see whether the vocabulary
    # was resized; a symbolic name is not a directory, and no task type resizes it
    warnings.filterwarnings("ignore", message=r"Could not find a config file in (embedded|tiny|twin):")
    base = model.get_base_model()
    base.name_or_path = base.config.name_or_path = spec.name_or_path  # the model card's base_model and tags
    for adapter_config in model.peft_config.values():
        adapter_config.base_model_name_or_path = spec.name_or_path
        if spec.revision and not is_local(spec.name_or_path):
            adapter_config.revision = spec.revision
    return model


def parameter_counts(model: torch.nn.Module) -> dict[str, float]:
    """Trainable and total parameter counts, and the trainable share in percent."""
    # ds_numel: a parameter partitioned by DeepSpeed ZeRO-3 is an empty placeholder on each rank
    total = sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters())
    trainable = sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total, "percent": 100.0 * trainable / max(total, 1)}


def load_causal_lm(
    spec: ModelSpec, path: str | None = None, gradient_checkpointing: bool = False, placement: Placement | None = None
) -> torch.nn.Module:
    """A decoder LLM (Llama, Qwen, GPT-2, ...) with a pad token id set, from the base or `path`."""
    from transformers import AutoModelForCausalLM

    set_offline_if_local(spec.name_or_path)
    source = path or resolve_model_path(spec.name_or_path)
    with timed_load(source):
        model = AutoModelForCausalLM.from_pretrained(
            source, **placed(spec, source, placement), **_pretrained_kwargs(spec)
        )
    forget_packed_layout(model)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    return model
