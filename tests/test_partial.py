"""Batched inference that keeps each finished batch and resumes after a kill (tasks.partial)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import torch

from tunetrace import artifacts as A
from tunetrace.config import ModelSpec
from tunetrace.models.loading import load_causal_lm, load_classifier, load_tokenizer
from tunetrace.tasks.encoding import encode_classification, predict_logits
from tunetrace.tasks.generative import generate_texts
from tunetrace.tasks.partial import BatchStore, fingerprint, run_batches

MINILM = ModelSpec.from_dict({})
TINY = ModelSpec.from_dict({"name_or_path": "tiny:llama"})


class Killed(RuntimeError):
    """Stands for the job being killed mid-run."""


def counting(model: torch.nn.Module, fail_after: int | None = None) -> tuple[list[int], Any]:
    """Count `model`'s forward calls; raise Killed on the call after `fail_after` of them. Returns the count and
    the hook's handle."""
    calls: list[int] = []

    def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if fail_after is not None and len(calls) == fail_after:
            raise Killed("killed")
        calls.append(1)

    return calls, model.register_forward_pre_hook(hook, with_kwargs=True)


def test_run_batches_keeps_each_batch_and_skips_finished_ones(tmp_path):
    """After a failure at batch 3, the rerun computes only batches 3.. and returns what one run returns."""
    computed: list[int] = []
    killed: list[bool] = []

    def compute(i: int) -> dict[str, torch.Tensor]:
        if i == 3 and not killed:
            killed.append(True)
            raise Killed("killed")
        computed.append(i)
        return {"x": torch.full((2,), float(i))}

    with pytest.raises(Killed):
        run_batches(range(6), compute, BatchStore.beside(tmp_path / "out.json", "k"), "loop")
    store = BatchStore.beside(tmp_path / "out.json", "k")
    done = run_batches(range(6), compute, store, "loop")
    assert computed == [0, 1, 2, 3, 4, 5] and store.loaded == 3
    assert torch.equal(torch.stack([d["x"] for d in done]), torch.arange(6.0).repeat_interleave(2).view(6, 2))
    store.finish()
    assert not (tmp_path / ".out.json.partial").exists()


def test_other_fingerprint_starts_afresh(tmp_path):
    """Batches of other inputs or settings are never reused: a new fingerprint empties the partial directory."""
    run_batches(range(2), lambda i: {"x": torch.tensor([i])}, BatchStore.beside(tmp_path / "o", "a"), "loop")
    store = BatchStore.beside(tmp_path / "o", fingerprint("b"))
    assert store.load("loop", 0) is None and store.loaded == 0


def _frame(n: int) -> pd.DataFrame:
    words = ["good", "bad", "fine film", "a long and rather dull story", "great", "awful acting here", "ok"]
    return pd.DataFrame(
        {
            A.COL_ID: [f"e{i}" for i in range(n)],
            A.COL_TEXT: [words[i % 7] * (1 + i % 3) for i in range(n)],
            A.COL_LABEL: [i % 2 for i in range(n)],
        }
    )


def test_killed_predictions_resume_without_recomputing_finished_batches(tmp_path):
    """predict_logits killed after 2 of 5 batches: the rerun makes 3 forward calls and the logits equal one run's."""
    tokenizer = load_tokenizer(MINILM)
    model = load_classifier(MINILM, ["negative", "positive"])
    dataset, _ = encode_classification(_frame(20), tokenizer, 32)
    expected = predict_logits(model, dataset, tokenizer, 4)
    out = tmp_path / "eval_outputs.parquet"
    key = fingerprint("predict", "model", "data", 4)
    _, killer = counting(model, fail_after=2)
    with pytest.raises(Killed):
        predict_logits(model, dataset, tokenizer, 4, BatchStore.beside(out, key))
    killer.remove()
    calls, _ = counting(model)
    store = BatchStore.beside(out, key)
    resumed = predict_logits(model, dataset, tokenizer, 4, store)
    assert len(calls) == 3 and store.loaded == 2
    torch.testing.assert_close(resumed, expected, rtol=0, atol=0)


def test_killed_generation_resumes_and_gives_the_same_texts(tmp_path):
    """Greedy generation killed after 2 prompts: the rerun generates only the rest, with the same texts."""
    tokenizer = load_tokenizer(TINY)
    model = load_causal_lm(TINY).eval()
    prompts = ["the film", "a story", "great acting", "dull"]
    expected = generate_texts(model, tokenizer, prompts, 3)
    store_path = tmp_path / "metrics.json"
    calls_before: list[int] = []

    def fail_on_third_prompt(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids")
        if ids is not None and ids.shape[1] > 1 and len(calls_before) == 2:  # a new prompt's first pass
            raise Killed("killed")
        if ids is not None and ids.shape[1] > 1:
            calls_before.append(1)

    handle = model.register_forward_pre_hook(fail_on_third_prompt, with_kwargs=True)
    with pytest.raises(Killed):
        generate_texts(model, tokenizer, prompts, 3, BatchStore.beside(store_path, "g"))
    handle.remove()
    calls, _ = counting(model)
    store = BatchStore.beside(store_path, "g")
    assert generate_texts(model, tokenizer, prompts, 3, store) == expected
    assert store.loaded == 2 and 0 < len(calls) <= 2 * 3  # two prompts of at most 3 tokens each
