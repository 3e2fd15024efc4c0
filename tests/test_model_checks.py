"""stages.check_model.check_model and the meta-device skeletons it reads (the refusals are in test_bad_inputs.py)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tunetrace.config import LoraSpec, ModelSpec, TaskSpec
from tunetrace.models import layout as layout_module
from tunetrace.models.layout import (
    LORA_TARGETS,
    ModelLayout,
    cache_file,
    layout_key,
    linear_layer_names,
    read_cached,
    write_cached,
)
from tunetrace.models.names import ModelError, resolve_model_path
from tunetrace.registry import task_type_names
from tunetrace.stages.check_model import check_model
from tunetrace.tasks.dispatch import get_task_type

MINILM = ModelSpec.from_dict({})
# the model each registered type is checked with: an encoder for the head types, the tiny decoder otherwise
ENCODER_TYPES = ("sequence_classification", "extractive_qa")


def test_check_model_writes_the_resolved_lora_targets(tmp_path: Path) -> None:
    """The summary names the model, the task type's model class, and each LoRA method's targets: the
    architecture default for null, the configured ones otherwise, with the modules they match."""
    task = TaskSpec.from_dict("tiny", {"source": {}, "labels": ["a", "b", "c"]})
    lora = {"lora_r4": LoraSpec.from_dict({}), "lora_qkv": LoraSpec.from_dict({"target_modules": ["query", "key"]})}
    summary = check_model(MINILM, task, lora, tmp_path / "model.json")
    assert json.loads((tmp_path / "model.json").read_text()) == summary
    assert summary["model"]["model_type"] == "bert" and summary["model"]["num_hidden_layers"] == 6
    assert summary["task"]["model_class"] == "MeanPooledBertForSequenceClassification"  # MiniLM's pooling: mean
    assert summary["lora"]["lora_r4"] == {
        "target_modules": ["query", "value"],
        "from": "architecture default",
        "modules": 12,
    }
    assert summary["lora"]["lora_qkv"]["from"] == "config" and summary["lora"]["lora_qkv"]["modules"] == 12


@pytest.mark.usefixtures("tiny_decoder_cache")
@pytest.mark.parametrize("type_name", task_type_names())
def test_every_task_type_builds_a_meta_skeleton(type_name: str) -> None:
    """Every registered type's model_skeleton is the class its load_model returns, built on the meta device (no
    weights held), with the linear layers its architecture's default LoRA targets name."""
    model = MINILM if type_name in ENCODER_TYPES else ModelSpec.from_dict({"name_or_path": "tiny:llama"})
    task = TaskSpec.from_dict("t", {"type": type_name, "source": {}, "options": ["a", "b"]})
    task_type = get_task_type(type_name)
    skeleton = task_type.model_skeleton(model, task)
    assert type(skeleton) is type(task_type.load_model(model, task))
    assert {p.device.type for p in skeleton.parameters()} == {"meta"}
    assert set(LORA_TARGETS[skeleton.config.model_type]) <= set(linear_layer_names(ModelLayout.of(skeleton)))


# --- the per-machine cache of model layouts (models.layout) ---------------------------------------------------

SENTIMENT = TaskSpec.from_dict("tiny", {"source": {}, "labels": ["a", "b"]})
LORA = {"lora_r8": LoraSpec.from_dict({})}


def _cached_entry() -> Path:
    key = layout_key(SENTIMENT.type, MINILM, SENTIMENT)
    assert key is not None
    return cache_file(key)


def test_a_second_check_reads_the_cached_layout_without_torch(tmp_path: Path) -> None:
    """The first check builds the layout and caches it; a fresh process then checks the same model from the
    cache, without importing torch, and writes the same summary byte for byte."""
    check_model(MINILM, SENTIMENT, LORA, tmp_path / "built.json")
    assert _cached_entry().is_file()
    script = (
        "import sys, logging; logging.basicConfig(level=logging.INFO)\n"
        "from tunetrace.config import LoraSpec, ModelSpec, TaskSpec\n"
        "from tunetrace.stages.check_model import check_model\n"
        f"check_model(ModelSpec.from_dict({{}}), TaskSpec.from_dict('tiny', {{'source': {{}}, 'labels': "
        f"['a', 'b']}}), {{'lora_r8': LoraSpec.from_dict({{}})}}, {str(tmp_path / 'cached.json')!r})\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "torch imported: False" in proc.stdout
    assert "model layout read from the cache" in proc.stderr
    assert (tmp_path / "cached.json").read_bytes() == (tmp_path / "built.json").read_bytes()


@pytest.mark.parametrize("damage", ["not json {", '{"key": "another", "layout": {}}', "[]"])
def test_an_unreadable_cache_entry_is_rebuilt(tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    expected = check_model(MINILM, SENTIMENT, LORA, tmp_path / "first.json")
    _cached_entry().write_text(damage)
    with caplog.at_level(logging.INFO, logger="tunetrace"):
        assert check_model(MINILM, SENTIMENT, LORA, tmp_path / "second.json") == expected
    assert "ignoring the model layout cache entry" in caplog.text and "built on the meta device" in caplog.text
    assert json.loads(_cached_entry().read_text())["layout"]["model_class"] == expected["task"]["model_class"]


def test_a_forged_cache_entry_cannot_refuse_a_good_model(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An entry that says no layer can take LoRA (forged, or from a bug) is not believed: the refusal is checked
    on the built model, which accepts, and the entry is rewritten."""
    expected = check_model(MINILM, SENTIMENT, LORA, tmp_path / "first.json")
    entry = json.loads(_cached_entry().read_text())
    entry["layout"]["modules"] = [[name, cls, "other"] for name, cls, _ in entry["layout"]["modules"]]
    _cached_entry().write_text(json.dumps(entry))
    with caplog.at_level(logging.INFO, logger="tunetrace"):
        assert check_model(MINILM, SENTIMENT, LORA, tmp_path / "second.json") == expected
    assert "the cached model layout refuses" in caplog.text
    assert {kind for _, _, kind in json.loads(_cached_entry().read_text())["layout"]["modules"]} != {"other"}


def test_a_bad_target_is_refused_the_same_with_the_layout_cached(tmp_path: Path) -> None:
    bad = {"lora_bad": LoraSpec.from_dict({"target_modules": ["LayerNorm"]})}
    messages = []
    for attempt in ("cold", "cached"):
        with pytest.raises(ModelError) as err:
            check_model(MINILM, SENTIMENT, bad, tmp_path / f"{attempt}.json")
        messages.append(str(err.value))
        assert not (tmp_path / f"{attempt}.json").exists()
    assert _cached_entry().is_file()  # the layout was right; only the target was wrong
    assert messages[0] == messages[1]
    assert "methods.lora_bad.lora.target_modules" in messages[0] and "'LayerNorm' matches LayerNorm" in messages[0]


def test_the_layout_key_covers_what_the_layout_depends_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A different config.json (or any JSON file beside the weights), task or model setting is another key;
    remote code, a hub id and the switch turn the cache off."""
    model_dir = tmp_path / "model"
    shutil.copytree(resolve_model_path(MINILM.name_or_path), model_dir, ignore=shutil.ignore_patterns("*.safetensors"))
    local = ModelSpec.from_dict({"name_or_path": str(model_dir)})
    key = layout_key(SENTIMENT.type, local, SENTIMENT)
    assert key is not None and key == layout_key(SENTIMENT.type, local, SENTIMENT)
    three_labels = TaskSpec.from_dict("tiny", {"source": {}, "labels": ["a", "b", "c"]})
    assert layout_key(SENTIMENT.type, local, three_labels) != key
    assert (
        layout_key(
            SENTIMENT.type, ModelSpec.from_dict({"name_or_path": str(model_dir), "dtype": "bfloat16"}), SENTIMENT
        )
        != key
    )
    (model_dir / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    assert layout_key(SENTIMENT.type, local, SENTIMENT) != key
    assert (
        layout_key(
            SENTIMENT.type, ModelSpec.from_dict({"name_or_path": str(model_dir), "trust_remote_code": True}), SENTIMENT
        )
        is None
    )
    assert layout_key(SENTIMENT.type, ModelSpec.from_dict({"name_or_path": "someone/some-model"}), SENTIMENT) is None
    monkeypatch.setenv("TUNETRACE_MODEL_LAYOUT_CACHE", "off")
    assert layout_key(SENTIMENT.type, local, SENTIMENT) is None


def test_an_unwritable_cache_only_costs_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A cache directory that cannot be created (here: its parent is a file) is logged; the check still passes."""
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("TUNETRACE_CACHE", str(tmp_path / "a-file" / "cache"))
    with caplog.at_level(logging.WARNING, logger="tunetrace.models"):
        summary = check_model(MINILM, SENTIMENT, LORA, tmp_path / "check.json")
    assert summary["lora"]["lora_r8"]["target_modules"] == ["query", "value"]
    assert "cannot write the model layout cache entry" in caplog.text


def test_the_cache_keeps_the_most_recently_used_layouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every code edit is a new key, so the cache is pruned to CACHE_ENTRIES; a read counts as a use."""
    monkeypatch.setenv("TUNETRACE_CACHE", str(tmp_path))
    monkeypatch.setattr(layout_module, "CACHE_ENTRIES", 2)
    layout = ModelLayout("X", dict.fromkeys(layout_module.CONFIG_FACTS), 1, (("dense", "Linear", "linear"),))
    for age, key in enumerate(["older", "old"], start=1):
        write_cached(key, layout)
        os.utime(cache_file(key), ns=(age * 10**9, age * 10**9))  # written long ago, "older" first
    assert read_cached("older") == layout  # now the most recently used
    write_cached("new", layout)
    assert sorted(p.stem for p in cache_file("new").parent.glob("*.json")) == ["new", "older"]
