"""Load the base model and tokenizer, apply LoRA, count parameters.

Full fine-tuning and LoRA share one path: LoRA is `apply_lora(model, spec)` on the same model.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch

from tunetrace.models.names import is_local, resolve_model_path, set_offline_if_local

if TYPE_CHECKING:
    from tunetrace.config import LoraSpec, ModelSpec

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
    "qwen3": ["q_proj", "v_proj"],
    "gemma": ["q_proj", "v_proj"],
    "gpt2": ["c_attn"],
    "gpt_neox": ["query_key_value"],
    "opt": ["q_proj", "v_proj"],
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _pretrained_kwargs(spec: ModelSpec) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code}
    if spec.revision and not is_local(spec.name_or_path):
        kwargs["revision"] = spec.revision
    return kwargs


def load_tokenizer(spec: ModelSpec, path: str | None = None) -> Any:
    """The tokenizer, with a pad token and right padding side set for decoders that lack one."""
    from transformers import AutoTokenizer

    set_offline_if_local(spec.name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path or resolve_model_path(spec.name_or_path), **_pretrained_kwargs(spec))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_classifier(spec: ModelSpec, labels: list[str], path: str | None = None,
                    pooling: str = "cls") -> torch.nn.Module:
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
    model = model_class.from_pretrained(
        source,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        dtype=DTYPES[spec.dtype],
        **_pretrained_kwargs(spec),
    )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    setattr(model.config, POOLING_FIELD, pooling)
    return model


def lora_targets(model: torch.nn.Module, spec: LoraSpec) -> list[str]:
    """Configured target modules, or the default for the model's architecture."""
    if spec.target_modules:
        return list(spec.target_modules)
    model_type = getattr(model.config, "model_type", "")
    if model_type not in LORA_TARGETS:
        raise ValueError(
            f"methods.<name>.lora.target_modules: no default for architecture '{model_type}'; "
            f"set target_modules explicitly (defaults exist for {sorted(LORA_TARGETS)})"
        )
    return LORA_TARGETS[model_type]


def apply_lora(model: torch.nn.Module, spec: LoraSpec, task_type: str = "SEQ_CLS") -> torch.nn.Module:
    """Wrap `model` with LoRA adapters; the task head stays trainable (PEFT modules_to_save)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        task_type=task_type,
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=lora_targets(model, spec),
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
    warnings.filterwarnings("ignore", message=r"Could not find a config file in (embedded|tiny):")
    base = model.get_base_model()
    base.name_or_path = base.config.name_or_path = spec.name_or_path  # the model card's base_model and tags
    for adapter_config in model.peft_config.values():
        adapter_config.base_model_name_or_path = spec.name_or_path
        if spec.revision and not is_local(spec.name_or_path):
            adapter_config.revision = spec.revision
    return model


def parameter_counts(model: torch.nn.Module) -> dict[str, float]:
    """Trainable and total parameter counts, and the trainable share in percent."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total, "percent": 100.0 * trainable / max(total, 1)}


def load_causal_lm(spec: ModelSpec, path: str | None = None, gradient_checkpointing: bool = False) -> torch.nn.Module:
    """A decoder LLM (Llama, Qwen, GPT-2, ...) with a pad token id set, from the base or `path`."""
    from transformers import AutoModelForCausalLM

    set_offline_if_local(spec.name_or_path)
    model = AutoModelForCausalLM.from_pretrained(path or resolve_model_path(spec.name_or_path),
                                                 dtype=DTYPES[spec.dtype], **_pretrained_kwargs(spec))
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    return model
