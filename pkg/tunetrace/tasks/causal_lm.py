"""causal_lm: supervised fine-tuning of decoder LLMs on prompt/completion or chat data.

The loss is masked to the completion tokens (prompt tokens get label -100). Evaluation reports the
token-weighted mean loss and perplexity, overall and per stratum (the task's group_field), and
counts every example that could not be scored as asked: empty completions and truncated examples.
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any

import numpy as np
import pandas as pd
import torch

from tunetrace import artifacts as A
from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.data.checks import cell_text, check_columns
from tunetrace.data.readers import load_prepared
from tunetrace.models.loading import load_causal_lm, load_tokenizer, meta_skeleton
from tunetrace.models.placement import Placement, input_device, placement_for
from tunetrace.tasks.base import Evaluation, MergeCheck, MergeQuantity, ModelOutputs, TaskType, TrainingParts
from tunetrace.tasks.batching import in_original_order, length_order
from tunetrace.tasks.partial import BatchStore, run_batches
from tunetrace.tasks.rows import COL_COMPLETION, COL_MESSAGES, COL_PROMPT, split_messages, standardise_rows

log = logging.getLogger(__name__)
IGNORE = -100


def load_decoder_tokenizer(model_spec: ModelSpec, path: str | None = None) -> Any:
    """Tokenizer with a pad token, padding on the right (training and scoring)."""
    tokenizer = load_tokenizer(model_spec, path)
    tokenizer.padding_side = "right"
    return tokenizer


def prompt_text(row: pd.Series, tokenizer: Any) -> str:
    """The prompt; chat rows go through the tokenizer's chat template when it has one."""
    if COL_MESSAGES in row and isinstance(row[COL_MESSAGES], str) and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            json.loads(row[COL_MESSAGES])[:-1], add_generation_prompt=True, tokenize=False
        )
    return row[COL_PROMPT]


def encode_example(prompt: str, completion: str, tokenizer: Any, max_length: int) -> tuple[dict[str, list[int]], bool]:
    """Token ids with labels masked to the completion (+ end token); True when truncated."""
    head = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    prompt_ids = head + tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(" " + completion, add_special_tokens=False)["input_ids"] if completion.strip() else []
    completion_ids = completion_ids + [tokenizer.eos_token_id] if completion_ids else []
    ids = prompt_ids + completion_ids
    labels = [IGNORE] * len(prompt_ids) + completion_ids
    truncated = len(ids) > max_length
    ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}, truncated


class SFTDataset(torch.utils.data.Dataset):
    def __init__(self, items: list[dict[str, list[int]]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.items[index]


def encode_sft(frame: pd.DataFrame, tokenizer: Any, max_length: int) -> tuple[SFTDataset, dict[str, Any]]:
    """Encode every row; counts of truncated, empty-completion and unscorable (no completion token) rows."""
    items, flags = [], {"truncated": [], "empty_completion": [], "no_completion_tokens": []}
    for _, row in frame.iterrows():
        item, truncated = encode_example(prompt_text(row, tokenizer), row[COL_COMPLETION], tokenizer, max_length)
        items.append(item)
        flags["truncated"].append(truncated)
        flags["empty_completion"].append(not row[COL_COMPLETION].strip())
        flags["no_completion_tokens"].append(all(x == IGNORE for x in item["labels"]))
    counts = {f"{k}_examples": int(sum(v)) for k, v in flags.items()}
    return SFTDataset(items), {**counts, "flags": flags}


def collate(tokenizer: Any):  # type: ignore[no-untyped-def]
    """Right-pad ids with the pad token and labels with -100."""

    def fn(batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        out = {"input_ids": [], "attention_mask": [], "labels": []}
        for b in batch:
            pad = width - len(b["input_ids"])
            out["input_ids"].append(b["input_ids"] + [tokenizer.pad_token_id] * pad)
            out["attention_mask"].append(b["attention_mask"] + [0] * pad)
            out["labels"].append(b["labels"] + [IGNORE] * pad)
        return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}

    return fn


def _token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-position negative log-likelihood of the next token (0 where the label is ignored)."""
    shift_logits, shift_labels = logits[:, :-1].float(), labels[:, 1:]
    nll = torch.nn.functional.cross_entropy(shift_logits.transpose(1, 2), shift_labels.clamp(min=0), reduction="none")
    return nll * (shift_labels != IGNORE)


@torch.no_grad()
def completion_nll(
    model: torch.nn.Module, dataset: SFTDataset, tokenizer: Any, batch_size: int, store: BatchStore | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Summed completion NLL and completion token count per example, in order (batched shortest first; finished
    batches kept in `store`, tasks.partial)."""
    model.eval()
    device = input_device(model)
    order = _length_order(dataset)

    def nll_of(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        nll = _token_nll(logits, batch["labels"].to(logits.device))
        return {"sum": nll.sum(1).double(), "count": (batch["labels"][:, 1:] != IGNORE).sum(1)}

    done = run_batches(_loader(dataset, order, tokenizer, batch_size), nll_of, store, "nll")
    sums = np.concatenate([d["sum"].numpy() for d in done])
    counts = np.concatenate([d["count"].numpy() for d in done])
    return in_original_order(sums, order), in_original_order(counts, order)


def _length_order(dataset: SFTDataset) -> np.ndarray:
    """The dataset's examples shortest first (tasks.batching)."""
    return length_order([len(item["input_ids"]) for item in dataset.items])


def _loader(dataset: SFTDataset, order: np.ndarray, tokenizer: Any, batch_size: int) -> Any:
    """Batches of the dataset's examples taken in `order`, right-padded."""
    return torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, order.tolist()), batch_size=batch_size, collate_fn=collate(tokenizer)
    )


def lm_scores(nll_sum: np.ndarray, n_tokens: np.ndarray) -> dict[str, float]:
    """Token-weighted mean loss and perplexity (exp of it)."""
    tokens = int(n_tokens.sum())
    loss = float(nll_sum.sum() / tokens) if tokens else float("nan")
    return {
        "loss": loss,
        "perplexity": float(math.exp(loss)) if tokens else float("nan"),
        "tokens": tokens,
        "n": int(len(n_tokens)),
        "scored_examples": int((n_tokens > 0).sum()),
    }


def score_lm(nll_sum: np.ndarray, n_tokens: np.ndarray, frame: pd.DataFrame, primary: str) -> dict[str, Any]:
    """Overall and per-stratum loss and perplexity."""
    result: dict[str, Any] = lm_scores(nll_sum, n_tokens)
    if A.COL_GROUP in frame:
        groups = frame[A.COL_GROUP].to_numpy()
        result["strata"] = {str(g): lm_scores(nll_sum[groups == g], n_tokens[groups == g]) for g in sorted(set(groups))}
    result["primary_metric"], result["primary"] = primary, result[primary]
    return result


def fill_rows(frame: pd.DataFrame, task: TaskSpec, origin: str, out: pd.DataFrame) -> None:
    """prompt and completion columns (or chat messages, whose last assistant reply is the completion)."""
    if task.messages_field in frame.columns:
        parts = [split_messages(m, origin, i, task.messages_field) for i, m in enumerate(frame[task.messages_field])]
        out[COL_PROMPT] = [p for p, _, _ in parts]
        out[COL_COMPLETION] = [c for _, c, _ in parts]
        out[COL_MESSAGES] = [json.dumps(m) for _, _, m in parts]
        return
    check_columns(frame, [task.prompt_field, task.completion_field], f"{origin} (or a '{task.messages_field}' column)")
    out[COL_PROMPT] = frame[task.prompt_field].map(cell_text).to_numpy()
    # empty completions are kept here and reported (and given no loss) when batches are built
    out[COL_COMPLETION] = frame[task.completion_field].map(cell_text).to_numpy()


def decoder_parts(
    task_type: TaskType,
    model_spec: ModelSpec,
    task: TaskSpec,
    method: MethodSpec,
    train_frame: pd.DataFrame,
    eval_frame: pd.DataFrame,
    trainer_class: Any = None,
    datasets: tuple | None = None,
    collator: Any = None,
) -> TrainingParts:
    """SFT on prompt/completion frames (other decoder task types pass their own datasets and loss)."""
    tokenizer = load_decoder_tokenizer(model_spec)
    if datasets is None:
        train_set, info = encode_sft(train_frame, tokenizer, task.max_length)
        no_tokens = info["flags"]["no_completion_tokens"]
        train_set = SFTDataset([x for x, bad in zip(train_set.items, no_tokens, strict=True) if not bad])
        if not len(train_set):
            raise ValueError(
                f"task {task.name}: no training example has completion tokens (check completion_field and max_length)"
            )
        eval_set, _ = encode_sft(eval_frame, tokenizer, task.max_length)
        eval_set = SFTDataset([x for x in eval_set.items if any(v != IGNORE for v in x["labels"])])
    else:
        train_set, eval_set, info = datasets
    model = task_type.build_model(model_spec, task, method)
    log.info(
        "%s/%s: %d truncated, %d empty completions, %d left out",
        method.name,
        task.name,
        info.get("truncated_examples", 0),
        info.get("empty_completion_examples", 0),
        info.get("no_completion_tokens_examples", 0),
    )
    return TrainingParts(
        model=model,
        tokenizer=tokenizer,
        train_set=train_set,
        eval_set=eval_set,
        collator=collator or collate(tokenizer),
        truncated=info.get("truncated_examples", 0),
        info={k: v for k, v in info.items() if k != "flags"},
        trainer_class=trainer_class,
    )


def lm_outputs(
    model: torch.nn.Module,
    tokenizer: Any,
    frame: pd.DataFrame,
    task: TaskSpec,
    batch_size: int,
    store: BatchStore | None = None,
) -> ModelOutputs:
    """Completion negative log-likelihood and token count per prompt/completion row, with the encoding flags."""
    dataset, info = encode_sft(frame, tokenizer, task.max_length)
    nll_sum, n_tokens = completion_nll(model, dataset, tokenizer, batch_size, store)
    table = pd.DataFrame(
        {
            A.COL_ID: frame[A.COL_ID].to_numpy(),
            "nll_sum": nll_sum,
            "completion_tokens": n_tokens,
            **{k: v for k, v in info["flags"].items()},
        }
    )
    return ModelOutputs(table, {k: v for k, v in info.items() if k != "flags"})


def score_lm_outputs(outputs: ModelOutputs, frame: pd.DataFrame, primary: str) -> tuple[dict, pd.DataFrame]:
    """Completion loss and perplexity, and one row per example, from `lm_outputs`."""
    nll_sum = outputs.table["nll_sum"].to_numpy(dtype=np.float64)
    n_tokens = outputs.table["completion_tokens"].to_numpy()
    metrics = score_lm(nll_sum, n_tokens, frame, primary)
    metrics.update(outputs.info)
    metrics["truncated_eval_examples"] = outputs.info["truncated_examples"]
    rows = outputs.table.copy()
    rows.insert(3, "loss", np.where(n_tokens > 0, nll_sum / np.maximum(n_tokens, 1), np.nan))
    if A.COL_GROUP in frame:
        rows[A.COL_GROUP] = frame[A.COL_GROUP].to_numpy()
    return metrics, rows


def score_frame(
    model: torch.nn.Module,
    tokenizer: Any,
    frame: pd.DataFrame,
    task: TaskSpec,
    primary: str,
    batch_size: int,
    store: BatchStore | None = None,
) -> tuple[dict, pd.DataFrame]:
    """Completion loss and perplexity of `model` on prompt/completion rows, and one row per example."""
    return score_lm_outputs(lm_outputs(model, tokenizer, frame, task, batch_size, store), frame, primary)


def format_lm_report(metrics: dict[str, Any]) -> str:
    lines = [
        f"examples: {metrics['n']} (scored {metrics['scored_examples']}, {metrics['tokens']} completion tokens)",
        f"loss: {metrics['loss']:.4f}",
        f"perplexity: {metrics['perplexity']:.4f}",
        f"truncated examples: {metrics['truncated_examples']}",
        f"empty completions: {metrics['empty_completion_examples']}",
        f"examples with no completion token left (not scored): {metrics['no_completion_tokens_examples']}",
    ]
    for name, s in (metrics.get("strata") or {}).items():
        lines.append(f"stratum {name!r}: n {s['n']}, loss {s['loss']:.4f}, perplexity {s['perplexity']:.4f}")
    return "\n".join(lines) + "\n"


@torch.no_grad()
def max_logit_diff(
    a: torch.nn.Module, b: torch.nn.Module, dataset: SFTDataset, tokenizer: Any, batch_size: int
) -> float:
    """Largest |logit difference| of two decoders over every non-padding position of `dataset`."""
    a.eval(), b.eval()
    worst = 0.0
    for batch in _loader(dataset, _length_order(dataset), tokenizer, batch_size):
        mask = batch["attention_mask"].bool()
        # each model takes its inputs on its own first device (placed or sharded models may differ)
        la = a(**{k: batch[k].to(input_device(a)) for k in ("input_ids", "attention_mask")}).logits.cpu()[mask]
        lb = b(**{k: batch[k].to(input_device(b)) for k in ("input_ids", "attention_mask")}).logits.cpu()[mask]
        worst = max(worst, float((la.float() - lb.float()).abs().max()) if la.numel() else 0.0)
    return worst


class DecoderTaskType(TaskType):
    """Task types served by a decoder LLM (AutoModelForCausalLM); they share loading and tokenizers."""

    peft_task_type = "CAUSAL_LM"

    def load_model(
        self,
        model_spec: ModelSpec,
        task: TaskSpec,
        path: str | None = None,
        gradient_checkpointing: bool = False,
        placement: Placement | None = None,
    ) -> torch.nn.Module:
        return load_causal_lm(model_spec, path=path, gradient_checkpointing=gradient_checkpointing, placement=placement)

    def model_skeleton(self, model_spec: ModelSpec, task: TaskSpec) -> torch.nn.Module:
        return meta_skeleton(model_spec, "AutoModelForCausalLM")

    def load_tokenizer(self, model_spec: ModelSpec, path: str | None = None) -> Any:
        return load_decoder_tokenizer(model_spec, path)


class CausalLM(DecoderTaskType):
    """Supervised fine-tuning on prompt/completion or chat rows; scored by completion loss and perplexity."""

    name = "causal_lm"
    trivial_baseline = None  # its one baseline is the base model; a language model has no trivial predictor

    def standardise(self, frame: pd.DataFrame, task: TaskSpec, origin: str, id_prefix: str) -> pd.DataFrame:
        return standardise_rows(frame, task, origin, id_prefix, fill_rows)

    def training_parts(
        self, model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, data_dir: str | os.PathLike
    ) -> TrainingParts:
        train_frame, eval_frame = load_prepared(data_dir)
        return decoder_parts(self, model_spec, task, method, train_frame, eval_frame)

    def predict(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        frame: pd.DataFrame,
        task: TaskSpec,
        batch_size: int,
        store: BatchStore | None = None,
    ) -> ModelOutputs:
        return lm_outputs(model, tokenizer, frame, task, batch_size, store)

    def score(
        self, outputs: ModelOutputs, frame: pd.DataFrame, task: TaskSpec, spec: EvalSpec, seed: int
    ) -> Evaluation:
        metrics, rows = score_lm_outputs(outputs, frame, self.primary_metric(task))
        return Evaluation(metrics, rows, format_lm_report(metrics))

    def baseline(
        self,
        model_spec: ModelSpec,
        task: TaskSpec,
        spec: EvalSpec,
        data_dir: str | os.PathLike,
        seed: int,
        store: BatchStore | None = None,
    ) -> Evaluation:
        _, frame = load_prepared(data_dir)
        model = self.load_model(model_spec, task, placement=placement_for(model_spec))
        metrics, rows = score_frame(
            model, self.load_tokenizer(model_spec), frame, task, self.primary_metric(task), spec.batch_size, store
        )
        return Evaluation.of_baselines(metrics["primary_metric"], {"base_model": metrics}, "base_model", rows)

    def merge_check(
        self,
        adapter: torch.nn.Module,
        merged: torch.nn.Module,
        tokenizer: Any,
        frame: pd.DataFrame,
        task: TaskSpec,
        spec: EvalSpec,
    ) -> MergeCheck:
        primary = self.primary_metric(task)
        m_a, _ = score_frame(adapter, tokenizer, frame, task, primary, spec.batch_size)
        m_b, _ = score_frame(merged, tokenizer, frame, task, primary, spec.batch_size)
        dataset, _ = encode_sft(frame, tokenizer, task.max_length)
        quantities = [
            MergeQuantity("loss_abs_diff", abs(m_a["loss"] - m_b["loss"]), spec.merge_tolerance),
            MergeQuantity(
                "perplexity_abs_diff", abs(m_a["perplexity"] - m_b["perplexity"]), spec.merge_perplexity_tolerance
            ),
            MergeQuantity("max_abs_logit_diff", max_logit_diff(adapter, merged, dataset, tokenizer, spec.batch_size)),
        ]
        details = {
            "loss_adapter": m_a["loss"],
            "loss_merged": m_b["loss"],
            "perplexity_adapter": m_a["perplexity"],
            "perplexity_merged": m_b["perplexity"],
        }
        return MergeCheck(quantities, examples=len(frame), details=details)

    def probe_inputs(self, model_spec: ModelSpec, task: TaskSpec, frame: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
        """The prompt the model sees (chat template applied), by example id."""
        tokenizer = load_decoder_tokenizer(model_spec)
        texts = [prompt_text(row, tokenizer) for _, row in frame.iterrows()]
        return tokenizer, pd.DataFrame({A.COL_ID: frame[A.COL_ID].to_numpy(), A.COL_TEXT: texts})
