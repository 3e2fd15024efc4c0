"""One training path for every method: Hugging Face Trainer, LoRA applied by composition."""

from __future__ import annotations

import logging
import os
import platform
import resource
import shutil
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from tunetrace import artifacts as A
from tunetrace.analysis.representations import representation_callback
from tunetrace.config import MethodSpec, ModelSpec, TaskSpec
from tunetrace.fileio import write_json
from tunetrace.models.loading import parameter_counts
from tunetrace.provenance.environment import cluster_environment
from tunetrace.registry import higher_is_better
from tunetrace.tasks.base import TrainingParts
from tunetrace.tasks.dispatch import get_task_type
from tunetrace.training import checkpoints as C
from tunetrace.training import jobcontrol
from tunetrace.training.sizing import SizingSpec, log_plan, plan

log = logging.getLogger(__name__)


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process (CPU) and peak allocated CUDA memory, in MiB."""
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"cpu_peak_rss_mb": rss_kib / 1024.0}
    if torch.cuda.is_available():
        result["gpu_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def make_jsonl_callback(path: Path, monitor: bool = True, sinks: Sequence[Any] = ()) -> Any:
    """A TrainerCallback writing one JSON line per log event (see tunetrace.training.monitor: the monitor)."""
    from tunetrace.training.monitor import make_monitor_callback

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
        activation_checkpointing=method.gradient_checkpointing,  # transformers 5 name of gradient_checkpointing
        eval_strategy="steps" if evaluating else "no",
        eval_steps=method.eval_every_steps,
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,
        save_total_limit=method.save_total_limit,
        load_best_model_at_end=early,
        metric_for_best_model=early_stopping_metric(method, task) if early else None,
        greater_is_better=early_stopping_higher(method, task) if early else None,
        logging_steps=method.logging_steps,
        logging_first_step=True,
        report_to=report_to,
        logging_nan_inf_filter=False,  # the monitor and red flags must see NaN/inf losses
        dataloader_num_workers=0,
        disable_tqdm=not jobcontrol.progress_bar_wanted(),  # a log file gets one line per logging step
        use_cpu=not torch.cuda.is_available(),
        # Classification losses are per-example means; with token averaging on, Trainer would scale
        # them by the number of ranks (loss and gradient x world_size) for models taking **kwargs.
        average_tokens_across_devices=False,
        **_precision_flags(method),
    )


def _captures_in_loop(summary: dict[str, Any], result: Any) -> dict[str, Any]:
    """The representation captures inside the Trainer's timed loop (this call's segment), with the samples/s the
    loop would have had without them: train_samples_per_second counts their seconds as training time (the
    demo's every_steps 30 takes about 7 % of its loop, BENCHMARKS.md)."""
    runtime = float(result.metrics.get("train_runtime") or 0.0)
    rate = float(result.metrics.get("train_samples_per_second") or 0.0)
    training = runtime - summary["seconds"]
    return {
        **summary,
        "train_samples_per_second_without": round(rate * runtime / training, 3) if training > 0 else None,
    }


def early_stopping_metric(method: MethodSpec, task: TaskSpec) -> str:
    """The Trainer's metric_for_best_model (it reads `eval_<name>`): `loss` for eval_loss, else the metric."""
    metric = task.primary_metric if method.early_stopping_metric == "primary" else method.early_stopping_metric
    return "loss" if metric == "eval_loss" else metric


def early_stopping_higher(method: MethodSpec, task: TaskSpec) -> bool:
    metric = early_stopping_metric(method, task)
    return False if metric == "loss" else higher_is_better(task.type, metric)


def training_parts(
    model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, data_dir: str | os.PathLike
) -> TrainingParts:
    """The task type's model, data and loss for one run (the global seed is set before this)."""
    parts = get_task_type(task.type).training_parts(model_spec, task, method, data_dir)
    if method.eval_every_steps and parts.eval_set is None:
        raise ValueError(
            f"methods.{method.name}.eval_every_steps: task type '{task.type}' (task {task.name}) has no "
            "evaluation during training; "
            "leave eval_every_steps unset (evaluate_run scores the final model)"
        )
    metric = early_stopping_metric(method, task)
    if method.early_stopping_patience and metric != "loss" and parts.compute_metrics is None:
        raise ValueError(
            f"methods.{method.name}.early_stopping_metric: task type '{task.type}' (task {task.name}) "
            f"computes only the eval loss during training, not '{metric}'; set "
            f"methods.{method.name}.early_stopping_metric: eval_loss"
        )
    return parts


def train_run(
    model_spec: ModelSpec,
    task: TaskSpec,
    method: MethodSpec,
    seed: int,
    data_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    report_to: list[str] | None = None,
    callbacks: list[Any] | None = None,
    resume_dir: str | os.PathLike | None = None,
    representations: Any = None,
    reps_dir: str | os.PathLike | None = None,
    monitor: bool = True,
    log_sinks: Sequence[Any] = (),
    resume_from_checkpoint: str | None = None,
    sizing: SizingSpec | None = None,
) -> dict[str, Any]:
    """Train one (method, task, seed) of any task type; write checkpoints, the final model or adapter,
    log and metadata. The task type contributes its `TrainingParts`; everything else is shared.

    Checkpoints and the train log are written to `resume_dir` while training (default
    `run_dir/checkpoints`); a rerun after a kill resumes from its last complete checkpoint. With a
    separate `resume_dir`, the finished run's checkpoints and log are exported into `run_dir` and
    the resume state is removed.

    With `representations` (a RepresentationSpec), layer representations of the probe set are
    captured every `every_steps` and at the end (and at step 0 with `capture_step0`), into `reps_dir`
    (staged in the resume state while training, so a resumed run keeps the steps captured before the kill).

    Before training, the planned optimiser steps are logged (and recorded in run.json under `sizing`),
    with a warning when `sizing` (the rule of thumb's thresholds) finds them too few for the task.
    """
    from transformers import EarlyStoppingCallback, Trainer, set_seed

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_dir = Path(resume_dir) if resume_dir else run_dir / A.CHECKPOINTS_DIR
    log_path = state_dir / A.TRAIN_LOG if resume_dir else run_dir / A.TRAIN_LOG
    set_seed(seed)
    # The arguments first: under `accelerate launch --use_deepspeed` they make the DeepSpeed config current,
    # so a ZeRO-3 model is created sharded across the ranks (deepspeed.zero.Init in from_pretrained).
    args = training_arguments(method, task, seed, state_dir, report_to or [])
    parts = training_parts(model_spec, task, method, data_dir)
    model, tokenizer = parts.model, parts.tokenizer
    counts = parameter_counts(model)
    log.info(
        "%s/%s seed %d: %d of %d parameters trainable (%.3f%%); %d train examples truncated",
        method.name,
        task.name,
        seed,
        counts["trainable"],
        counts["total"],
        counts["percent"],
        parts.truncated,
    )
    sharding = zero_sharding(model, method)
    size = plan(
        len(parts.train_set),
        get_task_type(task.type).num_labels(task),
        method.batch_size,
        method.gradient_accumulation_steps,
        args.world_size,
        method.epochs,
        method.max_steps,
    )
    if args.should_log:  # once, on the main process
        size["too_few_steps"] = log_plan(f"{method.name}/{task.name}/seed{seed}", size, sizing)
    fingerprint = C.run_fingerprint(
        {"model": model_spec, "task": task, "method": method, "seed": seed, "world_size": args.world_size},
        [Path(data_dir) / A.TRAIN_SPLIT],
    )
    with args.main_process_first(desc="resume state"):
        resume_from = C.prepare_state_dir(state_dir, fingerprint)
    resumed_step = C.checkpoint_step(resume_from) if resume_from else 0
    if args.should_save:
        C.truncate_log(log_path, resumed_step or 0)
    marker = make_marker_callback()
    all_callbacks = [make_jsonl_callback(log_path, monitor, log_sinks), marker, *(callbacks or [])]
    reps_stage = state_dir / A.REPS_STAGE if resume_dir else reps_dir
    if representations is not None:
        all_callbacks.append(
            representation_callback(
                model_spec, task, representations, data_dir, reps_stage, run=f"{method.name}/{task.name}/seed{seed}"
            )
        )
    capture = next((c for c in all_callbacks if hasattr(c, "in_loop_summary")), None)
    if method.early_stopping_patience:
        all_callbacks.append(EarlyStoppingCallback(early_stopping_patience=method.early_stopping_patience))
    trainer = (parts.trainer_class or Trainer)(
        model=model,
        args=args,
        train_dataset=parts.train_set,
        eval_dataset=parts.eval_set if method.eval_every_steps else None,
        data_collator=parts.collator,
        processing_class=tokenizer,
        compute_metrics=parts.compute_metrics,
        callbacks=all_callbacks,
    )
    _attach_job_callbacks(trainer)
    marker.trainer = trainer
    marker.base_loss = (C.read_marker(resume_from).get("loss_sum") or 0.0) if resume_from else 0.0
    marker.prior_segments = prior_segments(C.read_marker(resume_from) if resume_from else {}, resumed_step)
    if resume_from:
        log.info("resuming from %s (step %d)", resume_from, resumed_step)
    started = marker.started = time.perf_counter()
    marker.from_step = resumed_step
    try:  # on success the callback's on_train_end has joined the checkpoint finisher
        result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else resume_from_checkpoint)
    except BaseException:  # a checkpoint saved before the error is completed before the error leaves
        _finish_quietly(marker.finisher)
        raise
    wall = time.perf_counter() - started
    jobcontrol.raise_if_stopped("at the end of training, before the final model was saved")
    final_dir = run_dir / A.FINAL_DIR
    if trainer.is_world_process_zero():
        C.ensure_free_space(final_dir, C.estimate_checkpoint_bytes(trainer.model, optimizer=False), "the final model")
    trainer.save_model(str(final_dir))
    if not trainer.is_world_process_zero():
        return {}
    tokenizer.save_pretrained(str(final_dir))
    C.write_checksums(final_dir)
    metadata = _run_metadata(
        model_spec, task, method, seed, counts, parts.truncated, result, wall, len(parts.train_set)
    )
    metadata.update(parts.info)
    metadata.update(planned_steps=int(trainer.state.max_steps), sizing=size)
    metadata.update(
        _resume_metadata(resumed_step, marker.base_loss, result),
        world_size=args.world_size,
        nodes=method.nodes,
        cluster=cluster_environment(),
    )
    metadata.update(wall_time_summary(marker.segments(int(result.global_step), wall)))
    if capture is not None:
        metadata["representation_captures_in_loop"] = _captures_in_loop(capture.in_loop_summary(), result)
    if sharding is not None:
        metadata["deepspeed"] = sharding
    metadata["set_aside_checkpoints"] = C.set_aside_checkpoints(state_dir, fingerprint)  # damaged, kept
    if resume_dir:
        C.export_checkpoints(state_dir, run_dir / A.CHECKPOINTS_DIR)
        shutil.copyfile(log_path, run_dir / A.TRAIN_LOG)
        if representations is not None:
            _export_dir(reps_stage, Path(reps_dir))
    write_json(run_dir / A.RUN_METADATA, metadata)
    if resume_dir:
        C.clear_state(state_dir, finished=True)  # the run is complete; a forced rerun must start from scratch
    return metadata


def zero_sharding(model: torch.nn.Module, method: MethodSpec) -> dict[str, Any] | None:
    """How the model was held when it was created (None without DeepSpeed): under ZeRO-3 each rank holds
    only its partition (`ds_tensor`) of every parameter, so this rank's share is about 1 / world size."""
    if not method.deepspeed:
        return None
    params = list(model.parameters())
    local = sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in params)
    total = sum(getattr(p, "ds_numel", p.numel()) for p in params)
    return {
        "stage": method.deepspeed,
        "sharded_at_load": any(hasattr(p, "ds_tensor") for p in params),
        "rank0_parameters_at_load": local,
        "parameters": total,
    }


def _attach_job_callbacks(trainer: Any) -> None:
    """Stop on SIGINT/SIGTERM at the next step end; without a progress bar, one log line per logging step
    (the Trainer's own replacement, PrinterCallback, prints dicts to stdout, not to the job's log)."""
    from transformers import PrinterCallback

    trainer.add_callback(jobcontrol.stop_callback())
    if trainer.args.disable_tqdm:
        trainer.pop_callback(PrinterCallback)
        trainer.add_callback(jobcontrol.progress_callback())


def _export_dir(source: Path, target: Path) -> None:
    """Move a finished staging directory onto its declared output path (same filesystem)."""
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _run_metadata(
    model_spec: ModelSpec,
    task: TaskSpec,
    method: MethodSpec,
    seed: int,
    counts: dict,
    truncated: int,
    result: Any,
    wall: float,
    n_train: int,
) -> dict[str, Any]:
    import peft
    import transformers

    return {
        "method": method.name,
        "method_type": method.type,
        "task": task.name,
        "seed": seed,
        "model": model_spec.name_or_path,
        "parameters": counts,
        "train_examples": n_train,
        "truncated_train_examples": truncated,
        "global_steps": int(result.global_step),
        "final_train_loss": float(result.training_loss),
        "train_wall_time_s": wall,
        "train_samples_per_second": float(result.metrics.get("train_samples_per_second", 0.0)),
        "memory": peak_memory_mb(),
        "device": (
            torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
        ),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
    }


def make_marker_callback() -> Any:
    """A TrainerCallback that marks each checkpoint complete once every process has saved it."""
    from transformers import TrainerCallback

    class CompleteMarkerCallback(TrainerCallback):
        trainer: Any = None
        base_loss = 0.0  # loss sum of the steps before the checkpoint this call resumed from
        prior_segments: list[dict[str, Any]] = []  # the training segments before this call's (its checkpoint's)
        started = 0.0  # perf_counter at this call's start of training
        from_step = 0

        def __init__(self) -> None:
            self.finisher = C.Finisher()  # checksums, fsync and marker off the training thread

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if control.should_save:  # the Trainer saves next and may delete an old checkpoint (save_total_limit)
                self.finisher.wait()
                if state.is_world_process_zero:  # a full disk is named before the save, not as a torch error in it
                    model = kwargs.get("model") or self.trainer.model
                    C.ensure_free_space(
                        args.output_dir,
                        C.estimate_checkpoint_bytes(model, args.output_dir),
                        f"checkpoint-{state.global_step}",
                    )

        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.barrier()  # sharded (ZeRO-3) checkpoints: every rank has written
            if state.is_world_process_zero:
                path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                current = _loss_sum(self.trainer)
                total = None if current is None else self.base_loss + current
                segments = self.segments(state.global_step, time.perf_counter() - self.started)
                self.finisher.start(path, {"step": state.global_step, "loss_sum": total, "segments": segments})
            return control

        def segments(self, step: int, wall: float) -> list[dict[str, Any]]:
            """The training segments up to `step`: the earlier ones and this call's, `wall` seconds so far."""
            return [*self.prior_segments, segment(self.from_step, step, wall)]

        def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            self.finisher.wait()

    return CompleteMarkerCallback()


def segment(from_step: int, to_step: int, wall: float | None) -> dict[str, Any]:
    """One training process's share of a run: its steps, wall time of training, host and Slurm job."""
    return {
        "from_step": from_step,
        "to_step": to_step,
        "wall_time_s": None if wall is None else round(wall, 3),
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }


def prior_segments(marker: dict[str, Any], resumed_step: int) -> list[dict[str, Any]]:
    """The segments recorded in the checkpoint a run resumes from; a checkpoint written before segments were
    recorded gives one segment of unknown wall time (so the sum says it is a lower bound)."""
    if not resumed_step:
        return []
    recorded = marker.get("segments")
    if recorded:
        return list(recorded)
    return [{**segment(0, resumed_step, None), "host": None, "slurm_job_id": None}]


def wall_time_summary(segments: list[dict[str, Any]]) -> dict[str, Any]:
    """run.json's training time: summed over the segments a resumed run was trained in, and the segments.
    A killed segment counts up to the checkpoint its successor resumed from (later steps were redone)."""
    known = [s["wall_time_s"] for s in segments if s["wall_time_s"] is not None]
    return {
        "train_wall_time_s": sum(known),
        "train_wall_time_complete": len(known) == len(segments),
        "train_segments": segments,
    }


def _finish_quietly(finisher: C.Finisher) -> None:
    """Join the checkpoint finisher after training raised: its own error is logged, not raised over that one."""
    try:
        finisher.wait()
    except Exception:  # noqa: BLE001 - the training error is the one to report
        log.exception("completing the last checkpoint failed as well")


def _loss_sum(trainer: Any) -> float | None:
    """Sum of per-step training losses so far in this call (Trainer internals; None if they moved)."""
    total = getattr(trainer, "_total_loss_scalar", None)
    pending = getattr(trainer, "_tr_loss", None)
    if total is None or pending is None:
        return None
    return float(total) + float(pending.item() if hasattr(pending, "item") else pending)


def _resume_metadata(resumed_step: int, prior: float | None, result: Any) -> dict[str, Any]:
    """Where the run resumed, and the mean training loss over *all* steps, not just this call's."""
    if not resumed_step:
        return {"resumed_from_step": None}
    steps = int(result.global_step)
    out: dict[str, Any] = {"resumed_from_step": resumed_step}
    if prior is not None and steps:
        out["final_train_loss"] = (prior + float(result.training_loss) * (steps - resumed_step)) / steps
    return out
