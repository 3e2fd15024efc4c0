"""Sequence-classification models whose head reads the mean of the last hidden state.

A sentence-embedding checkpoint (all-MiniLM-L6-v2) was trained to be read through the mean over its
tokens; its [CLS] pooler, which AutoModelForSequenceClassification's head reads, was not trained at
all. Each class here is the architecture's own sequence-classification class with one change, the
vector its classifier reads, so `from_pretrained`/`save_pretrained`, PEFT's SEQ_CLS (the `classifier`
stays a module to save), `merge_and_unload` and the Trainer work unchanged. The saved config carries
`models.pooling.POOLING_FIELD`; `models.loading.load_classifier` reads it and picks the class again.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import BertForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils.generic import can_return_tuple


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """(batch, tokens, dim) -> (batch, dim): the mean over non-padding tokens (sentence-transformers' mean)."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class MeanPooledBertForSequenceClassification(BertForSequenceClassification):
    """BERT's classifier (dropout, linear) over the mean-pooled last hidden state instead of the [CLS] pooler.

    The pooler is dropped: it would be an untrained, unused parameter in training (and DDP), in the
    weight analysis and in the saved model. A checkpoint that has one loads without it.
    """

    _keys_to_ignore_on_load_unexpected = [r"pooler\."]

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.bert.pooler = None

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        logits = self.classifier(self.dropout(mean_pool(outputs.last_hidden_state, attention_mask)))
        loss = None if labels is None else self.loss_function(labels=labels, pooled_logits=logits, config=self.config)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


# model_type -> the mean-pooled class (models.pooling.MEAN_POOLING_MODEL_TYPES lists the same keys)
MEAN_POOLED_HEADS: dict[str, type] = {"bert": MeanPooledBertForSequenceClassification}
