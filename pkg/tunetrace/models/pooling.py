"""Which vector a sequence-classification head reads, and what `auto` means for a checkpoint.

`cls` is the model's own pooler (BERT's [CLS] pooler, what AutoModelForSequenceClassification does);
`mean` is the mean of the last hidden state over non-padding tokens (models.heads). A
sentence-transformers checkpoint was trained for the pooling its Pooling module declares
(modules.json -> 1_Pooling/config.json), so `auto` takes that one. A saved fine-tuned or merged model
records its pooling in config.json (`POOLING_FIELD`), so it reloads with the head it was trained with.

Imports no torch: `auto` is answered from two small JSON files, without loading the model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tunetrace.models.names import resolve_model_path

log = logging.getLogger(__name__)

POOLINGS = ("cls", "mean")
POOLING_FIELD = "tunetrace_pooling"  # the key in a saved model's config.json
# Architectures (config.json model_type) with a mean-pooled head in models.heads (HEADS there)
MEAN_POOLING_MODEL_TYPES = ("bert",)
ST_POOLING_MODULE = "sentence_transformers.models.Pooling"


def _read_json(model: str, filename: str, revision: str | None) -> Any:
    """A JSON file of a local model directory or of a hub repository; None when the model has no such file."""
    if Path(model).is_dir():
        path = Path(model) / filename
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RemoteEntryNotFoundError

    try:
        return json.loads(Path(hf_hub_download(model, filename, revision=revision)).read_text(encoding="utf-8"))
    except RemoteEntryNotFoundError:  # the repository exists and has no such file
        return None
    except LocalEntryNotFoundError as err:  # offline and not cached: guessing would change the head silently
        raise ValueError(
            f"task.pooling: auto needs {filename} of '{model}' and cannot fetch it ({err}); "
            "set task.pooling to cls or mean"
        ) from err


def declared_pooling(model: str, revision: str | None = None) -> str | None:
    """The single pooling a sentence-transformers checkpoint declares ("mean" or "cls"); None when it
    declares none, another mode (max, last token) or several at once (a concatenated embedding)."""
    modules = _read_json(model, "modules.json", revision) or []
    pooling = next((m for m in modules if m.get("type") == ST_POOLING_MODULE), None)
    if pooling is None:
        return None
    config = _read_json(model, f"{pooling['path']}/config.json", revision) or {}
    modes = [key for key, on in config.items() if key.startswith("pooling_mode") and on is True]
    return (
        {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(modes[0]) if len(modes) == 1 else None
    )


def resolve_pooling(requested: str, name_or_path: str, revision: str | None = None) -> str:
    """`cls` or `mean` for the model at `name_or_path` (a base model or a saved run), given task.pooling.

    A saved model's recorded pooling wins (its head was trained with it); a requested one that differs is
    refused. Otherwise an explicit request is taken, and `auto` is what the checkpoint declares, where
    tunetrace has a mean-pooled head for its architecture, else cls.
    """
    model = resolve_model_path(name_or_path)
    config = _read_json(model, "config.json", revision) or {}
    saved = config.get(POOLING_FIELD)
    if saved is not None:
        if requested not in ("auto", saved):
            raise ValueError(
                f"task.pooling: '{requested}', but the model in {model} was trained with '{saved}' "
                f"pooling (config.json {POOLING_FIELD}); set task.pooling to {saved} or auto, or retrain"
            )
        return saved
    model_type = config.get("model_type")
    if requested == "mean" and model_type not in MEAN_POOLING_MODEL_TYPES:
        raise ValueError(
            f"task.pooling: mean is implemented for model types {list(MEAN_POOLING_MODEL_TYPES)}, "
            f"and '{name_or_path}' is '{model_type}'; set task.pooling to cls or auto"
        )
    if requested != "auto":
        return requested
    declared = declared_pooling(model, revision)
    if declared == "mean" and model_type not in MEAN_POOLING_MODEL_TYPES:
        log.warning(
            "%s declares mean pooling; no mean-pooled head for model type '%s', using cls", name_or_path, model_type
        )
        return "cls"
    return declared or "cls"
