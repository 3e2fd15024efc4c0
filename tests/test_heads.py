"""models.heads: the mean-pooled classification head, and how a full or merged model reloads with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from tunetrace.config import MethodSpec, ModelSpec, TaskSpec, validate_config
from tunetrace.models.heads import MeanPooledBertForSequenceClassification
from tunetrace.models.pooling import POOLING_FIELD
from tunetrace.tasks.dispatch import get_task_type

MINILM = ModelSpec.from_dict({"name_or_path": "embedded:all-MiniLM-L6-v2"})
TEXTS = ["a wonderful film", "an awful, tedious and overlong film that nobody should see"]


def _tiny_bert() -> MeanPooledBertForSequenceClassification:
    config = BertConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, num_labels=3
    )
    torch.manual_seed(0)
    return MeanPooledBertForSequenceClassification(config).eval()


def _config(pooling: str = "auto") -> dict:
    return validate_config(
        {
            "model": {"name_or_path": MINILM.name_or_path},
            "seeds": [0],
            "methods": {"full": {"type": "full"}, "lora": {"type": "lora", "lora": {"r": 4}}},
            "tasks": {
                "t": {
                    "source": {"train": "x.csv", "eval": "y.csv"},
                    "labels": ["negative", "positive"],
                    "pooling": pooling,
                }
            },
        }
    )


def _task(pooling: str = "auto") -> TaskSpec:
    return TaskSpec.from_dict("t", _config(pooling)["tasks"]["t"])


def _logits(model: torch.nn.Module) -> torch.Tensor:
    tokenizer = get_task_type("sequence_classification").load_tokenizer(MINILM)
    with torch.no_grad():
        return model.eval()(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits


def _perturb(model: torch.nn.Module, scale: float = 0.05) -> None:
    """Stand-in for training: move every trainable weight, so a reload that drops any of them shows."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn_like(p))


def test_mean_pooled_logits_equal_a_hand_computation():
    """Logits = W · mean(last hidden state over the unpadded tokens) + b, row by row."""
    model = _tiny_bert()
    input_ids = torch.tensor([[2, 7, 9, 3, 0, 0], [2, 5, 6, 8, 4, 3]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        hidden = model.bert(input_ids, attention_mask=mask).last_hidden_state
        logits = model(input_ids=input_ids, attention_mask=mask).logits
    pooled = torch.stack([hidden[0, :4].mean(0), hidden[1].mean(0)])
    expected = pooled @ model.classifier.weight.T + model.classifier.bias
    torch.testing.assert_close(logits, expected, atol=1e-6, rtol=1e-6)


def test_padding_does_not_change_mean_pooled_logits():
    """An example scores the same alone and padded in a batch (padding is outside the mean)."""
    model = _tiny_bert()
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([[2, 7, 9, 3]]), attention_mask=torch.ones(1, 4, dtype=torch.long)).logits
        padded = model(
            input_ids=torch.tensor([[2, 7, 9, 3, 0, 0]]), attention_mask=torch.tensor([[1, 1, 1, 1, 0, 0]])
        ).logits
    torch.testing.assert_close(alone, padded, atol=1e-6, rtol=1e-6)


def test_mean_head_has_no_pooler():
    """The [CLS] pooler is dropped: no untrained, unused parameters in training or the saved model."""
    assert not [name for name, _ in _tiny_bert().named_parameters() if "pooler" in name]


def test_embedded_model_loads_the_mean_head_and_cls_keeps_transformers_head():
    """auto on the embedded model builds the mean class; pooling cls builds BERT's own class, pooler included."""
    task_type = get_task_type("sequence_classification")
    mean, cls = task_type.load_model(MINILM, _task()), task_type.load_model(MINILM, _task("cls"))
    assert type(mean) is MeanPooledBertForSequenceClassification and getattr(mean.config, POOLING_FIELD) == "mean"
    assert type(cls) is BertForSequenceClassification and cls.bert.pooler is not None


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_full_model_reloads_to_the_same_logits(tmp_path, pooling):
    """A fully fine-tuned model saved and reloaded through the task type gives the same logits (1e-5)."""
    task_type, task = get_task_type("sequence_classification"), _task(pooling)
    model = task_type.load_model(MINILM, task)
    _perturb(model)
    model.save_pretrained(tmp_path / "final")
    assert json.loads((tmp_path / "final" / "config.json").read_text())[POOLING_FIELD] == pooling
    reloaded = task_type.load_model(MINILM, _task(), path=str(tmp_path / "final"))  # auto: the saved field decides
    assert type(reloaded) is type(model)
    torch.testing.assert_close(_logits(reloaded), _logits(model), atol=1e-5, rtol=0)


def test_merged_lora_model_reloads_to_the_adapter_logits(tmp_path):
    """LoRA (SEQ_CLS, classifier saved) on the mean head, merged and saved, reloads to the adapter's logits (1e-5)."""
    task_type, task = get_task_type("sequence_classification"), _task()
    adapter = task_type.build_model(MINILM, task, MethodSpec.from_dict("lora", _config()["methods"]["lora"]))
    _perturb(adapter)  # lora_A, lora_B and the classifier copy: the adapter differs from the base
    expected = _logits(adapter)
    adapter.merge_and_unload().save_pretrained(Path(tmp_path) / "merged")
    merged = task_type.load_model(MINILM, task, path=str(tmp_path / "merged"))
    assert type(merged) is MeanPooledBertForSequenceClassification
    torch.testing.assert_close(_logits(merged), expected, atol=1e-5, rtol=0)
    assert (expected - _logits(task_type.load_model(MINILM, task))).abs().max() > 1e-3  # the adapter mattered
