"""A finished study moved elsewhere: the study directory and the workflow checkout both copied to another
place, the audit passes there and the LoRA adapter and the merged model load there with plain PEFT and
transformers (the base found through the symbolic name the adapter records, resolved by tunetrace)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, Workflow
from test_rerun import copy_workflow

pytestmark = pytest.mark.workflow
RUN = "results/runs/lora_r4/tiny/seed0"
MERGED = "results/merged/lora_r4/tiny/seed0"


@pytest.fixture(scope="module")
def moved(finished_workflow: Workflow, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The finished study copied (mtimes kept) beside a copy of the checkout, both under new names."""
    base = tmp_path_factory.mktemp("elsewhere")
    copy_workflow(base / "checkout")
    shutil.copytree(finished_workflow.root, base / "moved-study", symlinks=True)
    return base


def text_files(root: Path) -> list[tuple[Path, str]]:
    """(path, text) of every file under results/ that decodes as text, except the hash cache."""
    found = []
    for path in sorted((root / "results").rglob("*")):
        if path.is_file() and path.name != ".lineage_hash_cache.json":
            try:
                found.append((path, path.read_text(encoding="utf-8")))
            except UnicodeDecodeError:
                continue  # weights, parquet, pickles
    return found


def test_records_name_no_path_of_the_first_machine(moved: Path, finished_workflow: Workflow) -> None:
    """No lineage record, run record, metrics, merge metadata, adapter config or model card holds the study's
    first directory, the repository checkout or the virtual environment."""
    files = text_files(moved / "moved-study")
    assert any(p.name == "adapter_config.json" for p, _ in files) and any(p.name == "README.md" for p, _ in files)
    old_places = (str(finished_workflow.root), str(REPO), sys.prefix)
    leaks = [(str(p), place) for p, text in files for place in old_places if place in text]
    assert leaks == []


def test_audit_passes_in_the_new_place(moved: Path) -> None:
    """`tunetrace audit` of the moved study, run from the moved checkout, verifies every node."""
    env = {**os.environ, "PYTHONPATH": str(moved / "checkout" / "pkg")}
    proc = subprocess.run(
        [sys.executable, "-m", "tunetrace.cli", "audit", "results/comparison.json", "--json"],
        capture_output=True,
        text=True,
        cwd=moved / "moved-study",
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    nodes = json.loads(proc.stdout)["nodes"]
    assert [p for p, n in nodes.items() if n["kind"] == "model"] == ["embedded:all-MiniLM-L6-v2"]


def test_adapter_and_merged_model_load_in_the_new_place(moved: Path) -> None:
    """The adapter loads with plain PEFT on the base its config names (resolved by tunetrace), the merged model
    with plain from_pretrained, and both give the same logits. The tiny study's MiniLM head mean-pools
    (task.pooling auto), so both load through that head's class, a transformers BertForSequenceClassification."""
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    from tunetrace.models.heads import MEAN_POOLED_HEADS
    from tunetrace.models.names import resolve_model_path

    study = moved / "moved-study"
    name = json.loads((study / RUN / "final" / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert name == "embedded:all-MiniLM-L6-v2"
    config = json.loads((study / MERGED / "config.json").read_text())
    assert config["tunetrace_pooling"] == "mean"
    head = MEAN_POOLED_HEADS[config["model_type"]]
    base = head.from_pretrained(resolve_model_path(name), num_labels=2)
    adapter = PeftModel.from_pretrained(base, str(study / RUN / "final")).eval()
    merged = head.from_pretrained(str(study / MERGED)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(study / MERGED))
    batch = tokenizer(["a wonderful movie, I loved it", "an awful meal"], return_tensors="pt", padding=True)
    with torch.no_grad():
        assert torch.allclose(adapter(**batch).logits, merged(**batch).logits, atol=1e-4)
