"""causal_lm: tiny local decoder, completion-masked SFT, loss/perplexity per stratum, merge re-validation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunetrace import artifacts as A
from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.data.checks import DataError
from tunetrace.stages.prepare import prepare_task_data
from tunetrace.tasks.causal_lm import IGNORE, encode_example, encode_sft, load_decoder_tokenizer

TINY = ModelSpec.from_dict({"name_or_path": "tiny:llama"})


pytestmark = pytest.mark.usefixtures("tiny_decoder_cache")


def write_sft(path: Path, rows: int = 24, empty: int = 0, long_prompt: bool = False) -> Path:
    """Instruction JSONL with a difficulty column; the first `empty` completions are empty."""
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(rows):
            prompt = f"add {i} and {i + 1}" + (" please" * 200 if long_prompt and i == 0 else "")
            completion = "" if i < empty else f"the answer is {2 * i + 1}"
            handle.write(
                json.dumps(
                    {
                        "id": f"q{i}",
                        "prompt": prompt,
                        "completion": completion,
                        "difficulty": "easy" if i % 2 else "hard",
                    }
                )
                + "\n"
            )
    return path


def sft_task(path: Path, **extra) -> TaskSpec:
    return TaskSpec.from_dict(
        "sft",
        {
            "type": "causal_lm",
            "source": {"train": str(path), "eval_fraction": 0.25, "stratify_by": ["difficulty"]},
            "id_field": "id",
            "group_field": "difficulty",
            "max_length": 64,
            "primary_metric": "loss",
            **extra,
        },
    )


def test_loss_is_masked_to_the_completion():
    """Prompt tokens get label -100; completion tokens and the end token are labelled."""
    tokenizer = load_decoder_tokenizer(TINY)
    item, truncated = encode_example("add two and three", "five", tokenizer, 64)
    n_prompt = len(tokenizer("add two and three", add_special_tokens=False)["input_ids"]) + 1
    assert item["labels"][:n_prompt] == [IGNORE] * n_prompt
    assert item["labels"][n_prompt:] == item["input_ids"][n_prompt:] and item["labels"][-1] == tokenizer.eos_token_id
    assert not truncated


def test_empty_and_truncated_examples_are_counted(tmp_path):
    """Empty completions and over-long examples are counted, and rows left with no completion token flagged."""
    frame = pd.DataFrame({"prompt": ["hi", "hi " * 100, "yo"], "completion": ["there", "x", ""]})
    _, info = encode_sft(frame, load_decoder_tokenizer(TINY), 16)
    assert info["empty_completion_examples"] == 1
    assert info["truncated_examples"] == 1
    assert info["no_completion_tokens_examples"] == 2


def test_chat_messages_become_prompt_and_completion(tmp_path):
    """The last assistant message is the completion; a non-assistant last message is an error naming the row."""
    path = tmp_path / "chat.jsonl"
    msgs = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi there"}]
    path.write_text(json.dumps({"messages": msgs}) + "\n" + json.dumps({"messages": msgs[:1]}) + "\n")
    task = TaskSpec.from_dict("chat", {"type": "causal_lm", "source": {"train": str(path), "eval": str(path)}})
    with pytest.raises(DataError, match=r"row 3, column 'messages'.*assistant"):
        prepare_task_data(task, tmp_path / "out")


def test_stratified_held_out_ids_in_manifest(tmp_path):
    """The carved eval split is stratified by the listed column, and its ids are in the manifest."""
    manifest = prepare_task_data(sft_task(write_sft(tmp_path / "sft.jsonl", rows=40)), tmp_path / "data")
    held = manifest["held_out"]
    assert held["stratified_by"] == ["group", "difficulty"] and len(held["ids"]) == 10
    evaluation = pd.read_parquet(tmp_path / "data" / A.EVAL_SPLIT)
    assert evaluation[A.COL_GROUP].value_counts().to_dict() == {"easy": 5, "hard": 5}
    assert sorted(held["ids"]) == sorted(evaluation[A.COL_ID])


def _train(tmp_path: Path, method: MethodSpec, task: TaskSpec) -> Path:
    from tunetrace.training.loop import train_run

    prepare_task_data(task, tmp_path / "data")
    train_run(TINY, task, method, 0, tmp_path / "data", tmp_path / "run")
    return tmp_path / "run"


def test_full_sft_evaluates_loss_perplexity_and_strata(tmp_path):
    """A full SFT run reports loss, perplexity = exp(loss) and per-stratum figures, counting empty completions."""
    from tunetrace.stages.pilot import score_pilot

    task = sft_task(write_sft(tmp_path / "sft.jsonl", empty=2))
    method = MethodSpec.from_dict("full", {"type": "full", "max_steps": 2, "batch_size": 4, "learning_rate": 1e-3})
    run = _train(tmp_path, method, task)
    assert json.loads((run / A.RUN_METADATA).read_text())["empty_completion_examples"] >= 1
    metrics = score_pilot(
        TINY, task, method, EvalSpec.from_dict({"bootstrap_samples": 0}), 0, tmp_path / "data", run, tmp_path / "eval"
    )
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    assert set(metrics["strata"]) == {"easy", "hard"} and metrics["primary"] == metrics["loss"]


def test_lora_merge_revalidated_within_tolerances(tmp_path):
    """The merged decoder matches the adapter: |loss diff| < 1e-4 and |perplexity diff| < 0.01."""
    from tunetrace.stages.merge import merge_adapter
    from tunetrace.stages.verify_merge import verify_merge

    task = sft_task(write_sft(tmp_path / "sft.jsonl"))
    method = MethodSpec.from_dict(
        "lora", {"type": "lora", "max_steps": 2, "batch_size": 4, "learning_rate": 1e-2, "lora": {"r": 4, "alpha": 8}}
    )
    run = _train(tmp_path, method, task)
    merge_adapter(TINY, task, run / A.FINAL_DIR, tmp_path / "merged")
    result = verify_merge(
        TINY,
        task,
        EvalSpec.from_dict({}),
        tmp_path / "data",
        run / A.FINAL_DIR,
        tmp_path / "merged",
        tmp_path / "check.json",
    )
    q = result["quantities"]
    assert result["passed"] and q["loss_abs_diff"]["value"] < 1e-4 and q["perplexity_abs_diff"]["value"] < 0.01
    assert not (tmp_path / "merged" / "adapter_config.json").exists()


def test_tampered_merge_is_reported_failed(tmp_path):
    """A merged model that drifts from the adapter model is reported as failed (merge_failure warn records it)."""
    import torch
    from safetensors.torch import load_file, save_file

    from tunetrace.config import LoraSpec
    from tunetrace.models.loading import apply_lora, load_causal_lm
    from tunetrace.stages.merge import merge_adapter
    from tunetrace.stages.verify_merge import verify_merge

    task = sft_task(write_sft(tmp_path / "sft.jsonl"))
    prepare_task_data(task, tmp_path / "data")
    peft_model = apply_lora(load_causal_lm(TINY), LoraSpec.from_dict({"r": 4}), task_type="CAUSAL_LM")
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    load_decoder_tokenizer(TINY).save_pretrained(str(tmp_path / "adapter"))
    merge_adapter(TINY, task, tmp_path / "adapter", tmp_path / "merged")
    weights = load_file(str(tmp_path / "merged" / "model.safetensors"))
    name = next(k for k in weights if "q_proj" in k)
    weights[name] = weights[name] + 0.05 * torch.randn_like(weights[name])
    save_file(weights, str(tmp_path / "merged" / "model.safetensors"), metadata={"format": "pt"})
    result = verify_merge(
        TINY,
        task,
        EvalSpec.from_dict({"merge_failure": "warn"}),
        tmp_path / "data",
        tmp_path / "adapter",
        tmp_path / "merged",
        tmp_path / "check.json",
    )
    assert not result["passed"] and result["quantities"]["loss_abs_diff"]["value"] > 1e-4


def test_gpt2_tiny_decoder_gets_architecture_lora_targets():
    """tiny:gpt2 loads through from_pretrained and LoRA defaults to its c_attn projection."""
    from tunetrace.config import LoraSpec
    from tunetrace.models.loading import apply_lora, load_causal_lm, lora_targets

    model = load_causal_lm(ModelSpec.from_dict({"name_or_path": "tiny:gpt2"}))
    assert lora_targets(model, LoraSpec.from_dict({})) == ["c_attn"]
    assert lora_targets(model, LoraSpec.from_dict({"target_modules": ["c_proj"]})) == ["c_proj"]
    assert apply_lora(model, LoraSpec.from_dict({"r": 2}), task_type="CAUSAL_LM").get_nb_trainable_parameters()[0] > 0


def test_chat_template_renders_the_prompt():
    """Chat rows are rendered with the tokenizer's chat template, ending in the generation prompt."""
    from tunetrace.tasks.causal_lm import prompt_text

    row = pd.Series(
        {
            "prompt": "ignored",
            "completion": "hi there",
            "messages": json.dumps(
                [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi there"}]
            ),
        }
    )
    assert prompt_text(row, load_decoder_tokenizer(TINY)) == "user: hello\nassistant:"


def test_missing_stratify_column_is_named(tmp_path):
    """A stratify_by column absent from the file stops preparation naming the column."""
    task = TaskSpec.from_dict(
        "sft",
        {"type": "causal_lm", "source": {"train": str(write_sft(tmp_path / "s.jsonl")), "stratify_by": ["domain"]}},
    )
    with pytest.raises(DataError, match=r"stratify_by\): missing column\(s\) \['domain'\]"):
        prepare_task_data(task, tmp_path / "out")


def test_tiny_decoder_weights_are_deterministic(tmp_path):
    """Two builds of tiny:llama give byte-identical weights, so every job sees the same base model."""
    from tunetrace.fileio import sha256_file
    from tunetrace.models.tiny import build_tiny_decoder

    first, second = build_tiny_decoder(tmp_path / "a"), build_tiny_decoder(tmp_path / "b")
    assert sha256_file(first / "model.safetensors") == sha256_file(second / "model.safetensors")


def test_sft_run_resumes_after_a_crash_and_captures_representations(tmp_path):
    """Decoder tasks train through the shared loop: a LoRA SFT run that dies right after checkpoint 4
    resumes from it to the uninterrupted result (adapter weights and loss curve within 1e-6), and its
    per-step representations (staged across the crash) have step 0 equal to the base extraction."""
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from tunetrace.analysis import steps as S
    from tunetrace.stages.representations import extract_base_representations
    from tunetrace.training.loop import train_run

    task = sft_task(write_sft(tmp_path / "sft.jsonl", rows=32))
    prepare_task_data(task, tmp_path / "data")
    method = MethodSpec.from_dict(
        "lora",
        {
            "type": "lora",
            "max_steps": 8,
            "batch_size": 4,
            "learning_rate": 1e-2,
            "save_every_steps": 4,
            "logging_steps": 1,
            "lora": {"r": 4, "alpha": 8},
        },
    )
    spec = S.RepresentationSpec.from_dict(
        {"every_steps": 4, "probe_size": 8, "pooling": "last", "batch_size": 4, "capture_step0": True}
    )

    class Preempted(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.global_step == 4:
                raise RuntimeError("preempted after checkpoint 4")

    def run(name: str, callbacks: list = ()) -> Path:
        root = tmp_path / name
        train_run(
            TINY,
            task,
            method,
            0,
            tmp_path / "data",
            root / "run",
            callbacks=list(callbacks),
            resume_dir=root / "state",
            representations=spec,
            reps_dir=root / "reps",
        )
        return root

    straight = run("straight")
    with pytest.raises(RuntimeError, match="preempted"):
        run("killed", [Preempted()])
    assert not (tmp_path / "killed" / "run" / A.RUN_METADATA).exists()
    killed = run("killed")

    assert json.loads((killed / "run" / A.RUN_METADATA).read_text())["resumed_from_step"] == 4
    a = load_file(str(straight / "run" / A.FINAL_DIR / "adapter_model.safetensors"))
    b = load_file(str(killed / "run" / A.FINAL_DIR / "adapter_model.safetensors"))
    assert sorted(a) == sorted(b) and max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6

    def losses(root: Path) -> list[tuple[int, float]]:
        records = [json.loads(line) for line in (root / "run" / A.TRAIN_LOG).read_text().splitlines()]
        return [(r["step"], r["loss"]) for r in records if "loss" in r]

    assert [s for s, _ in losses(killed)] == list(range(1, 9))
    assert max(abs(x - y) for (_, x), (_, y) in zip(losses(straight), losses(killed), strict=True)) <= 1e-6
    assert [s for s, _ in S.list_steps(killed / "reps")] == [0, 4, 8]
    base = extract_base_representations(TINY, task, spec, tmp_path / "data", tmp_path / "base" / "step_000000")
    _, base_layers, _ = S.load_step(tmp_path / "base" / "step_000000")
    _, step0, _ = S.load_step(killed / "reps" / "step_000000")
    assert len(base["layers"]) == len(step0) >= 3  # embeddings + the tiny decoder's blocks
    for index, layer in base_layers.items():
        np.testing.assert_array_equal(step0[index], layer)


def test_gradient_checkpointing_lora_sft_matches_plain_training(tmp_path):
    """`gradient_checkpointing: true` (the large-model switch) trains the same LoRA SFT run: the first
    two losses (before and after one update) are identical, the third within 1% (on this CPU build
    the later steps differ by ~0.2%)."""
    task = sft_task(write_sft(tmp_path / "sft.jsonl"))
    curves = []
    for checkpointing in (False, True):
        method = MethodSpec.from_dict(
            "lora",
            {
                "type": "lora",
                "max_steps": 3,
                "batch_size": 4,
                "learning_rate": 1e-2,
                "logging_steps": 1,
                "gradient_checkpointing": checkpointing,
                "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
            },
        )
        run = _train(tmp_path / str(checkpointing), method, task)
        records = [json.loads(line) for line in (run / A.TRAIN_LOG).read_text().splitlines()]
        curves.append([r["loss"] for r in records if "loss" in r])
    assert len(curves[0]) == len(curves[1]) == 3 and curves[0][:2] == curves[1][:2]
    assert np.allclose(curves[0], curves[1], rtol=1e-2)


def test_completion_nll_batches_by_length_and_returns_dataset_order():
    """completion_nll forwards the examples shortest first and returns each one's NLL and token count at its own
    index, as scoring it alone does."""
    from tunetrace.models.loading import load_causal_lm
    from tunetrace.tasks.causal_lm import SFTDataset, completion_nll

    tokenizer = load_decoder_tokenizer(TINY)
    frame = pd.DataFrame(
        {
            "prompt": [" ".join(["add two and three"] * (1 + (7 - i) % 4)) for i in range(8)],
            "completion": [f"the answer is {i}" * (1 + i % 3) for i in range(8)],
        }
    )
    dataset, _ = encode_sft(frame, tokenizer, 64)
    lengths = [len(item["input_ids"]) for item in dataset.items]
    assert lengths != sorted(lengths)
    model = load_causal_lm(TINY)
    sums, counts = completion_nll(model, dataset, tokenizer, batch_size=3)
    alone = [completion_nll(model, SFTDataset([item]), tokenizer, batch_size=1) for item in dataset.items]
    np.testing.assert_allclose(sums, [s[0] for s, _ in alone], rtol=1e-4, atol=1e-4)
    assert counts.tolist() == [c[0] for _, c in alone]
