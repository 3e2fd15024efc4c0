"""One training path for every method: Hugging Face Trainer, LoRA applied by composition."""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import artifacts as A
from .callbacks import write_checksums
from .config import MethodSpec, ModelSpec, TaskSpec, TrackingSpec
from .data import load_prepared
from .fileio import write_json
from .metrics import HIGHER_IS_BETTER, classification_metrics
from .models import apply_lora, load_classifier, load_tokenizer, parameter_counts
from .tasks import encode_classification, make_collator

log = logging.getLogger(__name__)


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process (CPU) and peak allocated CUDA memory, in MiB."""
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"cpu_peak_rss_mb": rss_kib / 1024.0}
    if torch.cuda.is_available():
        result["gpu_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def make_jsonl_callback(path: Path, monitor: bool = True, sinks: Sequence[Any] = ()) -> Any:
    """A TrainerCallback writing one JSON line per log event (see tunetrace.callbacks: the monitor)."""
    from .callbacks import make_monitor_callback

    return make_monitor_callback(path, monitor=monitor, sinks=sinks)


def _precision_flags(method: MethodSpec) -> dict[str, bool]:
    if method.precision == "fp16" and not torch.cuda.is_available():
        raise ValueError(f"methods.{method.name}.precision: fp16 needs a CUDA GPU; use fp32 or bf16 on CPU")
    return {"bf16": method.precision == "bf16", "fp16": method.precision == "fp16"}


def training_arguments(method: MethodSpec, task: TaskSpec, seed: int, out_dir: Path, report_to: list[str]) -> Any:
    """TrainingArguments from the method's hyperparameters."""
    from transformers import TrainingArguments

    evaluating = method.eval_every_steps is not None
    early = bool(method.early_stopping_patience)
    save_steps = method.eval_every_steps if early else method.save_every_steps
    return TrainingArguments(
        output_dir=str(out_dir),
        seed=seed,
        data_seed=seed,
        learning_rate=method.learning_rate,
        per_device_train_batch_size=method.batch_size,
        per_device_eval_batch_size=max(method.batch_size, 32),
        gradient_accumulation_steps=method.gradient_accumulation_steps,
        num_train_epochs=method.epochs,
        max_steps=method.max_steps or -1,
        warmup_steps=float(method.warmup_ratio) if method.warmup_ratio else 0,  # float < 1 is a ratio
        weight_decay=method.weight_decay,
        lr_scheduler_type=method.scheduler,
        max_grad_norm=method.max_grad_norm or 0.0,
        gradient_checkpointing=method.gradient_checkpointing,
        eval_strategy="steps" if evaluating else "no",
        eval_steps=method.eval_every_steps,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,
        save_total_limit=method.save_total_limit,
        load_best_model_at_end=early,
        metric_for_best_model=task.primary_metric if early else None,
        greater_is_better=HIGHER_IS_BETTER.get(task.primary_metric, True) if early else None,
        logging_steps=method.logging_steps,
        logging_first_step=True,
        report_to=report_to,
        logging_nan_inf_filter=False,  # the monitor and red flags must see NaN/inf losses
        dataloader_num_workers=0,
        disable_tqdm=False,
        use_cpu=not torch.cuda.is_available(),
        **_precision_flags(method),
    )


def _compute_metrics_fn(task: TaskSpec) -> Any:
    def compute(prediction: Any) -> dict[str, float]:
        preds = np.argmax(prediction.predictions, axis=-1)
        scores = classification_metrics(prediction.label_ids, preds, len(task.labels), task.positive_index)
        return {k: v for k, v in scores.items() if k != "n"}

    return compute


def build_model(model_spec: ModelSpec, task: TaskSpec, method: MethodSpec) -> torch.nn.Module:
    """The base classifier, with LoRA applied for lora methods."""
    model = load_classifier(model_spec, task.label_names)
    if method.is_lora:
        model = apply_lora(model, method.lora)
        if method.gradient_checkpointing:
            model.enable_input_require_grads()
    return model


def train_run(
    model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, seed: int, data_dir: str | os.PathLike,
    run_dir: str | os.PathLike, report_to: list[str] | None = None, callbacks: list[Any] | None = None,
    monitor: bool = True, log_sinks: Sequence[Any] = (), resume_from_checkpoint: str | None = None,
) -> dict[str, Any]:
    """Train one (method, task, seed); write checkpoints, the final model or adapter, log and metadata."""
    from transformers import EarlyStoppingCallback, Trainer, set_seed

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(seed)
    train_frame, eval_frame = load_prepared(data_dir)
    tokenizer = load_tokenizer(model_spec)
    train_set, truncated = encode_classification(train_frame, tokenizer, task.max_length)
    eval_set, _ = encode_classification(eval_frame, tokenizer, task.max_length)
    model = build_model(model_spec, task, method)
    counts = parameter_counts(model)
    log.info("%s/%s seed %d: %d of %d parameters trainable (%.3f%%); %d train examples truncated",
             method.name, task.name, seed, counts["trainable"], counts["total"], counts["percent"], truncated)
    all_callbacks = [make_jsonl_callback(run_dir / A.TRAIN_LOG, monitor, log_sinks), *(callbacks or [])]
    if method.early_stopping_patience:
        all_callbacks.append(EarlyStoppingCallback(early_stopping_patience=method.early_stopping_patience))
    trainer = Trainer(
        model=model,
        args=training_arguments(method, task, seed, run_dir / A.CHECKPOINTS_DIR, report_to or []),
        train_dataset=train_set,
        eval_dataset=eval_set if method.eval_every_steps else None,
        data_collator=make_collator(tokenizer),
        processing_class=tokenizer,
        compute_metrics=_compute_metrics_fn(task),
        callbacks=all_callbacks,
    )
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    wall = time.perf_counter() - started
    final_dir = run_dir / A.FINAL_DIR
    trainer.save_model(str(final_dir))
    tokenizer.save_pretrained(str(final_dir))
    write_checksums(final_dir)
    metadata = _run_metadata(model_spec, task, method, seed, counts, truncated, result, wall, len(train_set))
    write_json(run_dir / A.RUN_METADATA, metadata)
    return metadata


def _run_metadata(model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, seed: int, counts: dict,
                  truncated: int, result: Any, wall: float, n_train: int) -> dict[str, Any]:
    import peft
    import transformers

    return {
        "method": method.name, "method_type": method.type, "task": task.name, "seed": seed,
        "model": model_spec.name_or_path,
        "parameters": counts,
        "train_examples": n_train, "truncated_train_examples": truncated,
        "global_steps": int(result.global_step),
        "final_train_loss": float(result.training_loss),
        "train_wall_time_s": wall,
        "train_samples_per_second": float(result.metrics.get("train_samples_per_second", 0.0)),
        "memory": peak_memory_mb(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "peft": peft.__version__},
    }
