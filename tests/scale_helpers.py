"""Helpers for the scale tests: a tiny random BERT on disk and comparisons of finished runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch


def make_tiny_bert(path: Path) -> Path:
    """A random 2-layer BERT (hidden 32) with MiniLM's tokenizer, saved as a local model directory."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from tunetrace.models.names import resolve_model_path

    if (path / "config.json").is_file():
        return path
    source = resolve_model_path("embedded:all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(source)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def tiny_bert_config(model_dir: Path, steps: int = 12, save_every: int = 2) -> dict[str, Any]:
    """Workflow config: one full fine-tuning method on the tiny BERT, fp32, one seed."""
    return {
        "model": {"name_or_path": str(model_dir)},
        "tasks": {
            "tiny": {
                "source": {"train": "data/train.csv", "eval": "data/eval.csv"},
                "labels": ["negative", "positive"],
                "group_field": "domain",
                "id_field": "id",
                "max_length": 32,
            }
        },
        "methods": {
            "full": {
                "type": "full",
                "learning_rate": 1e-3,
                "batch_size": 4,
                "max_steps": steps,
                "save_every_steps": save_every,
                "save_total_limit": 2,
                "logging_steps": 1,
                "warmup_ratio": 0.1,
            }
        },
        "seeds": [0],
        "evaluation": {"bootstrap_samples": 10, "batch_size": 32},
        "tracking": {"wandb_mode": "disabled"},
    }


def load_weights(final_dir: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a saved final model."""
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for file in sorted(final_dir.glob("*.safetensors")):
        tensors.update(load_file(str(file)))
    return tensors


def loss_curve(train_log: Path) -> list[tuple[int, float]]:
    """(step, loss) of every training-loss record of a train_log.jsonl."""
    records = [json.loads(line) for line in train_log.read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in records if "loss" in r]


def max_weight_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute element difference of two state dicts with the same keys."""
    assert sorted(a) == sorted(b), "the two models hold different tensors"
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst
