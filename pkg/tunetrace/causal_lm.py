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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import artifacts as A
from .config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from .data import load_prepared
from .fileio import write_json, write_text
from .models import apply_lora, load_causal_adapter_model, load_causal_lm, load_tokenizer
from .task_data import COL_COMPLETION, COL_MESSAGES, COL_PROMPT

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
        return tokenizer.apply_chat_template(json.loads(row[COL_MESSAGES])[:-1], add_generation_prompt=True, tokenize=False)
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
def completion_nll(model: torch.nn.Module, dataset: SFTDataset, tokenizer: Any, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Summed completion NLL and completion token count per example, in order."""
    model.eval()
    device = next(model.parameters()).device
    sums, counts = [], []
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate(tokenizer))
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        nll = _token_nll(logits, batch["labels"])
        sums.append(nll.sum(1).double().cpu().numpy())
        counts.append((batch["labels"][:, 1:] != IGNORE).sum(1).cpu().numpy())
    return np.concatenate(sums), np.concatenate(counts)


def lm_scores(nll_sum: np.ndarray, n_tokens: np.ndarray) -> dict[str, float]:
    """Token-weighted mean loss and perplexity (exp of it)."""
    tokens = int(n_tokens.sum())
    loss = float(nll_sum.sum() / tokens) if tokens else float("nan")
    return {"loss": loss, "perplexity": float(math.exp(loss)) if tokens else float("nan"), "tokens": tokens,
            "n": int(len(n_tokens)), "scored_examples": int((n_tokens > 0).sum())}


def score_lm(nll_sum: np.ndarray, n_tokens: np.ndarray, frame: pd.DataFrame, primary: str) -> dict[str, Any]:
    """Overall and per-stratum loss and perplexity."""
    result: dict[str, Any] = lm_scores(nll_sum, n_tokens)
    if A.COL_GROUP in frame:
        groups = frame[A.COL_GROUP].to_numpy()
        result["strata"] = {str(g): lm_scores(nll_sum[groups == g], n_tokens[groups == g]) for g in sorted(set(groups))}
    result["primary_metric"], result["primary"] = primary, result[primary]
    return result


def _primary(task: TaskSpec) -> str:
    return task.primary_metric if task.primary_metric in ("loss", "perplexity") else "loss"


def build_model(model_spec: ModelSpec, method: MethodSpec) -> torch.nn.Module:
    """The base decoder, with LoRA (CAUSAL_LM) applied for lora methods."""
    model = load_causal_lm(model_spec, gradient_checkpointing=method.gradient_checkpointing)
    if method.is_lora:
        model = apply_lora(model, method.lora, task_type="CAUSAL_LM")
        if method.gradient_checkpointing:
            model.enable_input_require_grads()
    return model


def training_parts(model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, data_dir: str | os.PathLike) -> Any:
    """SFT parts for one run; rows without completion tokens are left out and counted."""
    train_frame, eval_frame = load_prepared(data_dir)
    return decoder_parts(model_spec, task, method, train_frame, eval_frame)


def decoder_parts(model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, train_frame: pd.DataFrame,
                  eval_frame: pd.DataFrame, trainer_class: Any = None, datasets: tuple | None = None,
                  collator: Any = None) -> Any:
    """SFT on prompt/completion frames (other decoder task types pass their own datasets and loss)."""
    from .training import TrainingParts

    tokenizer = load_decoder_tokenizer(model_spec)
    if datasets is None:
        train_set, info = encode_sft(train_frame, tokenizer, task.max_length)
        train_set = SFTDataset([x for x, bad in zip(train_set.items, info["flags"]["no_completion_tokens"]) if not bad])
        if not len(train_set):
            raise ValueError(f"task {task.name}: no training example has completion tokens (check completion_field and max_length)")
        eval_set, _ = encode_sft(eval_frame, tokenizer, task.max_length)
        eval_set = SFTDataset([x for x in eval_set.items if any(v != IGNORE for v in x["labels"])])
    else:
        train_set, eval_set, info = datasets
    model = build_model(model_spec, method)
    log.info("%s/%s: %d truncated, %d empty completions, %d left out", method.name, task.name,
             info.get("truncated_examples", 0), info.get("empty_completion_examples", 0),
             info.get("no_completion_tokens_examples", 0))
    return TrainingParts(model=model, tokenizer=tokenizer, train_set=train_set, eval_set=eval_set,
                         collator=collator or collate(tokenizer), truncated=info.get("truncated_examples", 0),
                         info={k: v for k, v in info.items() if k != "flags"}, trainer_class=trainer_class)


def load_base_model(model_spec: ModelSpec, task: TaskSpec) -> torch.nn.Module:
    """The pretrained decoder every run of a decoder task starts from."""
    return load_causal_lm(model_spec)


def load_tuned_model(model_spec: ModelSpec, task: TaskSpec | None, method: MethodSpec,
                     final_dir: str | os.PathLike) -> torch.nn.Module:
    """A run's final model (LoRA: base with the adapter attached, not merged)."""
    return load_causal_adapter_model(model_spec, str(final_dir)) if method.is_lora else load_causal_lm(model_spec, path=str(final_dir))


def probe_inputs(model_spec: ModelSpec, task: TaskSpec, frame: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    """Representation probe: the prompt the model sees (chat template applied), by example id."""
    tokenizer = load_decoder_tokenizer(model_spec)
    texts = [prompt_text(row, tokenizer) for _, row in frame.iterrows()]
    return tokenizer, pd.DataFrame({A.COL_ID: frame[A.COL_ID].to_numpy(), A.COL_TEXT: texts})


def load_trained(model_spec: ModelSpec, method: MethodSpec, run_dir: str | os.PathLike) -> torch.nn.Module:
    return load_tuned_model(model_spec, None, method, Path(run_dir) / A.FINAL_DIR)


def _evaluate_model(model: torch.nn.Module, tokenizer: Any, frame: pd.DataFrame, task: TaskSpec, batch_size: int) -> tuple[dict, pd.DataFrame]:
    dataset, info = encode_sft(frame, tokenizer, task.max_length)
    nll_sum, n_tokens = completion_nll(model, dataset, tokenizer, batch_size)
    metrics = score_lm(nll_sum, n_tokens, frame, _primary(task))
    metrics.update({k: v for k, v in info.items() if k != "flags"})
    metrics["truncated_eval_examples"] = info["truncated_examples"]
    rows = pd.DataFrame({A.COL_ID: frame[A.COL_ID], "nll_sum": nll_sum, "completion_tokens": n_tokens,
                         "loss": np.where(n_tokens > 0, nll_sum / np.maximum(n_tokens, 1), np.nan),
                         **{k: v for k, v in info["flags"].items()}})
    if A.COL_GROUP in frame:
        rows[A.COL_GROUP] = frame[A.COL_GROUP].to_numpy()
    return metrics, rows


def format_lm_report(title: str, metrics: dict[str, Any]) -> str:
    lines = [title, "=" * len(title), f"examples: {metrics['n']} (scored {metrics['scored_examples']}, "
             f"{metrics['tokens']} completion tokens)", f"loss: {metrics['loss']:.4f}", f"perplexity: {metrics['perplexity']:.4f}",
             f"truncated examples: {metrics['truncated_examples']}", f"empty completions: {metrics['empty_completion_examples']}",
             f"examples with no completion token left (not scored): {metrics['no_completion_tokens_examples']}"]
    for name, s in (metrics.get("strata") or {}).items():
        lines.append(f"stratum {name!r}: n {s['n']}, loss {s['loss']:.4f}, perplexity {s['perplexity']:.4f}")
    return "\n".join(lines) + "\n"


def evaluate_run(model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, spec: EvalSpec, seed: int,
                 data_dir: str | os.PathLike, run_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Loss and perplexity of a run's final model on the eval split, overall and per stratum."""
    _, eval_frame = load_prepared(data_dir)
    tokenizer = load_decoder_tokenizer(model_spec, str(Path(run_dir) / A.FINAL_DIR))
    metrics, rows = _evaluate_model(load_trained(model_spec, method, run_dir), tokenizer, eval_frame, task, spec.batch_size)
    metrics.update({"method": method.name, "task": task.name, "seed": seed})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(out / A.PREDICTIONS, index=False)
    write_text(out / A.EVAL_REPORT, format_lm_report(f"{method.name} / {task.name} / seed {seed}", metrics))
    write_json(out / A.METRICS, _finite(metrics))
    return metrics


def _finite(obj: Any) -> Any:
    """NaN (no scored token) becomes null, since JSON has no NaN."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj


def evaluate_baseline(model_spec: ModelSpec, task: TaskSpec, spec: EvalSpec, data_dir: str | os.PathLike,
                      out_path: str | os.PathLike, seed: int = 0) -> dict[str, Any]:
    """The base model's loss and perplexity on the eval completions (before fine-tuning)."""
    _, eval_frame = load_prepared(data_dir)
    metrics, _ = _evaluate_model(load_causal_lm(model_spec), load_decoder_tokenizer(model_spec), eval_frame, task, spec.batch_size)
    output = {"task": task.name, "model": model_spec.name_or_path, "primary_metric": metrics["primary_metric"],
              "reference": "base_model", "primary": metrics["primary"], "baselines": {"base_model": metrics}}
    write_json(out_path, _finite(output))
    return output


def merge_adapter(model_spec: ModelSpec, task: TaskSpec, adapter_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Fold a causal-LM adapter into the base weights; a standalone model."""
    from .merge import save_merged

    return save_merged(load_causal_adapter_model(model_spec, str(adapter_dir)).merge_and_unload(), load_decoder_tokenizer(model_spec, str(adapter_dir)), model_spec, adapter_dir, out_dir)


@torch.no_grad()
def _max_logit_diff(a: torch.nn.Module, b: torch.nn.Module, dataset: SFTDataset, tokenizer: Any, batch_size: int) -> float:
    a.eval(), b.eval()
    worst = 0.0
    for batch in torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate(tokenizer)):
        mask = batch["attention_mask"].bool()
        la = a(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[mask]
        lb = b(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[mask]
        worst = max(worst, float((la.float() - lb.float()).abs().max()) if la.numel() else 0.0)
    return worst


def verify_merge(model_spec: ModelSpec, task: TaskSpec, spec: EvalSpec, data_dir: str | os.PathLike,
                 adapter_dir: str | os.PathLike, merged_dir: str | os.PathLike, out_path: str | os.PathLike,
                 identity: dict[str, Any] | None = None) -> dict[str, Any]:
    """Re-validate the merged model: |loss diff| < merge_tolerance and |perplexity diff| < merge_perplexity_tolerance."""
    from .merge import MergeCheckError

    _, frame = load_prepared(data_dir)
    tokenizer = load_decoder_tokenizer(model_spec, str(merged_dir))
    adapter = load_causal_adapter_model(model_spec, str(adapter_dir))
    merged = load_causal_lm(model_spec, path=str(merged_dir))
    m_adapter, _ = _evaluate_model(adapter, tokenizer, frame, task, spec.batch_size)
    m_merged, _ = _evaluate_model(merged, tokenizer, frame, task, spec.batch_size)
    dataset, _ = encode_sft(frame, tokenizer, task.max_length)
    ppl_tol = getattr(spec, "merge_perplexity_tolerance", 0.01)
    result = {"loss_adapter": m_adapter["loss"], "loss_merged": m_merged["loss"],
              "loss_abs_diff": abs(m_adapter["loss"] - m_merged["loss"]),
              "perplexity_adapter": m_adapter["perplexity"], "perplexity_merged": m_merged["perplexity"],
              "perplexity_abs_diff": abs(m_adapter["perplexity"] - m_merged["perplexity"]),
              "max_abs_logit_diff": _max_logit_diff(adapter, merged, dataset, tokenizer, spec.batch_size),
              "label_agreement": 1.0, "tolerance": spec.merge_tolerance, "perplexity_tolerance": ppl_tol,
              "examples": len(frame), **(identity or {}), "on_failure": spec.merge_failure,
              "adapter": str(adapter_dir), "merged": str(merged_dir)}
    result["passed"] = bool(result["loss_abs_diff"] < spec.merge_tolerance and result["perplexity_abs_diff"] < ppl_tol)
    write_json(out_path, _finite(result))
    log.info("causal-LM merge check %s: |Δloss| %.3g, |Δppl| %.3g", "passed" if result["passed"] else "FAILED",
             result["loss_abs_diff"], result["perplexity_abs_diff"])
    if not result["passed"] and spec.merge_failure == "error":
        raise MergeCheckError(f"merge check failed: |loss diff| {result['loss_abs_diff']:.3g} (tolerance {spec.merge_tolerance:.3g}) "
                              f"or |perplexity diff| {result['perplexity_abs_diff']:.3g} (tolerance {ppl_tol:.3g}); see {out_path}")
    return result
