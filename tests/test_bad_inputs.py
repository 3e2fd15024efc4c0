"""The bad-input catalogue: every input that must stop a study early, each with one message that names the
config key or file and the fix, and no artifact left behind.

Earlier cases live beside their modules and are not repeated here: tests/test_config.py (unknown key, wrong
type, value outside an enum or a bound, missing data file, positive_label outside labels),
tests/test_data.py (missing column, empty file, label outside the label set, bytes that are not UTF-8, empty
text), tests/test_generative.py::test_label_outside_label_set_is_reported, tests/test_causal_lm.py
(missing stratify_by column), tests/test_tasks.py::test_unknown_task_type_names_the_allowed_ones,
tests/test_accelerate.py::test_deepspeed_without_gpus_is_a_config_error, tests/test_pooling.py (pooling
refusals) and tests/test_workflow.py::test_bad_config_stops_before_any_job (a config error stops snakemake
before any job).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import tiny_config, write_sentiment_csv
from tunetrace.config import (
    ConfigError,
    LoraSpec,
    MethodSpec,
    ModelSpec,
    TaskSpec,
    check_tracking,
    load_yaml,
    validate_config,
)
from tunetrace.data.checks import DataError
from tunetrace.models.names import ModelError, check_hub_cache, check_model_name
from tunetrace.stages.prepare import prepare_task_data

MINILM = ModelSpec.from_dict({})  # the embedded default: its config loads offline
HUB_ID = "tunetrace-tests/no-such-model"


def _task(tmp: Path, train_rows: list[str] | None = None, **overrides: object) -> TaskSpec:
    """The tiny sentiment task; `train_rows` ("label" per row) replaces its training file."""
    config = tiny_config(str(tmp / "data"))
    write_sentiment_csv(tmp / "data" / "train.csv", 48, seed=1)
    write_sentiment_csv(tmp / "data" / "eval.csv", 24, seed=2)
    if train_rows is not None:
        lines = [f"r{i},text number {i},{label},films" for i, label in enumerate(train_rows)]
        (tmp / "data" / "train.csv").write_text("id,text,label,domain\n" + "\n".join(lines) + "\n")
    config["tasks"]["tiny"].update(overrides)
    return TaskSpec.from_dict("tiny", validate_config(config)["tasks"]["tiny"])


def _prepare(tmp: Path, task: TaskSpec) -> None:
    prepare_task_data(task, tmp / "results" / "data" / "tiny")


def _check(tmp: Path, model: ModelSpec = MINILM, **targets: list[str] | None) -> None:
    """check_model for the tiny task, one lora method per keyword (method name -> target_modules)."""
    from tunetrace.stages.check_model import check_model

    lora = {name: LoraSpec.from_dict({"target_modules": value}) for name, value in targets.items()}
    check_model(model, _task(tmp), lora, tmp / "results" / "checks" / "model" / "tiny.json")


def _model_dir(tmp: Path, *files: str) -> Path:
    """A directory holding empty files with these names (what a half-copied model looks like)."""
    path = tmp / "models" / "bert-finetuned"
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_text("{}")
    return path


def _electra_dir(tmp: Path) -> Path:
    """A model directory with only config.json, of an architecture without a LoRA default (electra)."""
    from transformers import ElectraConfig

    path = tmp / "models" / "electra"
    ElectraConfig(
        vocab_size=100,
        embedding_size=16,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    ).save_pretrained(path)
    return path


def _offline_hub_check(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tunetrace.stages.check_model import check_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    check_model(
        ModelSpec.from_dict({"name_or_path": HUB_ID}),
        _task(tmp),
        {},
        tmp / "results" / "checks" / "model" / "tiny.json",
    )


def _lora_at_training(tmp: Path) -> None:
    """The training path (TaskType.apply_lora), which check_model guards in the workflow, on its own."""
    from tunetrace.tasks.dispatch import get_task_type

    task_type, task = get_task_type("sequence_classification"), _task(tmp)
    method = MethodSpec.from_dict("lora_r4", {"type": "lora", "lora": {"target_modules": ["qkv"]}})
    task_type.apply_lora(task_type.model_skeleton(MINILM, task), method)


def _colliding(section: str, name: str, twin: str) -> None:
    config = tiny_config()
    config[section][twin] = config[section][name]
    validate_config(config)


def _edited(edit: Callable[[dict], None]) -> dict:
    """The tiny config, validated after `edit` changed it as written."""
    config = tiny_config()
    edit(config)
    return validate_config(config)


def _long_max_length(tmp: Path) -> None:
    from tunetrace.stages.check_model import check_model

    check_model(MINILM, _task(tmp, max_length=1024), {}, tmp / "results" / "checks" / "model" / "tiny.json")


_REAL_DISK_USAGE = shutil.disk_usage


def _nearly_full(path: str | Path) -> tuple:
    """shutil.disk_usage of a filesystem with 1000 bytes free."""
    return _REAL_DISK_USAGE(path)._replace(free=1000)


def _disk_full(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint save on a filesystem with 1000 bytes free."""
    from tunetrace.training import checkpoints

    monkeypatch.setattr(checkpoints.shutil, "disk_usage", _nearly_full)
    checkpoints.ensure_free_space(tmp / "results" / "runs" / "checkpoints", 10**6, "checkpoint-4")


def _bad_yaml(tmp: Path) -> None:
    (tmp / "config.yaml").write_text("tasks:\n  tiny:\n    source: {train: a.csv\nmethods: [full\n")
    load_yaml(tmp / "config.yaml")


def _online_without_credentials(tmp: Path) -> None:
    config = _edited(lambda c: c["tracking"].update(wandb_mode="online"))
    check_tracking(config, env={}, home=tmp)


@dataclasses.dataclass(frozen=True)
class Case:
    run: Callable[[Path, pytest.MonkeyPatch], None]  # sets files up under tmp and makes the call that must fail
    error: type[Exception]
    says: tuple[str, ...]  # in the message: the key or file, what is wrong, the fix ({tmp}: the temporary dir)
    leaves: str | None = None  # a path under tmp that must not exist afterwards


CATALOGUE = {
    # --- model.name_or_path, at config validation (torch-free, rules/config.smk) ---
    "missing_local_model_dir": Case(
        lambda tmp, mp: check_model_name(str(tmp / "models" / "bert-finetuned"), tmp),
        ModelError,
        ("'model.name_or_path'", "{tmp}/models/bert-finetuned", "does not exist", "fix the path"),
    ),
    "path_that_is_no_hub_id": Case(  # transformers said "Repo id must be in the form 'repo_name'" for this
        lambda tmp, mp: check_model_name("checkpoints/bert/final", tmp),
        ModelError,
        ("'model.name_or_path'", "'checkpoints/bert/final' does not exist", "fix the path"),
    ),
    "model_dir_without_config_json": Case(
        lambda tmp, mp: check_model_name(str(_model_dir(tmp, "model.safetensors")), tmp),
        ModelError,
        ("'model.name_or_path'", "holds no config.json", "save_pretrained"),
    ),
    "adapter_dir_as_base_model": Case(
        lambda tmp, mp: check_model_name(str(_model_dir(tmp, "adapter_config.json")), tmp),
        ModelError,
        ("'model.name_or_path'", "holds no config.json", "LoRA adapter", "base model"),
    ),
    "unknown_embedded_model": Case(
        lambda tmp, mp: check_model_name("embedded:all-MiniLM-L12", tmp),
        ModelError,
        ("'model.name_or_path'", "unknown embedded model 'all-MiniLM-L12'", "all-MiniLM-L6-v2"),
    ),
    "unknown_tiny_architecture": Case(
        lambda tmp, mp: check_model_name("tiny:bert", tmp),
        ModelError,
        ("'model.name_or_path'", "unknown tiny architecture 'bert'", "tiny:llama, tiny:gpt2"),
    ),
    # --- the base model in the job environment (rule check_model) ---
    "offline_hub_id_not_cached": Case(
        _offline_hub_check,
        ModelError,
        (
            "model.name_or_path",
            HUB_ID,
            "not in the local Hugging Face cache",
            "HF_HUB_OFFLINE",
            f"hf download {HUB_ID}",
            "local directory",
        ),
        leaves="results/checks",
    ),
    "lora_target_matching_no_module": Case(
        lambda tmp, mp: _check(tmp, lora_r4=["qkv"]),
        ModelError,
        (
            "'methods.lora_r4.lora.target_modules'",
            "'qkv' matches no module",
            "query, value",
            "set methods.lora_r4.lora.target_modules to some of them",
            "null for the default",
        ),
        leaves="results/checks",
    ),
    "lora_target_that_is_no_layer": Case(
        lambda tmp, mp: _check(tmp, lora_r4=["query"], lora_r8=["attention"]),
        ModelError,
        (
            "'methods.lora_r8.lora.target_modules'",
            "'attention' matches BertAttention modules",
            "which LoRA cannot adapt",
        ),
        leaves="results/checks",
    ),
    "lora_default_missing_for_architecture": Case(
        lambda tmp, mp: _check(tmp, ModelSpec.from_dict({"name_or_path": str(_electra_dir(tmp))}), lora_r4=None),
        ModelError,
        (
            "'methods.lora_r4.lora.target_modules'",
            "architecture 'electra' has no default",
            "list some of its linear layers",
            "query",
        ),
        leaves="results/checks",
    ),
    "lora_target_matching_no_module_at_training": Case(  # PEFT's NoMatchingPeftModuleError before
        lambda tmp, mp: _lora_at_training(tmp),
        ModelError,
        ("'methods.<name>.lora.target_modules'", "'qkv' matches no module", "query, value"),
    ),
    # --- degenerate training data (prepare_data) ---
    "one_row_training_set": Case(
        lambda tmp, mp: _prepare(tmp, _task(tmp, ["positive"])),
        DataError,
        (
            "{tmp}/data/train.csv",
            "has 1 row,",
            "{'negative': 0, 'positive': 1}",
            "a single class ('positive')",
            "tasks.tiny.min_train_rows_per_label",
            "tasks.tiny.allow_degenerate_data: true",
        ),
        leaves="results/data/tiny",
    ),
    "single_class_training_set": Case(
        lambda tmp, mp: _prepare(tmp, _task(tmp, ["negative"] * 12)),
        DataError,
        (
            "{tmp}/data/train.csv",
            "{'negative': 12, 'positive': 0}",
            "a single class ('negative')",
            "Add training rows of every label",
        ),
        leaves="results/data/tiny",
    ),
    "label_below_min_train_rows": Case(
        lambda tmp, mp: _prepare(tmp, _task(tmp, ["negative"] * 3 + ["positive"] * 3, min_train_rows_per_label=4)),
        DataError,
        (
            "{'negative': 3, 'positive': 3}",
            "fewer than 4 rows of 'negative', 'positive'",
            "lower tasks.tiny.min_train_rows_per_label",
        ),
        leaves="results/data/tiny",
    ),
    "single_class_generative_training_set": Case(
        lambda tmp, mp: _prepare(tmp, _task(tmp, ["positive"] * 6, type="generative_classification")),
        DataError,
        ("{'negative': 0, 'positive': 6}", "a single class ('positive')"),
        leaves="results/data/tiny",
    ),
    "empty_held_out_eval_split": Case(
        lambda tmp, mp: _prepare(
            tmp, _task(tmp, ["negative", "positive"], source={"train": str(tmp / "data" / "train.csv")})
        ),
        DataError,
        (
            "{tmp}/data/train.csv",
            "the eval split of task 'tiny' has no rows",
            "after holding out 0.2",
            "set source.eval to an eval file",
            "tasks.tiny.source",
        ),
        leaves="results/data/tiny",
    ),
    # --- names that collide on a case-insensitive filesystem (config validation) ---
    "method_names_differing_in_case": Case(
        lambda tmp, mp: _colliding("methods", "full", "Full"),
        ConfigError,
        ("'methods.full'", "'methods.Full'", "only in case", "rename one"),
    ),
    "task_names_differing_in_case": Case(
        lambda tmp, mp: _colliding("tasks", "tiny", "TINY"),
        ConfigError,
        ("'tasks.tiny'", "'tasks.TINY'", "only in case", "rename one"),
    ),
    # --- early checks (plan time, or check_model before any job loads weights) ---
    "max_length_above_model_positions": Case(  # train_run crashed with a raw tensor-size error before
        lambda tmp, mp: _long_max_length(tmp),
        ModelError,
        (
            "'tasks.tiny.max_length'",
            "1024 is above",
            "max_position_embeddings = 512",
            "set tasks.tiny.max_length to 512 or less",
        ),
        leaves="results/checks",
    ),
    "disk_full_before_a_checkpoint_save": Case(
        _disk_full,
        OSError,
        (
            "disk full",
            "checkpoint-4",
            "{tmp}/results/runs/checkpoints",
            "needs about 1000000 bytes",
            "1000 bytes free",
            "free space there",
            "rerun",
        ),
        leaves="results/runs",
    ),
    "yaml_syntax_error_in_a_configfile": Case(
        lambda tmp, mp: _bad_yaml(tmp),
        ConfigError,
        ("{tmp}/config.yaml:4:", "not valid YAML", "line 3", "fix the syntax"),
    ),
    "lora_block_on_a_full_method": Case(
        lambda tmp, mp: _edited(lambda c: c["methods"]["full"].update(lora={"r": 4})),
        ConfigError,
        ("'methods.full.lora'", "type lora only", "methods.full.type is full", "remove the lora block"),
    ),
    "data_path_outside_the_study": Case(
        lambda tmp, mp: _edited(lambda c: c["tasks"]["tiny"]["source"].update(train="../../../../etc/passwd")),
        ConfigError,
        (
            "'tasks.tiny.source.train'",
            "'../../../../etc/passwd'",
            "outside the study directory",
            "absolute path",
            "tasks.tiny.source.allow_outside_study: true",
        ),
    ),
    "wandb_online_without_credentials": Case(
        lambda tmp, mp: _online_without_credentials(tmp),
        ConfigError,
        ("'tracking.wandb_mode'", "online", "WANDB_API_KEY", "wandb login", "WANDB_MODE=offline"),
    ),
}


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_bad_input_stops_naming_the_key_and_the_fix(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each catalogued input raises its error with a one-line message naming the config key or file and the
    fix, as its own error (no library traceback chained to it), and leaves no artifact behind."""
    case = CATALOGUE[name]
    with pytest.raises(case.error) as info:
        case.run(tmp_path, monkeypatch)
    message = str(info.value)
    expected = [text.replace("{tmp}", str(tmp_path)) for text in case.says]
    missing = [text for text in expected if text not in message]
    assert not missing, f"{missing} not in: {message}"
    assert "\n" not in message and info.value.__context__ is None
    if case.leaves:
        assert not (tmp_path / case.leaves).exists()


# ---------------------------------------------------------------- the same inputs, accepted where they should be


def test_names_shaped_like_hub_ids_pass_the_config_time_check(tmp_path: Path) -> None:
    """Hub ids (and a/b whose a is no directory here) pass check_model_name; a local directory with config.json too."""
    _model_dir(tmp_path, "config.json")
    for name in (
        "bert-base-uncased",
        "Qwen/Qwen2.5-0.5B",
        "models/bert-finetuned",
        "embedded:all-MiniLM-L6-v2",
        "tiny:gpt2",
        str(tmp_path / "models" / "bert-finetuned"),
    ):
        check_model_name(name, tmp_path)
    with pytest.raises(ModelError):  # models/ exists here, so models/<x> can only mean a directory
        check_model_name("models/other", tmp_path)


def test_offline_hub_id_in_the_local_cache_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, a hub id is looked up in the local Hugging Face cache: refused before its config.json is
    cached there, accepted after."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        check_hub_cache(HUB_ID)
    repo = tmp_path / "hub" / ("models--" + HUB_ID.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "config.json").write_text("{}")
    check_hub_cache(HUB_ID)


def test_data_outside_the_study_passes_when_meant() -> None:
    """A relative path out of the study with allow_outside_study: true, or an absolute path, is accepted."""
    _edited(lambda c: c["tasks"]["tiny"]["source"].update(train="../shared/train.csv", allow_outside_study=True))
    _edited(lambda c: c["tasks"]["tiny"]["source"].update(train="/srv/data/train.csv"))
    _edited(lambda c: c["tasks"]["tiny"]["source"].update(train="data/../data/train.csv"))


def test_wandb_online_passes_with_credentials_or_offline_env(tmp_path: Path) -> None:
    """online passes with WANDB_API_KEY, an api.wandb.ai entry in ~/.netrc, or WANDB_MODE=offline."""
    config = _edited(lambda c: c["tracking"].update(wandb_mode="online"))
    check_tracking(config, env={"WANDB_API_KEY": "x"}, home=tmp_path)
    check_tracking(config, env={"WANDB_MODE": "offline"}, home=tmp_path)
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password x\n")
    check_tracking(config, env={}, home=tmp_path)


def test_lora_block_on_a_lora_method_and_max_length_within_positions_pass(tmp_path: Path) -> None:
    """The checks refuse only what they name: a lora block on a lora method and max_length 512 pass."""
    from tunetrace.stages.check_model import check_max_length

    _edited(lambda c: c["methods"]["lora_r4"].update(lora={"r": 2}))
    check_max_length(MINILM, _task(tmp_path, max_length=512))


def test_rerun_after_disk_full_names_the_disk_not_a_killed_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A half-written checkpoint left by a save that ran out of space is removed on rerun with a message that
    names the full disk and does not say the job was killed."""
    from tunetrace.training import checkpoints

    (tmp_path / "checkpoint-4").mkdir()
    (tmp_path / "checkpoint-4" / "model.safetensors").write_bytes(b"half")
    monkeypatch.setattr(checkpoints.shutil, "disk_usage", _nearly_full)
    with caplog.at_level(logging.WARNING):
        assert checkpoints.remove_incomplete(tmp_path) == [tmp_path / "checkpoint-4"]
    assert "out of disk space" in caplog.text and "1000 bytes are free" in caplog.text
    assert "was killed" not in caplog.text


def test_tunetrace_commands_name_the_yaml_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`tunetrace status --configfile bad.yaml` exits 2 naming file:line (snakemake names neither), before any
    snakemake call."""
    from tunetrace import cli

    with pytest.raises(ConfigError):
        _bad_yaml(tmp_path)
    assert cli.main(["status", "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml")]) == 2
    assert f"{tmp_path / 'config.yaml'}:4:" in capsys.readouterr().err


def test_degenerate_data_is_prepared_with_a_warning_when_allowed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """allow_degenerate_data: true prepares a one-row training split and logs the counts instead of stopping."""
    task = _task(tmp_path, ["positive"], allow_degenerate_data=True)
    with caplog.at_level(logging.WARNING, logger="tunetrace.stages.prepare"):
        manifest = prepare_task_data(task, tmp_path / "results" / "data" / "tiny")
    assert manifest["splits"]["train"]["rows"] == 1
    assert "{'negative': 0, 'positive': 1}" in caplog.text and "allow_degenerate_data" in caplog.text


# ---------------------------------------------------------------- in the workflow


@pytest.mark.workflow
def test_missing_model_dir_stops_snakemake_before_any_job(make_workflow) -> None:
    """A model.name_or_path that names no directory stops the DAG build with the key, and nothing is written."""
    flow = make_workflow()
    flow.config["model"]["name_or_path"] = "checkpoints/bert/final"
    flow.write_config()
    proc = flow.run("--dry-run", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "'model.name_or_path'" in output and "does not exist" in output
    assert not (flow.root / "results").exists()


@pytest.mark.workflow
def test_bad_lora_target_stops_the_study_before_any_model_job(make_workflow) -> None:
    """A LoRA target that matches no module fails rule check_model with the key in its log; no job that loads
    the model (baseline, base representations, training) starts."""
    flow = make_workflow()
    flow.config["methods"]["lora_r4"]["lora"]["target_modules"] = ["qkv"]
    flow.write_config()
    assert flow.run(check=False).returncode != 0
    log = (flow.root / "logs" / "check_model" / "tiny.log").read_text()
    assert "'methods.lora_r4.lora.target_modules': 'qkv' matches no module" in log
    results = flow.root / "results"
    assert not [p for p in ("baseline", "representations", "runs", "checks/model/tiny.json") if (results / p).exists()]


@pytest.mark.workflow
def test_rewritten_model_check_reruns_no_model_job(make_workflow) -> None:
    """A change that reruns the check (a LoRA method's target_modules) reruns the check, not the baseline that
    waited for it (read as an ancient() input once the check has run); one call reaches the fixed point."""
    flow = make_workflow()
    target = "results/baseline/tiny/metrics.json"
    flow.run(target)
    before = (flow.root / target).stat().st_mtime_ns
    flow.config["methods"]["lora_r4"]["lora"]["target_modules"] = ["query", "value"]
    flow.write_config()
    assert flow.planned_jobs(target)["check_model"] == 1
    flow.run(target)
    assert (flow.root / target).stat().st_mtime_ns == before
    assert flow.planned_jobs(target) == {}


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c["tasks"]["tiny"]["source"].update(eval="../../../../etc/passwd"), "tasks.tiny.source.eval"),
        (lambda c: c["methods"]["full"].update(lora={"r": 4}), "methods.full.lora"),
    ],
    ids=["data_outside_study", "lora_block_on_full"],
)
def test_plan_time_refusals_stop_snakemake_before_any_job(make_workflow, edit, key) -> None:
    """The config checks run when snakemake plans: a dry run stops naming the key, and no results/ appear."""
    flow = make_workflow()
    edit(flow.config)
    flow.write_config()
    proc = flow.run("--dry-run", check=False)
    assert proc.returncode != 0 and f"'{key}'" in proc.stdout + proc.stderr
    assert not (flow.root / "results").exists()
