"""Checkpoint verification before resume: checksums and safetensors headers, set-aside, fallback."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from conftest import write_sentiment_csv
from scale_helpers import load_weights, make_tiny_bert, tiny_bert_config
from tunetrace.artifacts import CHECKSUMS
from tunetrace.config import MethodSpec, ModelSpec, TaskSpec, validate_config
from tunetrace.stages.prepare import prepare_task_data
from tunetrace.training import checkpoints as C
from tunetrace.training.loop import train_run


def _checkpoint(root: Path, step: int) -> Path:
    """A complete checkpoint as the Trainer and our callbacks leave it: weights, state, checksums, marker."""
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    save_file({"w": torch.arange(64, dtype=torch.float32) * step}, str(path / "model.safetensors"))
    (path / "optimizer.pt").write_bytes(bytes(range(200)))
    (path / C.TRAINER_STATE).write_text(json.dumps({"global_step": step}))
    C.write_checksums(path)
    C.write_marker(path, {"step": step})
    return path


def _truncate(path: Path, keep: int = 40) -> None:
    path.write_bytes(path.read_bytes()[:-keep])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _state(tmp_path: Path, steps: tuple[int, ...], fingerprint: str = "f") -> Path:
    state = tmp_path / "state"
    for step in steps:
        _checkpoint(state, step)
    C.write_json(state / C.FINGERPRINT, {"fingerprint": fingerprint})
    return state


def test_finisher_completes_a_checkpoint_off_the_training_thread(tmp_path: Path) -> None:
    """The finisher writes checksums, then the marker; until wait() returns the checkpoint may be incomplete, after
    it the checkpoint verifies. Starting the next one first waits for this one."""
    path = _checkpoint(tmp_path, 2)
    (path / C.COMPLETE_MARKER).unlink()
    (path / CHECKSUMS).unlink()
    finisher = C.Finisher()
    finisher.start(path, {"step": 2, "loss_sum": 1.5})
    second = tmp_path / "checkpoint-4"
    second.mkdir()
    (second / C.TRAINER_STATE).write_text(json.dumps({"global_step": 4}))
    finisher.start(second, {"step": 4})  # joins the first
    assert C.is_complete(path) and C.read_marker(path) == {"step": 2, "loss_sum": 1.5}
    assert C.checkpoint_problem(path) is None and "model.safetensors" in json.loads((path / CHECKSUMS).read_text())
    finisher.wait()
    assert C.is_complete(second) and sorted(json.loads((second / CHECKSUMS).read_text())) == [C.TRAINER_STATE]


def test_finisher_error_is_raised_on_the_training_thread(tmp_path: Path) -> None:
    """A checkpoint that cannot be completed (here: it was deleted) fails training at the next wait, and no
    marker-only directory is left behind."""
    finisher = C.Finisher()
    finisher.start(tmp_path / "checkpoint-9", {"step": 9})
    with pytest.raises(FileNotFoundError, match="gone before it was completed"):
        finisher.wait()
    finisher.wait()  # the error is raised once
    assert not (tmp_path / "checkpoint-9").exists()


def test_intact_checkpoint_verifies(tmp_path: Path) -> None:
    """A checkpoint whose files match its checksums and whose headers parse has no problem."""
    assert C.checkpoint_problem(_checkpoint(tmp_path, 2)) is None


def test_truncated_safetensors_is_caught_by_its_header(tmp_path: Path) -> None:
    """Cutting the end off a safetensors file is seen from its header alone (no checksums needed)."""
    path = _checkpoint(tmp_path, 2) / "model.safetensors"
    _truncate(path)
    assert "truncated" in C.safetensors_problem(path)
    (path.parent / "checksums.json").unlink()
    assert "model.safetensors" in C.checkpoint_problem(path.parent)


def test_changed_file_is_caught_by_its_checksum(tmp_path: Path) -> None:
    """A file whose bytes changed after the save fails against checksums.json, naming the file."""
    checkpoint = _checkpoint(tmp_path, 2)
    _flip_byte(checkpoint / "optimizer.pt")
    assert C.checkpoint_problem(checkpoint).startswith("optimizer.pt: sha256 differs")


def test_damaged_newest_checkpoint_is_set_aside_and_the_previous_one_resumed(tmp_path: Path) -> None:
    """The newest checkpoint fails verification: it is moved (not deleted) to set_aside/ and the one before
    it is the resume point; the set-aside list says which and why."""
    state = _state(tmp_path, (2, 4))
    _truncate(state / "checkpoint-4" / "model.safetensors")
    assert C.prepare_state_dir(state, "f") == state / "checkpoint-2"
    assert not (state / "checkpoint-4").exists()
    [moved] = (state / C.SET_ASIDE_DIR).iterdir()
    assert moved.name.startswith("checkpoint-4.corrupt-") and (moved / "optimizer.pt").is_file()
    [entry] = C.set_aside_checkpoints(state, "f")
    assert entry["checkpoint"] == "checkpoint-4" and "model.safetensors" in entry["problem"]
    assert C.set_aside_checkpoints(state, "other inputs") == []


def test_no_checkpoint_verifies_means_a_logged_fresh_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Every complete checkpoint is damaged: all are set aside, none is resumed from, and the log says so."""
    state = _state(tmp_path, (2, 4))
    _flip_byte(state / "checkpoint-2" / "optimizer.pt")
    _truncate(state / "checkpoint-4" / "model.safetensors")
    with caplog.at_level(logging.WARNING, logger="tunetrace.training.checkpoints"):
        assert C.prepare_state_dir(state, "f") is None
    assert "training starts from scratch" in caplog.text
    assert [e["checkpoint"] for e in C.set_aside_checkpoints(state)] == ["checkpoint-4", "checkpoint-2"]


def test_wiping_other_inputs_state_keeps_the_lock_and_set_aside_checkpoints(tmp_path: Path) -> None:
    """A fingerprint change wipes the training state but not the held lock file nor set-aside evidence."""
    state = _state(tmp_path, (2,), fingerprint="old")
    C.set_aside(_checkpoint(state, 4), "damaged", "old")
    (state / C.LOCK_FILE).write_text("")
    assert C.prepare_state_dir(state, "new") is None
    assert sorted(p.name for p in state.iterdir()) == [C.FINGERPRINT, C.LOCK_FILE, C.SET_ASIDE_DIR]


class _Interrupt(Exception):
    """Stands for a kill right after a checkpoint was completed."""


def _interrupt_after(step: int) -> Any:
    from transformers import TrainerCallback

    class InterruptCallback(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.global_step == step:  # runs after the marker callback: checkpoint-{step} is complete
                raise _Interrupt(step)

    return InterruptCallback()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Prepared data and specs of an 8-step tiny-BERT run (checkpoints every 2 steps, 2 kept), and the final
    weights of that run trained without interruption."""
    root = tmp_path_factory.mktemp("resume")
    config = validate_config(tiny_bert_config(make_tiny_bert(root / "bert"), steps=8, save_every=2))
    task = config["tasks"]["tiny"]
    task["source"] = {
        "train": str(write_sentiment_csv(root / "data" / "train.csv", 48, seed=1)),
        "eval": str(write_sentiment_csv(root / "data" / "eval.csv", 24, seed=2)),
    }
    specs = (
        ModelSpec.from_dict(config["model"]),
        TaskSpec.from_dict("tiny", task),
        MethodSpec.from_dict("full", config["methods"]["full"]),
    )
    prepare_task_data(specs[1], root / "prepared")
    run = {"specs": specs, "data": root / "prepared"}
    _train(run, root / "straight")
    run["straight"] = load_weights(root / "straight" / "run" / "final")
    return run


def _train(run: dict[str, Any], root: Path, callbacks: list[Any] | None = None) -> dict[str, Any]:
    return train_run(*run["specs"], 0, run["data"], root / "run", resume_dir=root / "state", callbacks=callbacks)


def _assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    assert all(torch.equal(a[k], b[k]) for k in a), "final weights differ from the uninterrupted run"


def test_truncated_last_checkpoint_resumes_from_the_previous_one_bitwise(tiny_run: dict, tmp_path: Path) -> None:
    """Killed after checkpoint 6, whose weights are then truncated: the rerun sets it aside, resumes from 4,
    and ends with exactly the uninterrupted run's weights; run.json says where it resumed and what was set aside."""
    with pytest.raises(_Interrupt):
        _train(tiny_run, tmp_path, [_interrupt_after(6)])
    _truncate(tmp_path / "state" / "checkpoint-6" / "model.safetensors", keep=1000)
    metadata = _train(tiny_run, tmp_path)
    assert metadata["resumed_from_step"] == 4
    assert [e["checkpoint"] for e in metadata["set_aside_checkpoints"]] == ["checkpoint-6"]
    _assert_bitwise_equal(load_weights(tmp_path / "run" / "final"), tiny_run["straight"])
    assert [p.parent.name for p in (tmp_path / "state").glob("*/*.corrupt-*")] == ["set_aside"]


def test_no_valid_checkpoint_trains_from_scratch_to_the_same_weights(tiny_run: dict, tmp_path: Path) -> None:
    """Both kept checkpoints damaged: the rerun starts fresh (resumed_from_step null, both listed as set
    aside) and still ends bitwise equal to the uninterrupted run."""
    with pytest.raises(_Interrupt):
        _train(tiny_run, tmp_path, [_interrupt_after(4)])
    for step in (2, 4):
        _flip_byte(tmp_path / "state" / f"checkpoint-{step}" / "optimizer.pt")
    metadata = _train(tiny_run, tmp_path)
    assert metadata["resumed_from_step"] is None
    assert sorted(e["checkpoint"] for e in metadata["set_aside_checkpoints"]) == ["checkpoint-2", "checkpoint-4"]
    _assert_bitwise_equal(load_weights(tmp_path / "run" / "final"), tiny_run["straight"])
