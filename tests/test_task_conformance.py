"""Task-type conformance matrix: every registered task type x {full, lora} through the generic steps.

In the spirit of PEFT's tuner test matrix: each entry of `tunetrace.registry.REGISTRY` gets a tiny task
(data files written here, a tiny model: the embedded MiniLM encoder for encoder types, `tiny:llama`
for decoder types) and goes through prepare -> base representations -> train (with representation
capture) -> evaluate -> [lora: merge + verify] -> drift, plus its baseline. Every artifact is checked
against the contract the generic steps and the report rely on. A new registry entry without a tiny
task here fails `test_every_registered_type_has_a_tiny_task`.

The pipeline of each (type, method) runs once per module (`Study` caches every stage, failures
included) and the tests below read its artifacts.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tunetrace import artifacts as A
from tunetrace import registry
from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec, validate_config
from tunetrace.tasks import dispatch
from tunetrace.tasks.base import TaskType

pytestmark = pytest.mark.usefixtures("tiny_decoder_cache")

MINILM = ModelSpec.from_dict({"name_or_path": "embedded:all-MiniLM-L6-v2"})
TINY_LLAMA = ModelSpec.from_dict({"name_or_path": "tiny:llama"})
METHODS = ("full", "lora")
SEED = 0
MAX_STEPS = 2
EVAL = EvalSpec.from_dict({"batch_size": 8, "bootstrap_samples": 20})
# Types whose `evaluate` returns no per-example table (none today). Every other type must write one row
# per eval example to predictions.parquet.
NO_PREDICTIONS: frozenset[str] = frozenset()
MERGE_QUANTITY_KEYS = {"value", "tolerance", "bound", "checked", "passed"}


# ---------------------------------------------------------------- tiny data, one writer per task type


def _sentiment_rows(n: int, offset: int) -> list[dict[str, str]]:
    good = ["a wonderful {x}, loved it", "great {x}, would recommend", "really enjoyed this {x}"]
    bad = ["a terrible {x}, hated it", "awful {x}, would not recommend", "really disliked this {x}"]
    things = ["movie", "novel"]
    rows = []
    for i in range(offset, offset + n):
        positive = i % 2 == 0
        text = (good if positive else bad)[i % 3].format(x=things[(i // 2) % 2])
        rows.append(
            {
                "id": f"s{i:03d}",
                "text": f"{text} ({i})",
                "label": "positive" if positive else "negative",
                "domain": things[(i // 2) % 2],
            }
        )
    return rows


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _labelled(root: Path) -> dict[str, str]:
    return {
        "train": str(_write_csv(root / "train.csv", _sentiment_rows(16, 0))),
        "eval": str(_write_csv(root / "eval.csv", _sentiment_rows(8, 100))),
    }


def sequence_classification(root: Path) -> tuple[dict[str, Any], ModelSpec]:
    return (
        {
            "type": "sequence_classification",
            "source": _labelled(root),
            "labels": ["negative", "positive"],
            "id_field": "id",
            "group_field": "domain",
            "max_length": 32,
            "primary_metric": "macro_f1",
        },
        MINILM,
    )


def generative_classification(root: Path) -> tuple[dict[str, Any], ModelSpec]:
    return (
        {
            "type": "generative_classification",
            "source": _labelled(root),
            "labels": ["negative", "positive"],
            "label_words": ["no", "yes"],
            "prompt_template": "{text}\nLABEL:",
            "id_field": "id",
            "group_field": "domain",
            "max_length": 32,
            "primary_metric": "f1",
        },
        TINY_LLAMA,
    )


def causal_lm(root: Path) -> tuple[dict[str, Any], ModelSpec]:
    rows = [
        {
            "id": f"q{i}",
            "prompt": f"add {i} and {i + 1}",
            "completion": f"the answer is {2 * i + 1}",
            "difficulty": "easy" if i % 2 else "hard",
        }
        for i in range(24)
    ]
    return (
        {
            "type": "causal_lm",
            "source": {"train": str(_write_jsonl(root / "sft.jsonl", rows)), "eval_fraction": 0.25},
            "id_field": "id",
            "group_field": "difficulty",
            "max_length": 32,
            "primary_metric": "perplexity",
        },
        TINY_LLAMA,
    )


def distribution(root: Path) -> tuple[dict[str, Any], ModelSpec]:
    rows = [
        {
            "id": f"d{i}",
            "text": f"question {i} about tax",
            "target": [0.6, 0.3, 0.1] if i % 2 else [0.1, 0.3, 0.6],
            "wave": "a" if i % 2 else "b",
        }
        for i in range(24)
    ]
    return (
        {
            "type": "distribution",
            "source": {"train": str(_write_jsonl(root / "dist.jsonl", rows)), "eval_fraction": 0.25},
            "id_field": "id",
            "group_field": "wave",
            "options": ["agree", "neutral", "disagree"],
            "max_length": 32,
            "primary_metric": "mae",
        },
        TINY_LLAMA,
    )


def _squad(path: Path, n: int, offset: int) -> Path:
    paragraphs = []
    for i in range(offset, offset + n):
        context = f"The city of Oslo{i} is the capital of Norway. Bergen{i} has much rain."
        paragraphs.append(
            {
                "context": context,
                "qas": [
                    {
                        "id": f"a{i}",
                        "question": "What is the capital of Norway?",
                        "is_impossible": False,
                        "answers": [{"text": f"Oslo{i}", "answer_start": context.index(f"Oslo{i}")}],
                    },
                    {"id": f"c{i}", "question": "Who founded Oslo?", "is_impossible": True, "answers": []},
                ],
            }
        )
    path.write_text(json.dumps({"version": "v2.0", "data": [{"title": "Norway", "paragraphs": paragraphs}]}))
    return path


def extractive_qa(root: Path) -> tuple[dict[str, Any], ModelSpec]:
    source = {
        "train": str(_squad(root / "train.json", 6, 0)),
        "eval": str(_squad(root / "eval.json", 4, 50)),
        "format": "squad",
    }
    return (
        {
            "type": "extractive_qa",
            "source": source,
            "id_field": "id",
            "max_length": 48,
            "doc_stride": 16,
            "primary_metric": "exact",
        },
        MINILM,
    )


# name -> writer of (task config, model); a registry entry missing here fails the matrix
TINY_TASKS: dict[str, Callable[[Path], tuple[dict[str, Any], ModelSpec]]] = {
    f.__name__: f for f in (sequence_classification, generative_classification, causal_lm, distribution, extractive_qa)
}

METHOD_CONFIGS = {
    "full": {
        "type": "full",
        "max_steps": MAX_STEPS,
        "batch_size": 4,
        "learning_rate": 1e-4,
        "warmup_ratio": 0,
        "logging_steps": 1,
    },
    "lora": {
        "type": "lora",
        "max_steps": MAX_STEPS,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "warmup_ratio": 0,
        "logging_steps": 1,
        "lora": {"r": 4, "alpha": 8},
    },
}
TYPES = registry.task_type_names()
MATRIX = [pytest.param(t, m, id=f"{t}-{m}") for t in TYPES for m in METHODS]
LORA = [pytest.param(t, "lora", id=f"{t}-lora") for t in TYPES]


# ---------------------------------------------------------------- the study: every stage run once, cached


class Study:
    """Lazily runs and caches each stage of each (type, method); a stage that failed re-raises for every
    test that needs it instead of running again."""

    def __init__(self, root: Path) -> None:
        from tunetrace.analysis.steps import RepresentationSpec

        self.root = root
        self.cache: dict[tuple, Any] = {}
        # every step captured (0, 1, 2; step 0 in the run too, so every type's drift at step 0 is measured
        # against the base, not taken from it); fp32 so that drift is exact; 8 probe rows so the unbiased
        # CKA (>= 4 rows) is defined
        self.reps = RepresentationSpec.from_dict(
            {
                "every_steps": 1,
                "probe_size": 8,
                "pooling": "mean",
                "dtype": "fp32",
                "batch_size": 4,
                "cka_batch_size": 8,
                "capture_step0": True,
            }
        )

    def _once(self, key: tuple, build: Callable[[], Any]) -> Any:
        if key not in self.cache:
            try:
                self.cache[key] = ("ok", build())
            except Exception as err:  # noqa: BLE001 - re-raised for each dependent test
                self.cache[key] = ("error", err)
        status, value = self.cache[key]
        if status == "error":
            raise value
        return value

    def task(self, name: str) -> tuple[TaskSpec, ModelSpec, dict[str, MethodSpec]]:
        def build() -> tuple[TaskSpec, ModelSpec, dict[str, MethodSpec]]:
            root = self.root / name / "source"
            root.mkdir(parents=True)
            task_config, model = TINY_TASKS[name](root)
            # through the schema, as the workflow does: the tiny configs are valid configs, defaults filled
            config = validate_config(
                {
                    "model": {"name_or_path": model.name_or_path},
                    "tasks": {name: task_config},
                    "methods": METHOD_CONFIGS,
                    "seeds": [SEED],
                }
            )
            methods = {m: MethodSpec.from_dict(m, config["methods"][m]) for m in METHODS}
            return TaskSpec.from_dict(name, config["tasks"][name]), model, methods

        return self._once(("task", name), build)

    def data(self, name: str) -> Path:
        def build() -> Path:
            from tunetrace.stages.prepare import prepare_task_data

            task, _, _ = self.task(name)
            prepare_task_data(task, self.root / name / "data")
            return self.root / name / "data"

        return self._once(("data", name), build)

    def base_reps(self, name: str) -> Path:
        def build() -> Path:
            from tunetrace.analysis.steps import step_dir_name
            from tunetrace.stages.representations import extract_base_representations

            task, model, _ = self.task(name)
            out = self.root / name / "base_reps" / step_dir_name(0)
            extract_base_representations(model, task, self.reps, self.data(name), out)
            return out

        return self._once(("base_reps", name), build)

    def run_dir(self, name: str, method: str) -> Path:
        return self.root / name / method

    def train(self, name: str, method: str) -> Path:
        def build() -> Path:
            from tunetrace.training.loop import train_run

            task, model, methods = self.task(name)
            out = self.run_dir(name, method)
            train_run(
                model,
                task,
                methods[method],
                SEED,
                self.data(name),
                out / "run",
                representations=self.reps,
                reps_dir=out / "reps",
            )
            return out

        return self._once(("train", name, method), build)

    def evaluate(self, name: str, method: str) -> Path:
        def build() -> Path:
            from tunetrace.stages.pilot import score_pilot

            task, model, methods = self.task(name)
            out = self.train(name, method)
            score_pilot(model, task, methods[method], EVAL, SEED, self.data(name), out / "run", out / "eval")
            return out / "eval"

        return self._once(("evaluate", name, method), build)

    def merge(self, name: str) -> Path:
        def build() -> Path:
            from tunetrace.stages.merge import merge_adapter
            from tunetrace.stages.verify_merge import verify_merge

            task, model, _ = self.task(name)
            out = self.train(name, "lora")
            merge_adapter(model, task, out / "run" / A.FINAL_DIR, out / "merged")
            verify_merge(
                model,
                task,
                EVAL,
                self.data(name),
                out / "run" / A.FINAL_DIR,
                out / "merged",
                out / "merge_check.json",
                identity={"method": "lora", "task": name, "seed": SEED},
            )
            return out

        return self._once(("merge", name), build)

    def drift(self, name: str, method: str) -> Path:
        def build() -> Path:
            from tunetrace.stages.drift import compute_drift

            out = self.train(name, method)
            compute_drift(
                self.base_reps(name),
                out / "reps",
                self.reps,
                {"method": method, "task": name, "seed": SEED},
                out / "drift.parquet",
                out / "drift.png",
            )
            return out / "drift.parquet"

        return self._once(("drift", name, method), build)

    def baseline(self, name: str) -> Path:
        def build() -> Path:
            from tunetrace.stages.baseline import evaluate_baseline

            task, model, _ = self.task(name)
            out = self.root / name / "baseline" / A.METRICS
            evaluate_baseline(model, task, EVAL, self.data(name), out, seed=SEED)
            return out

        return self._once(("baseline", name), build)


@pytest.fixture(scope="module")
def study(tiny_decoder_cache, tmp_path_factory: pytest.TempPathFactory) -> Study:
    return Study(tmp_path_factory.mktemp("conformance"))


def _json(path: Path) -> dict[str, Any]:
    assert path.is_file(), f"{path} was not written"
    return json.loads(path.read_text())


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ---------------------------------------------------------------- the contract, without running anything


def test_every_registered_type_has_a_tiny_task():
    """The matrix covers the registry: each registered type has a tiny task here (and nothing stale)."""
    assert set(TINY_TASKS) == set(TYPES), (
        f"registered task types without a tiny task in {Path(__file__).name}: {sorted(set(TYPES) - set(TINY_TASKS))}; "
        f"tiny tasks for unregistered types: {sorted(set(TINY_TASKS) - set(TYPES))}"
    )


def _public_methods(cls: type) -> dict[str, Any]:
    return {n: f for n, f in vars(cls).items() if inspect.isfunction(f) and not n.startswith("_")}


@pytest.mark.parametrize("name", TYPES)
def test_registered_class_fulfils_the_task_type_contract(name):
    """The registered class is a concrete TaskType whose `name` is its registry key; it overrides no
    TaskType method with other parameter names (generic steps call them by keyword); get_task_type
    returns an instance holding the registry's own entry, once."""
    import importlib

    entry = registry.entry(name)
    module, cls_name = entry.target.split(":")
    assert module == entry.module and module.startswith("tunetrace.tasks."), entry.target
    cls = getattr(importlib.import_module(module), cls_name)
    assert isinstance(cls, type) and issubclass(cls, TaskType), f"{entry.target} is not a TaskType subclass"
    abstract = {n for n, f in vars(TaskType).items() if getattr(f, "__isabstractmethod__", False)}
    assert abstract >= {
        "standardise",
        "load_model",
        "training_parts",
        "predict",
        "score",
        "baseline",
        "merge_check",
        "probe_inputs",
    }
    assert not inspect.isabstract(cls), f"{entry.target} leaves abstract: {sorted(cls.__abstractmethods__)}"
    for method in abstract:
        assert getattr(cls, method) is not getattr(TaskType, method), f"{entry.target}.{method} is not implemented"
    assert cls.name == name, f"{entry.target}.name is {cls.name!r}, registered as {name!r}"
    for method, base in _public_methods(TaskType).items():
        mine = getattr(cls, method)
        assert list(inspect.signature(mine).parameters) == list(inspect.signature(base).parameters), (
            f"{entry.target}.{method}{inspect.signature(mine)} differs from TaskType.{method}{inspect.signature(base)}"
        )
    instance = dispatch.get_task_type(name)
    assert type(instance) is cls and instance.entry is entry and dispatch.get_task_type(name) is instance
    for metric, higher in entry.metrics.items():
        assert instance.higher_is_better(metric) is higher is registry.higher_is_better(name, metric)


class NotATaskType:
    name = "sequence_classification"


class NamelessTaskType(TaskType):
    """A TaskType subclass that forgot its `name` (refused before it is instantiated)."""


@pytest.mark.parametrize(
    "target, message",
    [
        # a real task type registered under another type's name
        ("tunetrace.tasks.causal_lm:CausalLM", r"declares name 'causal_lm'; they must agree"),
        # a class that is not a TaskType (even one with the right `name`), and something that is not a class
        (f"{__name__}:NotATaskType", r"is not a TaskType subclass"),
        ("tunetrace.tasks.base:MergeQuantity", r"is not a TaskType subclass"),
        ("tunetrace.registry:entry", r"is not a TaskType subclass"),
        # a TaskType subclass that declares no name
        (f"{__name__}:NamelessTaskType", r"declares name None; they must agree"),
    ],
)
def test_get_task_type_refuses_a_mismatched_registry_entry(monkeypatch, target, message):
    """An entry whose class has another name, or is no TaskType class, is refused naming the entry."""
    good = registry.REGISTRY["sequence_classification"]
    patched = {**registry.REGISTRY, "sequence_classification": registry.Entry(target, good.metrics, good.text_pairs)}
    dispatch.get_task_type.cache_clear()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(registry, "REGISTRY", patched)
            with pytest.raises(TypeError, match=message) as info:
                dispatch.get_task_type("sequence_classification")
            assert target in str(info.value) and "sequence_classification" in str(info.value)
    finally:
        dispatch.get_task_type.cache_clear()  # nothing from the patched registry survives this test
    assert type(dispatch.get_task_type("sequence_classification")).__name__ == "SequenceClassification"


# ---------------------------------------------------------------- the matrix


@pytest.mark.parametrize("name", TYPES)
def test_prepare_writes_splits_manifest_and_base_representations(study, name):
    """Prepared train/eval Parquet with unique example ids and a manifest that describes them; base
    representations (step 0) of the probe set, every layer of the model."""
    from tunetrace.analysis.steps import load_step
    from tunetrace.fileio import sha256_file

    task, model, _ = study.task(name)
    data = study.data(name)
    manifest = _json(data / A.DATA_MANIFEST)
    assert manifest["task"] == name and manifest["type"] == name
    for split, fname in (("train", A.TRAIN_SPLIT), ("eval", A.EVAL_SPLIT)):
        frame = pd.read_parquet(data / fname)
        assert len(frame) > 0 and A.COL_ID in frame and frame[A.COL_ID].is_unique
        assert manifest["splits"][split]["rows"] == len(frame)
        assert manifest["splits"][split]["sha256"] == sha256_file(data / fname)
    assert [s["path"] for s in manifest["sources"]] == [p for p in (task.source["train"], task.source.get("eval")) if p]

    meta, layers, _ = load_step(study.base_reps(name))
    eval_ids = sorted(pd.read_parquet(data / A.EVAL_SPLIT)[A.COL_ID].astype(str))
    assert meta["probe"]["ids"] == eval_ids[: study.reps.probe_size] and meta["step"] == 0
    assert meta["model"] == model.name_or_path and sorted(layers) == list(range(len(layers))) and len(layers) >= 3
    assert all(a.shape[0] == len(meta["probe"]["ids"]) and np.isfinite(a).all() for a in layers.values())


@pytest.mark.parametrize("name, method", MATRIX)
def test_train_run_writes_final_model_log_and_metadata(study, name, method):
    """run.json describes the run; final/ holds the model (full) or the adapter (lora) with checksums;
    the log has every step's loss; representations were captured at every step."""
    from tunetrace.analysis.steps import list_steps

    task, model, methods = study.task(name)
    out = study.train(name, method)
    run = _json(out / "run" / A.RUN_METADATA)
    assert (run["method"], run["method_type"], run["task"], run["seed"], run["model"]) == (
        method,
        method,
        name,
        SEED,
        model.name_or_path,
    )
    assert run["global_steps"] == MAX_STEPS and run["resumed_from_step"] is None
    assert _finite(run["final_train_loss"]) and _finite(run["train_wall_time_s"])
    assert run["train_examples"] > 0  # examples, or windows (extractive QA)
    assert {"python", "torch", "transformers", "peft"} <= set(run["versions"])
    params = run["parameters"]
    if method == "full":
        assert params["trainable"] == params["total"] > 0
    else:
        assert 0 < params["trainable"] < params["total"] and params["percent"] < 50

    final = out / "run" / A.FINAL_DIR
    adapter = (final / "adapter_config.json").is_file()
    assert adapter == (method == "lora"), (
        f"final/ of a {method} run {'has' if adapter else 'lacks'} adapter_config.json"
    )
    checksums = _json(final / "checksums.json")
    assert checksums and all((final / f).is_file() for f in checksums)

    records = [json.loads(line) for line in (out / "run" / A.TRAIN_LOG).read_text().splitlines()]
    losses = [r for r in records if "loss" in r]
    assert [r["step"] for r in losses] == list(range(1, MAX_STEPS + 1)) and all(_finite(r["loss"]) for r in losses)
    assert [s for s, _ in list_steps(out / "reps")] == list(range(MAX_STEPS + 1))


@pytest.mark.parametrize("name, method", MATRIX)
def test_evaluate_writes_metrics_with_primary_and_predictions(study, name, method):
    """metrics.json names a primary metric the registry lists for the type (the one the task asked
    for), a finite `primary`, the registry's direction; predictions.parquet has one row per eval example."""
    task, _, _ = study.task(name)
    out = study.evaluate(name, method)
    entry = registry.entry(name)
    metrics = _json(out / A.METRICS)
    metric = metrics["primary_metric"]
    assert metric in entry.metrics and metric == task.primary_metric
    assert _finite(metrics["primary"]) and metrics[metric] == metrics["primary"]
    assert metrics["higher_is_better"] is entry.metrics[metric] is registry.higher_is_better(name, metric)
    assert (metrics["method"], metrics["task"], metrics["seed"]) == (method, name, SEED)
    assert (out / A.EVAL_REPORT).read_text().strip()

    eval_ids = pd.read_parquet(study.data(name) / A.EVAL_SPLIT)[A.COL_ID].astype(str).tolist()
    outputs = pd.read_parquet(out.parent / "run" / A.EVAL_OUTPUTS)
    assert outputs[A.COL_ID].astype(str).tolist() == eval_ids, "raw outputs: one row per eval example, in order"
    if name in NO_PREDICTIONS:
        assert not (out / A.PREDICTIONS).exists()
        return
    predictions = pd.read_parquet(out / A.PREDICTIONS)
    assert len(predictions) == len(eval_ids), f"{len(predictions)} prediction rows for {len(eval_ids)} eval examples"
    assert predictions[A.COL_ID].astype(str).tolist() == eval_ids
    table = pd.read_csv(out / A.PREDICTIONS_CSV, dtype=str, keep_default_na=False)  # the same rows, with the inputs
    assert table["id"].tolist() == eval_ids and len(table.columns) > len(predictions.columns) - 1


@pytest.mark.parametrize("name, method", MATRIX)
def test_rescoring_reads_the_outputs_not_the_model(study, name, method, tmp_path, monkeypatch):
    """evaluate_run's half scores the raw outputs the training job wrote: the same primary metric with other
    evaluation settings, and no model or tokenizer is loaded to get it."""
    from tunetrace.stages.evaluate import score_run

    task, _, methods = study.task(name)
    first = _json(study.evaluate(name, method) / A.METRICS)
    for loader in ("load_model", "load_tokenizer", "load_tuned_model", "load_adapter_model"):
        monkeypatch.setattr(TaskType, loader, lambda *a, **k: pytest.fail("scoring loaded a model"))
    again = score_run(
        task,
        methods[method],
        EvalSpec.from_dict({"bootstrap_samples": 0}),
        SEED,
        study.data(name),
        study.train(name, method) / "run" / A.EVAL_OUTPUTS,
        tmp_path,
    )
    assert again["primary"] == pytest.approx(first["primary"], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name, method", LORA)
def test_lora_merge_is_verified_with_named_quantities(study, name, method):
    """The merged model is standalone (no adapter files) and the merge check passes with the type's
    named quantities, at least one of them checked against a tolerance."""
    out = study.merge(name)
    merged = out / "merged"
    assert not (merged / "adapter_config.json").exists() and (merged / "config.json").is_file()
    assert _json(merged / A.MERGE_METADATA)["base_model"] == study.task(name)[1].name_or_path
    check = _json(out / "merge_check.json")
    assert check["passed"] is True, check
    assert (check["task_type"], check["method"], check["task"], check["seed"]) == (name, "lora", name, SEED)
    assert check["examples"] == len(pd.read_parquet(study.data(name) / A.EVAL_SPLIT))
    quantities = check["quantities"]
    assert quantities, "merge check without quantities"
    for q_name, q in quantities.items():
        assert set(q) == MERGE_QUANTITY_KEYS, f"{q_name}: keys {sorted(q)}"
        assert q["bound"] in ("max", "min") and q["checked"] is (q["tolerance"] is not None)
        assert q["passed"] is True and (not q["checked"] or _finite(q["value"])), f"{q_name}: {q}"
    assert any(q["checked"] for q in quantities.values()), f"no quantity is checked: {quantities}"


@pytest.mark.parametrize("name, method", MATRIX)
def test_drift_has_every_layer_at_every_step(study, name, method):
    """One drift row per (captured step, base layer), up to the run's final step; step 0 is the base model."""
    from tunetrace.analysis.drift import DRIFT_COLUMNS
    from tunetrace.analysis.steps import load_step

    frame = pd.read_parquet(study.drift(name, method))
    assert list(frame.columns) == DRIFT_COLUMNS
    _, base_layers, _ = load_step(study.base_reps(name))
    steps = list(range(MAX_STEPS + 1))
    assert len(frame) == len(steps) * len(base_layers)
    for step in steps:
        assert sorted(frame.loc[frame["step"] == step, "layer"]) == sorted(base_layers), f"step {step}"
    assert frame["step"].max() == _json(study.train(name, method) / "run" / A.RUN_METADATA)["global_steps"]
    assert set(frame["method"]) == {method} and set(frame["task"]) == {name} and set(frame["seed"]) == {SEED}
    assert frame[["cka", "cka_unbiased", "cosine"]].notna().all().all()
    step0 = frame[frame["step"] == 0]
    assert np.allclose(step0["cka"], 1.0, atol=1e-5) and np.allclose(step0["cosine"], 1.0, atol=1e-5)
    assert (study.drift(name, method).with_name("drift.png")).stat().st_size > 0


@pytest.mark.parametrize("name", TYPES)
def test_baseline_names_a_reference_among_its_baselines(study, name):
    """The baseline document: the task's primary metric, the registry's direction, and `primary` equal to
    the primary of the reference baseline (what gates and the comparison read)."""
    task, model, _ = study.task(name)
    doc = _json(study.baseline(name))
    assert doc["primary_metric"] == task.primary_metric and doc["task"] == name and doc["model"] == model.name_or_path
    assert doc["higher_is_better"] is registry.higher_is_better(name, task.primary_metric)
    assert doc["reference"] in doc["baselines"] and _finite(doc["primary"])
    assert doc["baselines"][doc["reference"]]["primary"] == doc["primary"]


@pytest.mark.parametrize("name", TYPES)
def test_trivial_baseline_is_one_of_the_baselines(study, name):
    """TaskType.trivial_baseline names a baseline the type's baseline document holds (or is None), so
    validation's not-better-than-trivial check compares against a real number."""
    trivial = dispatch.get_task_type(name).trivial_baseline
    assert trivial is None or trivial in _json(study.baseline(name))["baselines"]


@pytest.mark.parametrize("name, method", MATRIX)
def test_prediction_flags_read_the_types_own_predictions(study, name, method):
    """TaskType.prediction_flags accepts the predictions.parquet the type's evaluate wrote and returns
    {code, message} findings (validation adds run, file and severity)."""
    from tunetrace.config import ValidationSpec

    task, _, _ = study.task(name)
    predictions = pd.read_parquet(study.evaluate(name, method) / A.PREDICTIONS)
    found = dispatch.get_task_type(name).prediction_flags(predictions, task, ValidationSpec.from_dict({}))
    assert isinstance(found, list)
    assert all(set(f) == {"code", "message"} and f["code"] and f["message"] for f in found), found
