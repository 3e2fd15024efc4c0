"""Hidden-state representations of a fixed probe set: select, extract and capture step directories
(the step directory format, its writer and its loader live in steps.py).

Layer index 0 is the embeddings output, index i >= 1 the output of transformer block i - 1
(the `hidden_states` tuple of a Hugging Face model).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from tunetrace import artifacts as A
from tunetrace.analysis.steps import RepresentationSpec, step_dir_name, write_step
from tunetrace.config import ModelSpec, TaskSpec
from tunetrace.models.placement import input_device
from tunetrace.tasks.batching import in_original_order, length_order

log = logging.getLogger(__name__)

POOLINGS = ("mean", "first", "last", "none")
STORE_DTYPES = {"fp16": torch.float16, "fp32": torch.float32}


# ---------------------------------------------------------------- probe set


@dataclasses.dataclass
class ProbeSet:
    """The probe examples in their stable order, pre-tokenised into fixed batches. The batches hold the examples
    shortest first (`order[j]` is the position, in id order, of the j-th example across the batches), so a batch
    pads to similar lengths; extract() puts the rows back in id order."""

    ids: list[str]
    hash: str
    batches: list[dict[str, torch.Tensor]]
    order: list[int] | None = None  # None: the batches are in id order


def probe_hash(ids: Sequence[str]) -> str:
    """sha256 of the probe ids in order, one per line."""
    return hashlib.sha256("\n".join(map(str, ids)).encode("utf-8")).hexdigest()


def select_probe(frame: pd.DataFrame, size: int) -> pd.DataFrame:
    """The first `size` eval rows by example id (stable whatever the file order); all if fewer."""
    ordered = frame.sort_values(A.COL_ID, kind="stable").reset_index(drop=True)
    return ordered.iloc[: max(int(size), 1)]


def build_probe(frame: pd.DataFrame, tokenizer: Any, task: TaskSpec, spec: RepresentationSpec) -> ProbeSet:
    """Select and tokenise the probe set; batches are fixed so every extraction pads alike. Pooled captures batch
    the examples by length (a third to a half fewer padded tokens per forward pass on GLUE sentences); token-level
    ones (pooling none) pad the whole set to one length and keep id order."""
    probe = select_probe(frame, spec.probe_size)
    texts = probe[A.COL_TEXT].tolist()
    pairs = probe[A.COL_TEXT_PAIR].tolist() if A.COL_TEXT_PAIR in probe else None
    lengths = [len(ids) for ids in tokenizer(texts, pairs, truncation=True, max_length=task.max_length)["input_ids"]]
    longest, order = None, None
    if spec.pooling == "none":  # token level: one padded length for the whole probe set
        longest = max(lengths)
    else:
        order = [int(i) for i in length_order(lengths)]
        texts = [texts[i] for i in order]
        pairs = [pairs[i] for i in order] if pairs else None
    batches = []
    for start in range(0, len(texts), spec.batch_size):
        second = pairs[start : start + spec.batch_size] if pairs else None
        batches.append(
            dict(
                tokenizer(
                    texts[start : start + spec.batch_size],
                    second,
                    truncation=True,
                    max_length=longest or task.max_length,
                    padding="max_length" if longest else True,
                    return_tensors="pt",
                )
            )
        )
    ids = probe[A.COL_ID].astype(str).tolist()
    return ProbeSet(ids=ids, hash=probe_hash(ids), batches=batches, order=order)


# ---------------------------------------------------------------- extraction


def pool_hidden(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(batch, tokens, dim) -> (batch, dim) for mean/first/last; unchanged for none."""
    if pooling == "none":
        return hidden
    if pooling == "first":
        return hidden[:, 0]
    if pooling == "last":  # position of the last non-padding token, for left or right padding
        positions = torch.arange(mask.shape[1], device=mask.device)
        last = (mask.to(torch.long) * positions).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    raise ValueError(f"representations.pooling: unknown pooling '{pooling}'; allowed: {', '.join(POOLINGS)}")


def _resolve_layers(requested: tuple[int, ...] | None, available: int) -> list[int]:
    if requested is None:
        return list(range(available))
    bad = [i for i in requested if not 0 <= i < available]
    if bad:
        raise ValueError(
            f"representations.layers: indices {bad} out of range; "
            f"this model has layers 0..{available - 1} "
            "(0 = embeddings, i = transformer block i-1)"
        )
    return sorted(set(requested))


@contextlib.contextmanager
def preserved_rng_and_mode(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no_grad inside; train mode and every RNG state restored after.

    Extraction draws no random numbers in eval mode, but restoring the states makes "does not
    change the training trajectory" hold by construction, whatever a model's forward does.
    """
    states = (
        random.getstate(),
        np.random.get_state(),
        torch.get_rng_state(),
        torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if states[3] is not None:
            torch.cuda.set_rng_state_all(states[3])


def extract(
    model: torch.nn.Module, probe: ProbeSet, spec: RepresentationSpec
) -> tuple[dict[int, torch.Tensor], torch.Tensor | None]:
    """Pooled hidden states of every selected layer for the probe set (CPU, storage dtype)."""
    device = input_device(model)
    store = STORE_DTYPES[spec.dtype]
    chunks: dict[int, list[torch.Tensor]] = {}
    masks = []
    with preserved_rng_and_mode(model):
        for batch in probe.batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            hidden_states = model(**batch, output_hidden_states=True).hidden_states
            layers = _resolve_layers(spec.layers, len(hidden_states))
            mask = batch["attention_mask"]
            for i in layers:
                pooled = pool_hidden(hidden_states[i].float(), mask, spec.pooling)
                chunks.setdefault(i, []).append(pooled.to(store).cpu())
            masks.append(mask.to(torch.int8).cpu())
    layers_out = {i: _in_id_order(torch.cat(parts), probe.order) for i, parts in chunks.items()}
    return layers_out, (_in_id_order(torch.cat(masks), probe.order) if spec.pooling == "none" else None)


def _in_id_order(rows: torch.Tensor, order: list[int] | None) -> torch.Tensor:
    return rows.contiguous() if order is None else in_original_order(rows, order).contiguous()


# ---------------------------------------------------------------- storage


def capture_step(
    model: torch.nn.Module,
    probe: ProbeSet,
    spec: RepresentationSpec,
    step_dir: str | os.PathLike,
    info: Mapping[str, Any],
) -> dict[str, Any]:
    """Extract and write one step directory."""
    started = time.perf_counter()
    layers, mask = extract(model, probe, spec)
    meta = {
        **info,
        "pooling": spec.pooling,
        "dtype": spec.dtype,
        "probe": {"hash": probe.hash, "size": len(probe.ids), "ids": probe.ids},
    }
    meta = write_step(step_dir, layers, mask, {**meta, "extract_seconds": time.perf_counter() - started})
    log.info("captured %s (%d layers) in %.2f s", step_dir, len(layers), meta["extract_seconds"])
    return meta


# ---------------------------------------------------------------- entry points


def probe_for(model_spec: ModelSpec, task: TaskSpec, spec: RepresentationSpec, data_dir: str | os.PathLike) -> ProbeSet:
    from tunetrace.data.readers import load_prepared
    from tunetrace.tasks.dispatch import get_task_type

    _, eval_frame = load_prepared(data_dir)
    tokenizer, frame = get_task_type(task.type).probe_inputs(model_spec, task, eval_frame)
    return build_probe(frame, tokenizer, task, spec)


def check_layers(model: torch.nn.Module, spec: RepresentationSpec) -> None:
    """Raise (naming representations.layers and the valid range) when a requested layer is past the model's
    last block: hidden states are the embeddings plus one per block. Models whose config does not say how many
    blocks they have are checked at their first capture instead."""
    blocks = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if spec.layers is not None and isinstance(blocks, int):
        _resolve_layers(spec.layers, blocks + 1)


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether DeepSpeed ZeRO-3 partitioned the model's parameters across the ranks."""
    return any(hasattr(p, "ds_id") for p in model.parameters())


def representation_callback(
    model_spec: ModelSpec,
    task: TaskSpec,
    spec: RepresentationSpec,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    run: str,
) -> Any:
    """A TrainerCallback capturing every `every_steps` steps and the final step (and step 0 if
    `spec.capture_step0`; otherwise step 0 is the base extraction). The layer selection is checked against
    the model when training begins, so a bad `representations.layers` stops the job before any step."""
    from transformers import TrainerCallback

    probe = probe_for(model_spec, task, spec, data_dir)
    out_dir = Path(out_dir)
    info = {"model": model_spec.name_or_path, "run": run, "task": task.name}

    class RepresentationCallback(TrainerCallback):
        def __init__(self) -> None:
            self.captured: set[int] = set()
            # captures inside the Trainer's timed loop (step 0 at train begin, every_steps at step ends): their
            # seconds are part of the Trainer's samples/s, and run.json says how much (in_loop_summary)
            self.in_loop: list[float] = []

        def capture(self, state: Any, step: int, model: torch.nn.Module) -> None:
            target = out_dir / step_dir_name(step)
            # A ZeRO-3 model's forward gathers each layer's shards from every rank: all ranks run it (they
            # decide alike: rank 0 writes a step only after the others joined its forward), rank 0 writes.
            every_rank = is_sharded(model)
            # one writer; and a step already on disk (atomic dirs) was captured before a resume
            if step in self.captured or target.exists() or not (state.is_world_process_zero or every_rank):
                return
            if state.is_world_process_zero:
                capture_step(model, probe, spec, target, {**info, "step": step})
            else:
                extract(model, probe, spec)
            self.captured.add(step)

        def timed_capture(self, state: Any, step: int, model: torch.nn.Module) -> None:
            started = time.perf_counter()
            before = len(self.captured)
            self.capture(state, step, model)
            if len(self.captured) > before:
                self.in_loop.append(time.perf_counter() - started)

        def in_loop_summary(self) -> dict[str, Any]:
            """The captures inside the Trainer's timed loop: how many and their seconds."""
            return {"captures": len(self.in_loop), "seconds": round(sum(self.in_loop), 3)}

        def on_train_begin(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
            check_layers(model, spec)
            if spec.capture_step0 and state.global_step == 0:  # a resumed run's step 0 is on disk already
                self.timed_capture(state, 0, model)

        def on_step_end(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
            # The last step is left to on_train_end, outside the Trainer's timed loop: the model is the same
            # there (the final save changes no weight), unless the Trainer reloads the best checkpoint first.
            last = state.global_step >= state.max_steps and not args.load_best_model_at_end
            if state.global_step % spec.every_steps == 0 and not last:
                self.timed_capture(state, state.global_step, model)

        def on_train_end(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
            self.capture(state, state.global_step, model)

    return RepresentationCallback()
