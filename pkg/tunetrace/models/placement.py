"""Where an inference job puts the model: one policy for every job that loads a model to run it (baseline,
representations, merge, merge check, validation, the final model's predictions).

CPU when the job sees no GPU; one GPU when the weights fit it with headroom; else sharded over the job's GPUs
by accelerate's big-model inference (a device map from `accelerate.infer_auto_device_map` with a memory cap per
GPU, blocks the model declares unsplittable kept whole). Training places its model itself (Trainer, DeepSpeed):
its loads take no placement and stay on the CPU until the launcher moves them.

Imports no torch at the top: the cluster requests (at the DAG build) read its HEADROOM.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from tunetrace.config import ModelSpec

log = logging.getLogger(__name__)

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# share of a GPU's memory the weights may take: the rest holds activations, the KV cache and CUDA's own context
HEADROOM = 0.8
UNKNOWN_PARAMETERS = 1_000_000_000  # a hub model not on disk yet: plan as for a 1B model


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where one job's model lives: `device_map` for from_pretrained (None: load on the CPU as before),
    `main_device` where inputs go, the weights' dtype and why (the one log line of the job)."""

    kind: str  # "cpu", "gpu" or "sharded"
    main_device: str
    dtype: str
    reason: str
    devices: tuple[str, ...] = ("cpu",)
    device_map: str | dict[str, Any] | None = None
    max_memory: dict[Any, int] | None = None

    def load_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of from_pretrained that load the weights straight onto the placement's devices."""
        import torch

        kwargs: dict[str, Any] = {"dtype": getattr(torch, self.dtype), "low_cpu_mem_usage": True}
        if self.device_map is not None:
            kwargs["device_map"] = self.device_map
        if self.max_memory is not None:
            kwargs["max_memory"] = self.max_memory
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        """What a job records in its output JSON (`placement`)."""
        return {
            "kind": self.kind,
            "devices": list(self.devices),
            "main_device": self.main_device,
            "dtype": self.dtype,
            "reason": self.reason,
        }


def weights_bytes(parameters: int, dtype: str) -> int:
    return parameters * DTYPE_BYTES[dtype]


def decide(
    parameters: int, dtype: str, gpu_memory: list[int], headroom: float = HEADROOM, copies: int = 1
) -> Placement:
    """The placement of a model of `parameters` in `dtype` on GPUs of `gpu_memory` bytes each (empty: none),
    for a job that holds `copies` such models at once (the merge check: adapter and merged model), each placed
    alike within its share of every GPU. Pure, so the policy is tested without GPUs."""
    gpu_memory = [m // copies for m in gpu_memory]
    size = weights_bytes(parameters, dtype)
    gib = size / 2**30
    if not gpu_memory:
        return Placement("cpu", "cpu", dtype, f"cpu ({gib:.2f} GiB of {dtype} weights, no GPU visible)")
    if size <= headroom * gpu_memory[0]:
        return Placement(
            "gpu",
            "cuda:0",
            dtype,
            f"cuda:0 ({gib:.2f} GiB of {dtype} weights fit one GPU)",
            devices=("cuda:0",),
            device_map={"": 0},
        )
    capacity = headroom * sum(gpu_memory)
    if size > capacity:
        needed = math.ceil(size / (headroom * gpu_memory[0]))
        raise MemoryError(
            f"the model's {gib:.1f} GiB of {dtype} weights do not fit the job's {len(gpu_memory)} "
            f"GPU(s) ({capacity / 2**30:.1f} GiB usable); give the job {needed} GPUs "
            "(resources.gpu_mem_gb sets the GPU memory the requests assume)"
        )
    max_memory: dict[Any, int] = {i: int(headroom * m) for i, m in enumerate(gpu_memory)}
    devices = tuple(f"cuda:{i}" for i in range(len(gpu_memory)))
    return Placement(
        "sharded",
        "cuda:0",
        dtype,
        f"sharded over {len(gpu_memory)} GPUs ({gib:.2f} GiB of {dtype} weights exceed one GPU)",
        devices=devices,
        device_map="auto",
        max_memory=max_memory,
    )


def visible_gpu_memory() -> list[int]:
    """Total memory of each GPU this job sees (torch honours CUDA_VISIBLE_DEVICES); empty without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())]


@functools.cache
def _placement_for(name_or_path: str, revision: str | None, dtype: str, copies: int) -> Placement:
    from tunetrace.models.size import parameter_count

    parameters = parameter_count(name_or_path, revision) or UNKNOWN_PARAMETERS
    placement = decide(parameters, dtype, visible_gpu_memory(), copies=copies)
    log.info("placement: %s", placement.reason)
    return placement


def placement_for(spec: ModelSpec, copies: int = 1) -> Placement:
    """The placement of the base model `spec` in this job, which holds `copies` models of its size at once
    (decided and logged once per job; cluster.requests.GPU_COPIES asks the GPUs for the same copies)."""
    return _placement_for(spec.name_or_path, spec.revision, spec.dtype, copies)


def shard_device_map(skeleton: torch.nn.Module, max_memory: Mapping[Any, int], dtype: str) -> dict[str, Any]:
    """The device map big-model inference uses for `skeleton` (a model on the meta device) within `max_memory`
    per device: accelerate.infer_auto_device_map with the model's own unsplittable blocks (`_no_split_modules`),
    as from_pretrained(device_map="auto", max_memory=...) computes it."""
    import torch
    from accelerate import infer_auto_device_map

    no_split = list(getattr(skeleton, "_no_split_modules", None) or [])
    return dict(
        infer_auto_device_map(
            skeleton, max_memory=dict(max_memory), no_split_module_classes=no_split, dtype=getattr(torch, dtype)
        )
    )


def input_device(model: torch.nn.Module) -> torch.device:
    """Where a batch goes: the device of the first module of a dispatched model's map (its embeddings), else
    the device of its parameters."""
    import torch

    device_map = getattr(model, "hf_device_map", None)
    if device_map:
        first = next(iter(device_map.values()))
        if first not in ("cpu", "disk"):
            return torch.device(f"cuda:{first}" if isinstance(first, int) else first)
        return torch.device("cpu")
    return next(model.parameters()).device


def used_devices(model: torch.nn.Module) -> list[str]:
    """The devices a loaded model's parameters are on, sorted (what a job records)."""
    return sorted({str(p.device) for p in model.parameters()})
