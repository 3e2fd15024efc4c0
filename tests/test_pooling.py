"""models.pooling: what task.pooling resolves to for a checkpoint, from its JSON files alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunetrace.models.pooling import POOLING_FIELD, declared_pooling, resolve_pooling

PKG_ROOT = Path(__file__).resolve().parents[1] / "pkg"
MINILM = "embedded:all-MiniLM-L6-v2"


def _checkpoint(
    root: Path, model_type: str = "bert", modes: dict[str, bool] | None = None, saved: str | None = None
) -> str:
    """A model directory with config.json and, when `modes` is given, a sentence-transformers Pooling module."""
    root.mkdir(parents=True, exist_ok=True)
    config = {"model_type": model_type, **({POOLING_FIELD: saved} if saved else {})}
    (root / "config.json").write_text(json.dumps(config), encoding="utf-8")
    if modes is not None:
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        (root / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
        (root / "1_Pooling").mkdir()
        (root / "1_Pooling" / "config.json").write_text(json.dumps(modes), encoding="utf-8")
    return str(root)


MEAN = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False}


def test_auto_resolves_to_mean_for_the_embedded_model():
    """The embedded MiniLM declares mean pooling (1_Pooling/config.json), so auto gives mean."""
    assert resolve_pooling("auto", MINILM) == "mean"


def test_auto_resolves_to_cls_without_a_pooling_module(tmp_path):
    """A plain transformers checkpoint (no modules.json / 1_Pooling) keeps the model's own cls head."""
    assert resolve_pooling("auto", _checkpoint(tmp_path / "plain")) == "cls"


def test_declared_pooling_reads_the_single_mode(tmp_path):
    """cls token -> cls, mean tokens -> mean, mean and max together (a concatenation) or max alone -> None."""
    cls_only = {**MEAN, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}
    assert declared_pooling(_checkpoint(tmp_path / "c", modes=cls_only)) == "cls"
    assert declared_pooling(_checkpoint(tmp_path / "m", modes=MEAN)) == "mean"
    assert declared_pooling(_checkpoint(tmp_path / "mm", modes={**MEAN, "pooling_mode_max_tokens": True})) is None
    assert (
        declared_pooling(
            _checkpoint(
                tmp_path / "x", modes={**MEAN, "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": True}
            )
        )
        is None
    )


def test_auto_keeps_cls_where_no_mean_head_exists(tmp_path):
    """A mean-pooling checkpoint of an architecture without a mean-pooled head falls back to cls."""
    assert resolve_pooling("auto", _checkpoint(tmp_path / "mpnet", model_type="mpnet", modes=MEAN)) == "cls"


def test_explicit_pooling_overrides_the_declared_one(tmp_path):
    """task.pooling cls on a mean-declaring checkpoint gives cls (the comparison in bench/ needs both)."""
    assert resolve_pooling("cls", _checkpoint(tmp_path / "st", modes=MEAN)) == "cls"


def test_saved_pooling_wins_over_auto(tmp_path):
    """A saved run's config.json field decides, whatever the directory's files declare."""
    assert resolve_pooling("auto", _checkpoint(tmp_path / "final", saved="mean")) == "mean"


def test_pooling_conflicting_with_the_saved_model_is_refused(tmp_path):
    """Reloading a mean-trained model with task.pooling cls would read an untrained head: refused, naming the key."""
    with pytest.raises(ValueError, match=r"task\.pooling: 'cls'.*trained with 'mean'"):
        resolve_pooling("cls", _checkpoint(tmp_path / "final", saved="mean"))


def test_mean_is_refused_for_an_architecture_without_a_mean_head(tmp_path):
    """task.pooling mean on a model type models.heads does not cover fails before any weights load."""
    with pytest.raises(ValueError, match=r"task\.pooling: mean is implemented for model types \['bert'\]"):
        resolve_pooling("mean", _checkpoint(tmp_path / "gpt2", model_type="gpt2"))


def test_mean_model_types_match_the_heads():
    """The torch-free list of architectures with a mean head is the heads module's table."""
    from tunetrace.models.heads import MEAN_POOLED_HEADS
    from tunetrace.models.pooling import MEAN_POOLING_MODEL_TYPES

    assert sorted(MEAN_POOLING_MODEL_TYPES) == sorted(MEAN_POOLED_HEADS)


def test_resolving_auto_imports_no_torch():
    """auto is answered from JSON files: resolving it for the embedded model leaves torch and transformers unloaded."""
    script = (
        "import json, sys\nfrom tunetrace.models.pooling import resolve_pooling\n"
        f"assert resolve_pooling('auto', {MINILM!r}) == 'mean'\nprint(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(PKG_ROOT)}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    heavy = [m for m in json.loads(proc.stdout.splitlines()[-1]) if m.split(".")[0] in {"torch", "transformers"}]
    assert not heavy, heavy[:5]
