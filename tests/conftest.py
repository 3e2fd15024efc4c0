"""Shared fixtures: the repository's library on sys.path, tiny data, a tiny workflow runner."""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "pkg"))

POSITIVE = [
    "a wonderful {x}, I loved every minute",
    "great {x}, would recommend it to anyone",
    "the {x} was excellent and well made",
    "really enjoyed this {x}, superb",
]
NEGATIVE = [
    "a terrible {x}, I hated every minute",
    "awful {x}, would not recommend it to anyone",
    "the {x} was dreadful and badly made",
    "really disliked this {x}, boring",
]
THINGS = {"films": "movie", "books": "novel", "restaurants": "meal", "electronics": "phone"}


def write_sentiment_csv(path: Path, rows: int, seed: int = 0) -> Path:
    """A small, balanced, easy sentiment CSV with id, text, label, domain columns."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label", "domain"])
        for i in range(rows):
            domain = list(THINGS)[i % 4]
            positive = (i // 4) % 2 == 0
            text = rng.choice(POSITIVE if positive else NEGATIVE).format(x=THINGS[domain])
            writer.writerow([f"{path.stem}-{i:04d}", f"{text} ({i})", "positive" if positive else "negative", domain])
    return path


def tiny_config(data_dir: str = "data") -> dict[str, Any]:
    """A config small enough for a workflow test: two methods, one seed, a few steps."""
    return {
        "model": {"name_or_path": "embedded:all-MiniLM-L6-v2"},
        "tasks": {
            "tiny": {
                "source": {"train": f"{data_dir}/train.csv", "eval": f"{data_dir}/eval.csv"},
                "labels": ["negative", "positive"],
                "group_field": "domain",
                "id_field": "id",
                "max_length": 32,
            }
        },
        "methods": {
            "full": {
                "type": "full",
                "learning_rate": 5e-5,
                "batch_size": 8,
                "max_steps": 4,
                "save_every_steps": 2,
                "logging_steps": 1,
            },
            "lora_r4": {
                "type": "lora",
                "learning_rate": 1e-3,
                "batch_size": 8,
                "max_steps": 4,
                "save_every_steps": 2,
                "logging_steps": 1,
                "lora": {"r": 4, "alpha": 8},
            },
        },
        "seeds": [0],
        "evaluation": {"bootstrap_samples": 50, "batch_size": 32},
        "tracking": {"wandb_mode": "disabled"},
    }


class Workflow:
    """A tiny study in a temporary directory, driven by the real snakemake CLI."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        self.config = config
        write_sentiment_csv(root / "data" / "train.csv", 48, seed=1)
        write_sentiment_csv(root / "data" / "eval.csv", 24, seed=2)
        self.write_config()

    def write_config(self) -> None:
        (self.root / "config.yaml").write_text(yaml.safe_dump(self.config, sort_keys=True))

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO / "pkg"), "WANDB_MODE": "disabled"}
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(self.root),
            "--configfile",
            str(self.root / "config.yaml"),
            "--cores",
            "2",
            "--workflow-profile",
            "none",
            *args,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=self.root)
        if check and proc.returncode != 0:
            raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
        return proc

    def planned_jobs(self, *targets: str) -> dict[str, int]:
        """Rule name -> job count of a dry run (empty when nothing is to do)."""
        proc = self.run("--dry-run", *targets, "--quiet", "rules")
        counts: dict[str, int] = {}
        started = False
        for line in (proc.stdout + proc.stderr).splitlines():
            parts = line.split()
            if parts[:2] == ["job", "count"]:
                started = True
                continue
            if started and len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
                counts[parts[0]] = int(parts[1])
        return counts


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory):
    """TUNETRACE_CACHE for the session (tests and the snakemake jobs they start): the model layouts check_model
    caches (models.layout) and tiny decoders go to a temporary directory, never into the user's ~/.cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("TUNETRACE_CACHE", str(tmp_path_factory.getbasetemp() / "tunetrace-cache"))
    yield
    patch.undo()


@pytest.fixture
def make_workflow(tmp_path: Path) -> Callable[..., Workflow]:
    """Factory: make_workflow(config=None) -> Workflow in a fresh temporary directory."""

    def factory(config: dict[str, Any] | None = None) -> Workflow:
        return Workflow(tmp_path, config or tiny_config())

    return factory


@pytest.fixture(scope="session")
def finished_workflow(tmp_path_factory: pytest.TempPathFactory) -> Workflow:
    """One tiny study run to completion, shared by the read-only artifact tests."""
    flow = Workflow(tmp_path_factory.mktemp("study"), tiny_config())
    flow.run()  # the default target: everything `rule all` asks for
    return flow


@pytest.fixture(scope="module")
def tiny_decoder_cache(tmp_path_factory: pytest.TempPathFactory):
    """TUNETRACE_CACHE for the module (and the snakemake jobs it starts): tiny decoders (`tiny:llama`,
    `tiny:gpt2`) are built once per test session into a temporary cache, never into ~/.cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("TUNETRACE_CACHE", str(tmp_path_factory.getbasetemp() / "tiny-models"))
    yield
    patch.undo()
