"""Representation extraction, storage and loading on a tiny random BERT."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import write_sentiment_csv
from tunetrace import artifacts as A
from tunetrace.analysis import representations as R
from tunetrace.analysis import steps as S
from tunetrace.config import MethodSpec, ModelSpec, TaskSpec
from tunetrace.fileio import sha256_file
from tunetrace.models.names import resolve_model_path
from tunetrace.stages.prepare import prepare_task_data
from tunetrace.stages.representations import extract_base_representations

# capture_step0: these tests prove the run's own step 0 equals the base (the default leaves step 0 to the base)
SPEC = S.RepresentationSpec.from_dict({"every_steps": 2, "probe_size": 12, "batch_size": 8, "capture_step0": True})


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    """A 2-layer, hidden-32 random BERT with the embedded MiniLM tokenizer, saved to disk."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("embedded:all-MiniLM-L6-v2"))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return ModelSpec.from_dict({"name_or_path": str(path)})


@pytest.fixture(scope="module")
def task_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[TaskSpec, Path]:
    """A prepared tiny sentiment task (40 train, 20 eval rows)."""
    root = tmp_path_factory.mktemp("data")
    train = write_sentiment_csv(root / "train.csv", 40, seed=1)
    evaluation = write_sentiment_csv(root / "eval.csv", 20, seed=2)
    task = TaskSpec.from_dict(
        "tiny",
        {
            "source": {"train": str(train), "eval": str(evaluation)},
            "labels": ["negative", "positive"],
            "id_field": "id",
            "max_length": 24,
        },
    )
    prepare_task_data(task, root / "prepared")
    return task, root / "prepared"


def _method(kind: str) -> MethodSpec:
    extra = {"lora": {"r": 4, "alpha": 8}} if kind == "lora" else {}
    return MethodSpec.from_dict(
        kind,
        {
            "type": kind,
            "learning_rate": 1e-3,
            "batch_size": 8,
            "max_steps": 5,
            "logging_steps": 1,
            "warmup_ratio": 0.0,
            **extra,
        },
    )


def _train(
    tiny_model, task_data, root: Path, kind: str, capture: bool, spec: S.RepresentationSpec = SPEC
) -> list[float]:
    from tunetrace.training.loop import train_run

    task, data_dir = task_data
    callbacks = (
        [R.representation_callback(tiny_model, task, spec, data_dir, root / "reps", f"{kind}/tiny/seed0")]
        if capture
        else []
    )
    train_run(tiny_model, task, _method(kind), seed=0, data_dir=data_dir, run_dir=root / "run", callbacks=callbacks)
    records = [json.loads(line) for line in (root / "run" / A.TRAIN_LOG).read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


@pytest.fixture(scope="module")
def full_run(tiny_model, task_data, tmp_path_factory) -> tuple[Path, list[float]]:
    root = tmp_path_factory.mktemp("full_with")
    return root, _train(tiny_model, task_data, root, "full", capture=True)


@pytest.fixture(scope="module")
def base_dir(tiny_model, task_data, tmp_path_factory) -> Path:
    task, data_dir = task_data
    out = tmp_path_factory.mktemp("base") / "step_000000"
    extract_base_representations(tiny_model, task, SPEC, data_dir, out)
    return out


def _layer_file(step_dir: Path, index: int = 1) -> Path:
    return step_dir / S.layer_file_name(index)


def test_training_losses_identical_with_and_without_extraction(tiny_model, task_data, full_run, tmp_path):
    """Same seed with and without the capture callback gives bit-identical losses."""
    _, with_capture = full_run
    without = _train(tiny_model, task_data, tmp_path, "full", capture=False)
    assert len(with_capture) >= 5
    assert with_capture == without


def test_run_has_step_dirs_at_interval_and_final(full_run):
    """every_steps=2 over 5 steps gives steps 0, 2, 4 and the final 5."""
    root, _ = full_run
    assert [step for step, _ in S.list_steps(root / "reps")] == [0, 2, 4, 5]


def test_run_json_says_what_the_captures_inside_the_loop_cost(full_run):
    """Steps 0, 2 and 4 are captured inside the Trainer's timed loop (the final step after it): run.json counts
    them, their seconds, and the samples/s the loop had without them."""
    root, _ = full_run
    run = json.loads((root / "run" / A.RUN_METADATA).read_text())
    captures = run["representation_captures_in_loop"]
    assert captures["captures"] == 3 and captures["seconds"] > 0
    assert captures["train_samples_per_second_without"] > run["train_samples_per_second"]


def test_a_last_step_on_the_interval_is_captured_after_the_loop(tiny_model, task_data, tmp_path):
    """every_steps 5 over 5 steps: step 5 is the interval's and the last; it is captured once, after the timed
    loop (run.json counts no capture inside it), with the model the loop ended with."""
    spec = dataclasses.replace(SPEC, every_steps=5, capture_step0=False)
    _train(tiny_model, task_data, tmp_path, "full", capture=True, spec=spec)
    assert [step for step, _ in S.list_steps(tmp_path / "reps")] == [5]
    run = json.loads((tmp_path / "run" / A.RUN_METADATA).read_text())
    assert run["representation_captures_in_loop"]["captures"] == 0


def test_by_default_step_zero_is_left_to_the_base(tiny_model, task_data, base_dir, tmp_path):
    """The schema default (capture_step0 false) captures the interval and final steps only, and the drift
    table takes the base extraction as step 0 (similarity exactly 1), then the run's own steps."""
    from tunetrace.analysis.drift import drift_table

    spec = S.RepresentationSpec.from_dict({"every_steps": 2, "probe_size": 12, "batch_size": 8})
    assert spec.capture_step0 is False
    _train(tiny_model, task_data, tmp_path, "full", capture=True, spec=spec)
    assert [step for step, _ in S.list_steps(tmp_path / "reps")] == [2, 4, 5]
    table = drift_table(base_dir, tmp_path / "reps", {"method": "full", "task": "tiny", "seed": 0})
    assert sorted(table["step"].unique()) == [0, 2, 4, 5] and len(table) == 4 * 3
    step0 = table[table["step"] == 0]
    assert np.allclose(step0["cka"], 1.0) and np.allclose(step0["cosine"], 1.0)
    assert (table[table["step"] == 5]["cka"] < 1.0 - 1e-6).any()  # the trained model moved


def test_bad_layer_selection_stops_before_the_first_step(tiny_model, task_data, tmp_path):
    """With step 0 left to the base, a layer index past the last block still stops the run when training
    begins (on_train_begin checks it against the model's config), before any optimiser step or checkpoint."""
    spec = S.RepresentationSpec.from_dict({"every_steps": 2, "probe_size": 12, "batch_size": 8, "layers": [0, 5]})
    with pytest.raises(ValueError, match=r"representations.layers: indices \[5\] out of range.*layers 0..2"):
        _train(tiny_model, task_data, tmp_path, "full", capture=True, spec=spec)
    assert not (tmp_path / "run" / A.TRAIN_LOG).exists() or "loss" not in (tmp_path / "run" / A.TRAIN_LOG).read_text()
    assert not list((tmp_path / "run").glob("**/checkpoint-*"))


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_step_zero_equals_base(tiny_model, task_data, base_dir, tmp_path, kind):
    """Step 0 of a run (full or LoRA) holds exactly the base representations."""
    root = tmp_path
    _train(tiny_model, task_data, root, kind, capture=True)
    _, base_layers, _ = S.load_step(base_dir)
    meta, step0, _ = S.load_step(root / "reps" / "step_000000")
    assert sorted(step0) == sorted(base_layers) == [0, 1, 2]
    for index in base_layers:
        np.testing.assert_array_equal(step0[index], base_layers[index])
    assert meta["step"] == 0


def test_metadata_describes_every_file(base_dir):
    """Metadata lists each layer with name, shape, dtype and the file's sha256, and the probe hash."""
    meta = json.loads((base_dir / S.METADATA).read_text())
    assert [e["name"] for e in meta["layers"]] == ["embeddings", "block_0", "block_1"]
    for entry in meta["layers"]:
        assert entry["shape"] == [12, 32] and entry["dtype"] == "float16"
        assert entry["sha256"] == sha256_file(base_dir / entry["file"])
    assert meta["probe"]["hash"] == R.probe_hash(meta["probe"]["ids"]) and meta["probe"]["size"] == 12
    assert meta["pooling"] == "mean" and meta["step"] == 0 and meta["model"]


def test_probe_selection_ignores_file_order():
    """A shuffled eval split gives the same probe ids and hash."""
    frame = pd.DataFrame({A.COL_ID: [f"e{i:03d}" for i in range(30)], A.COL_TEXT: ["x"] * 30})
    shuffled = frame.sample(frac=1.0, random_state=3)
    first, second = R.select_probe(frame, 10), R.select_probe(shuffled, 10)
    assert first[A.COL_ID].tolist() == second[A.COL_ID].tolist() == [f"e{i:03d}" for i in range(10)]


def test_failed_write_leaves_no_step_dir(tmp_path, monkeypatch):
    """An error during a step write leaves neither the step directory nor a temporary sibling."""

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(S, "write_json", broken)
    with pytest.raises(OSError):
        S.write_step(tmp_path / "step_000010", {0: torch.zeros(3, 4)}, None, {"step": 10})
    assert list(tmp_path.iterdir()) == []


def test_truncated_layer_file_is_named(base_dir, tmp_path):
    """A truncated layer file raises an error naming that file."""
    import shutil

    copy = tmp_path / "step_000000"
    shutil.copytree(base_dir, copy)
    path = _layer_file(copy)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(S.RepresentationError, match=str(path)):
        S.load_step(copy)


def test_missing_layer_file_is_named(base_dir, tmp_path):
    """A deleted layer file raises an error naming that file."""
    import shutil

    copy = tmp_path / "step_000000"
    shutil.copytree(base_dir, copy)
    _layer_file(copy, 2).unlink()
    with pytest.raises(S.RepresentationError, match="layer_2.safetensors: missing"):
        S.load_step(copy)


def test_mean_and_last_pooling_skip_padding():
    """Mean averages only real tokens; last takes the last real token."""
    hidden = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert R.pool_hidden(hidden, mask, "mean").flatten().tolist() == [2.0, 4.0]
    assert R.pool_hidden(hidden, mask, "last").flatten().tolist() == [3.0, 6.0]
    assert R.pool_hidden(hidden, mask, "first").flatten().tolist() == [1.0, 2.0]
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert R.pool_hidden(hidden, left, "last").flatten().tolist() == [100.0, 6.0]


def test_token_level_pooling_stores_mask(tiny_model, task_data, tmp_path):
    """pooling none stores (examples, tokens, dim) and the attention mask, checked on load."""
    from tunetrace.models.loading import load_classifier, load_tokenizer

    task, data_dir = task_data
    spec = S.RepresentationSpec.from_dict({"probe_size": 5, "pooling": "none", "layers": [0, 2], "dtype": "fp32"})
    probe = R.build_probe(pd.read_parquet(data_dir / A.EVAL_SPLIT), load_tokenizer(tiny_model), task, spec)
    R.capture_step(load_classifier(tiny_model, task.label_names), probe, spec, tmp_path / "step_000000", {"step": 0})
    meta, layers, mask = S.load_step(tmp_path / "step_000000")
    assert sorted(layers) == [0, 2]
    assert layers[2].shape[:2] == mask.shape and layers[2].shape[0] == 5 and layers[2].dtype == np.float32
    assert meta["attention_mask"]["file"] == S.MASK_FILE


# ---------------------------------------------------------------- length-sorted batches


def _varied_lengths(frame: pd.DataFrame) -> pd.DataFrame:
    """The eval rows with texts of very different lengths, longest first by id (so sorting must reorder)."""
    frame = frame.copy()
    frame[A.COL_TEXT] = [" ".join([text] * (1 + (len(frame) - i) % 5)) for i, text in enumerate(frame[A.COL_TEXT])]
    return frame


def test_pooled_probe_batches_by_length_and_keeps_id_order(tiny_model, task_data):
    """Pooled captures forward the probe shortest first; each stored row is still the example of its id, equal to
    that example's forward pass on its own (no padding), and padding shrinks."""
    from tunetrace.models.loading import load_classifier, load_tokenizer

    task, data_dir = task_data
    frame = _varied_lengths(pd.read_parquet(data_dir / A.EVAL_SPLIT))
    tokenizer, model = load_tokenizer(tiny_model), load_classifier(tiny_model, task.label_names).eval()
    spec = S.RepresentationSpec.from_dict({"probe_size": 16, "batch_size": 4, "dtype": "fp32"})
    probe = R.build_probe(frame, tokenizer, task, spec)
    assert sorted(probe.order) == list(range(16)) and probe.order != list(range(16))
    widths = [batch["input_ids"].shape[1] for batch in probe.batches]
    assert widths == sorted(widths)
    unsorted = R.build_probe(
        frame, tokenizer, task, S.RepresentationSpec.from_dict({"probe_size": 16, "batch_size": 4, "pooling": "none"})
    )
    assert sum(b["input_ids"].numel() for b in probe.batches) < sum(b["input_ids"].numel() for b in unsorted.batches)

    layers, _ = R.extract(model, probe, spec)
    rows = R.select_probe(frame, 16)
    assert probe.ids == rows[A.COL_ID].astype(str).tolist()
    with torch.no_grad():
        for position, text in enumerate(rows[A.COL_TEXT]):
            alone = tokenizer([text], truncation=True, max_length=task.max_length, return_tensors="pt")
            hidden = model(**alone, output_hidden_states=True).hidden_states
            for layer, stored in layers.items():
                expected = R.pool_hidden(hidden[layer], alone["attention_mask"], "mean")[0]
                torch.testing.assert_close(stored[position], expected, atol=1e-5, rtol=1e-4)


def test_predict_logits_batches_by_length_and_returns_dataset_order(tiny_model, task_data):
    """predict_logits forwards shortest first and returns each example's logits at its own index, equal to its
    forward pass on its own."""
    from tunetrace.models.loading import load_classifier, load_tokenizer
    from tunetrace.tasks.encoding import encode_classification, predict_logits

    task, data_dir = task_data
    frame = _varied_lengths(pd.read_parquet(data_dir / A.EVAL_SPLIT))
    tokenizer, model = load_tokenizer(tiny_model), load_classifier(tiny_model, task.label_names)
    dataset, _ = encode_classification(frame, tokenizer, task.max_length)
    lengths = [len(ids) for ids in dataset.encodings["input_ids"]]
    assert lengths != sorted(lengths)
    logits = predict_logits(model, dataset, tokenizer, batch_size=4)
    with torch.no_grad():
        alone = torch.cat([model(input_ids=torch.tensor([ids])).logits for ids in dataset.encodings["input_ids"]])
    torch.testing.assert_close(logits, alone, atol=1e-5, rtol=1e-4)
