"""Trainer callbacks. MonitorCallback writes the run's train_log.jsonl: one record per log step.

Every record holds what the Trainer logged (loss, learning rate, total pre-clip gradient norm,
eval metrics) plus step time, samples/s, CPU RSS, GPU memory per device and per-layer gradient
norm statistics. Gradient statistics are computed only on steps that are logged, so the monitor
costs one pass over the gradients every `logging_steps` steps.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)
_LAYER = re.compile(r"(?:^|\.)(?:layers?|h|blocks?)\.(\d+)\.")
LogSink = Callable[[dict[str, Any], int], None]


def layer_of(parameter_name: str) -> str:
    """The layer a parameter belongs to: `layer_{i}` for transformer blocks, else its top module."""
    match = _LAYER.search(parameter_name)
    if match:
        return f"layer_{int(match.group(1))}"
    parts = [p for p in parameter_name.split(".") if p not in ("base_model", "model", "module")]
    return parts[0] if parts else parameter_name


def layer_grad_norms(named_parameters: Iterable[tuple[str, torch.nn.Parameter]]) -> dict[str, float]:
    """L2 norm of the gradient of each layer (parameters without a gradient are skipped)."""
    names, grads = [], []
    for name, param in named_parameters:
        if param.grad is not None:
            names.append(layer_of(name))
            grads.append(param.grad.detach())
    if not grads:
        return {}
    # one fused kernel per device and dtype, no copies of the gradients (as clip_grad_norm_ does)
    norms = torch.stack([n.float() for n in torch._foreach_norm(grads)]).cpu().double()
    squares: dict[str, float] = {}
    for key, value in zip(names, (norms**2).tolist(), strict=True):
        squares[key] = squares.get(key, 0.0) + value
    return {key: math.sqrt(value) for key, value in squares.items()}


def norm_stats(norms: dict[str, float], scale: float = 1.0) -> dict[str, Any]:
    """Mean, std, min, max of per-layer norms (times `scale`) and the layer with the largest."""
    if not norms:
        return {}
    values = torch.tensor([v * scale for v in norms.values()], dtype=torch.float64)
    return {
        "grad_norm_layer_mean": float(values.mean()),
        "grad_norm_layer_std": float(values.std(unbiased=False)),
        "grad_norm_layer_min": float(values.min()),
        "grad_norm_layer_max": float(values.max()),
        "grad_norm_layer_argmax": list(norms)[int(values.argmax())],
        "grad_nonfinite_layers": int((~torch.isfinite(values)).sum()),
    }


def memory_stats() -> dict[str, float]:
    """CPU resident memory of this process and, per CUDA device, allocated and peak memory (MiB)."""
    import psutil

    stats = {"cpu_rss_mb": psutil.Process().memory_info().rss / 2**20}
    if torch.cuda.is_available():
        for device in range(torch.cuda.device_count()):
            stats[f"gpu{device}_allocated_mb"] = torch.cuda.memory_allocated(device) / 2**20
            stats[f"gpu{device}_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return stats


def _will_log(args: Any, state: Any, step: int) -> bool:
    every = int(state.logging_steps or args.logging_steps or 1)
    return (step == 1 and args.logging_first_step) or step % max(every, 1) == 0 or step >= state.max_steps


def make_monitor_callback(path: str | Path, monitor: bool = True, sinks: Sequence[LogSink] = ()) -> Any:
    """A TrainerCallback appending one JSON record per log event to `path` and passing it to `sinks`.

    With `monitor=False` only the Trainer's logs, step time and samples/s are written (the cheap
    record the monitor is benchmarked against).
    """
    from transformers import TrainerCallback

    class MonitorCallback(TrainerCallback):
        def __init__(self) -> None:
            self.handle = None  # opened by the main process only: one log per run, not per rank
            self.window_start = time.perf_counter()
            self.window_step = 0
            self.model: torch.nn.Module | None = None
            self.pending: dict[str, float] = {}

        def on_train_begin(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
            self.model = model
            self.window_start, self.window_step = time.perf_counter(), state.global_step

        def on_pre_optimizer_step(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            # gradients here are already clipped; on_log rescales them with the pre-clip total
            if monitor and self.model is not None and _will_log(args, state, state.global_step + 1):
                self.pending = layer_grad_norms(self.model.named_parameters())

        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            if not state.is_world_process_zero:
                return
            if self.handle is None:
                self.handle = open(path, "a", encoding="utf-8")
            record = {"step": state.global_step, "epoch": state.epoch, "time": time.time(), **(logs or {})}
            self._add_throughput(record, args, state.global_step)
            if monitor:
                record.update(self._monitor_fields(record))
            self.handle.write(json.dumps(record, default=float) + "\n")
            self.handle.flush()
            for sink in sinks:
                sink(record, state.global_step)

        def _add_throughput(self, record: dict, args: Any, step: int) -> None:
            now = time.perf_counter()
            steps = max(step - self.window_step, 0)
            if steps:
                elapsed = now - self.window_start
                batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(args.world_size, 1)
                record["step_time_s"] = elapsed / steps
                record["samples_per_s"] = batch * steps / elapsed if elapsed > 0 else None
                self.window_start, self.window_step = now, step

        def _monitor_fields(self, record: dict) -> dict[str, Any]:
            fields: dict[str, Any] = memory_stats()
            if self.pending and "loss" in record:
                clipped_total = math.sqrt(sum(v * v for v in self.pending.values()))
                total = record.get("grad_norm")
                scale = float(total) / clipped_total if total is not None and clipped_total > 0 else 1.0
                fields.update(norm_stats(self.pending, scale if math.isfinite(scale) else 1.0))
                fields.setdefault("grad_norm", clipped_total * scale)
                self.pending = {}
            return fields

        def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if self.handle is not None:
                self.handle.close()

    return MonitorCallback()
