"""tunetrace.cluster: the model jobs' requests, Slurm's outputs parsed, and the doctor's verdicts (recorded
sinfo / scontrol outputs in tests/data/slurm, no cluster needed)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tunetrace.cluster.doctor import diagnose, render, status_findings
from tunetrace.cluster.requests import (
    DEFAULT_PARAMETERS,
    LOCAL_RULES,
    RULES,
    SMALL_MODEL,
    job_request,
    job_threads,
    markdown,
    retry_expression,
    slurm_resources,
    study_requests,
)
from tunetrace.cluster.slurm import cluster_facts, gres_gpus, parse_sinfo, parse_time_limit
from tunetrace.config import validate_config

REPO = Path(__file__).parents[1]
DATA = Path(__file__).parent / "data" / "slurm"
ONE_NODE = cluster_facts(
    (DATA / "sinfo_one_node.txt").read_text(), (DATA / "scontrol_config_no_accounting.txt").read_text()
)
SITE = cluster_facts((DATA / "sinfo_gpu_site.txt").read_text(), (DATA / "scontrol_config_accounting.txt").read_text())
SQUEUE = {"slurm-status-command": "squeue"}


def study(model_parameters: int | None = None, dtype: str = "float32", **methods: dict[str, Any]) -> dict:
    methods = methods or {"full": {"type": "full", "resources": {"gpus": 1}}, "lora_cpu": {"type": "lora"}}
    return validate_config(
        {
            "model": {"dtype": dtype},
            "resources": {"model_parameters": model_parameters},
            "tasks": {"t": {"source": {"train": "train.csv"}, "labels": ["a", "b"]}},
            "methods": methods,
            "seeds": [0],
        }
    )


def test_time_limits_parse_to_minutes() -> None:
    """Slurm's time formats become minutes; infinite is no limit."""
    assert [parse_time_limit(t) for t in ("infinite", "30", "30:00", "2:00:00", "1-12:00:00", "0:00:30")] == [
        None,
        30,
        30,
        120,
        2160,
        1,
    ]


def test_gres_strings_count_gpus() -> None:
    """Typed and untyped GPU GRES count; other GRES and (null) count zero."""
    assert [gres_gpus(g) for g in ("gpu:4", "gpu:a100:4(S:0-1)", "(null)", "gpu:a100:2,gpu:v100:1", "mps:100")] == [
        4,
        4,
        0,
        3,
        0,
    ]


def test_recorded_one_node_cluster() -> None:
    """The test cluster's recorded outputs: one default partition, real memory, one GPU, accounting off."""
    (debug,) = ONE_NODE.partitions.values()
    assert (debug.name, debug.default, debug.cpus, debug.mem_mb, debug.gpus, debug.time_limit_min) == (
        "debug",
        True,
        2,
        24105,
        1,
        None,
    )
    assert (ONE_NODE.accounting, ONE_NODE.min_job_age_s, ONE_NODE.version) == (False, 86400, "22.05.8")


def test_node_groups_of_a_partition_merge_to_its_largest_node() -> None:
    """Two node groups in one partition: node counts add up, memory and GPUs are the largest node's."""
    gpu = parse_sinfo((DATA / "sinfo_gpu_site.txt").read_text())["gpu"]
    assert (gpu.nodes, gpu.mem_mb, gpu.gpus, gpu.cpus, gpu.time_limit_min, gpu.default) == (
        8,
        1024000,
        8,
        64,
        1440,
        False,
    )
    assert SITE.accounting and SITE.min_job_age_s == 300


def test_memory_grows_with_model_size_and_dtype() -> None:
    """Ten times the parameters ask more memory; bfloat16 weights ask less than float32."""
    small = job_request("evaluate_baseline", study(100_000_000), None).mem_mb
    large = job_request("evaluate_baseline", study(1_000_000_000), None).mem_mb
    half = job_request("evaluate_baseline", study(1_000_000_000, "bfloat16"), None).mem_mb
    assert small < half < large
    assert large == 10000  # 2000 MB overhead + 2 copies of 4 GB (float32), in steps of 500 MB


def test_full_training_on_cpu_holds_optimizer_state() -> None:
    """A CPU-only full fine-tuning of 1B parameters asks 16 B/param; its LoRA sibling far less."""
    config = study(1_000_000_000, full={"type": "full"}, lora={"type": "lora"})
    full, lora = (job_request("train_run", config, None, m).mem_mb for m in ("full", "lora"))
    assert full == 17500 and lora == 10000


def test_pilot_and_smoke_ask_what_train_run_asks_but_runtime() -> None:
    """The pilot and the smoke test of a 4-GPU, 2-node method ask train_run's memory, GPUs, threads, nodes and
    Slurm resources (they go through its launcher), with their own shorter runtime."""
    from tunetrace.cluster.requests import slurm_resources

    config = study(big={"type": "full", "resources": {"gpus": 4, "nodes": 2, "cpus": 16}, "gate": {"enabled": True}})
    train = job_request("train_run", config, 14_000_000_000, "big")
    for rule in ("pilot_run", "run_smoke_test"):
        request = job_request(rule, config, 14_000_000_000, "big")
        assert (request.mem_mb, request.gpus, request.cpus, request.nodes) == (train.mem_mb, 4, 16, 2)
        assert slurm_resources(request) == slurm_resources(train)
        assert request.runtime < train.runtime


def test_gpus_only_where_the_method_has_them() -> None:
    """The CPU-only method's jobs ask no GPU; the GPU method's training (its smoke test too) its GPUs, its
    validation and the study's inference jobs one for a small model; scoring a run (evaluate_run loads no model) none
    and only the fixed
    overhead, whatever the model."""
    config = study(full={"type": "full", "resources": {"gpus": 4}}, lora_cpu={"type": "lora"})
    gpus = {(r.rule, r.method): r.gpus for r in study_requests(config, 22_000_000)}
    assert {job: n for job, n in gpus.items() if n} == {
        ("evaluate_baseline", None): 1,
        ("train_run", "full"): 4,
        ("run_smoke_test", "full"): 4,
        ("evaluate_checkpoint", "full"): 1,
        ("extract_base_representations", None): 1,
        ("validate_run", "full"): 1,
    }
    assert {
        ("evaluate_run", "full"),
        ("validate_run", "full"),
        ("merge_adapter", "lora_cpu"),
        ("verify_merge", "lora_cpu"),
        ("extract_base_representations", None),
    } <= set(gpus)
    cpu_only = study(lora={"type": "lora"})
    assert job_request("evaluate_baseline", cpu_only, 22_000_000).gpus == 0
    assert job_request("evaluate_run", study(8_000_000_000), None, "full").mem_mb == 2000


def test_inference_jobs_of_a_big_model_ask_the_gpus_that_hold_it() -> None:
    """70B bf16 (140 GB) on 80 GB GPUs: the baseline and the merge hold one copy (3 GPUs at 80 % use), the
    merge check and the validation two (5 GPUs); a larger resources.gpu_mem_gb asks fewer."""
    config = study(lora={"type": "lora", "resources": {"gpus": 4}})
    config["model"]["dtype"] = "bfloat16"
    gpus = {r.rule: r.gpus for r in study_requests(config, 70_000_000_000)}
    one_copy = (gpus["evaluate_baseline"], gpus["merge_adapter"])
    two_copies = (gpus["verify_merge"], gpus["validate_run"])
    assert one_copy == (3, 3) and two_copies == (5, 5)
    config["resources"]["gpu_mem_gb"] = 141
    assert job_request("verify_merge", config, 70_000_000_000, "lora").gpus == 3


def test_validation_is_sized_by_the_model_for_its_weight_analysis() -> None:
    """validate_run asks memory for 4 copies of the weights and a runtime that grows with the model (its weight
    analysis): the embedded model's defaults stay small, a 7B model's run for hours (on the CPU: six times the
    GPU rate), resources.validate_run wins."""
    small = job_request("validate_run", study(22_000_000), None, "full")
    large = job_request("validate_run", study(7_000_000_000, "bfloat16"), None, "full")
    assert (small.mem_mb, small.runtime, small.gpus) == (2500, 31, 1)
    assert large.mem_mb == 55500 and large.runtime == 30 + 12 * 7  # 2000 + 4 x 14 GB (bf16), on its GPU
    on_cpu = study(7_000_000_000, "bfloat16", lora={"type": "lora"})
    assert job_request("validate_run", on_cpu, None, "lora").runtime == 30 + 12 * 6 * 7  # 8.9 hours
    config = study(7_000_000_000)
    config["resources"]["validate_run"] = {"mem_mb": 9000, "runtime": 600}
    assert job_request("validate_run", config, None, "full").retry(2).runtime == 1200


def test_config_overrides_win_and_retry_doubles() -> None:
    """resources.<rule> and methods.<name>.resources replace the estimate; attempt 2 doubles memory and runtime."""
    config = study(full={"type": "full", "resources": {"mem_mb": 3000, "runtime": 45}})
    config["resources"]["verify_merge"] = {"mem_mb": 1234, "runtime": 7}
    train = job_request("train_run", config, None, "full")
    assert (train.mem_mb, train.runtime) == (3000, 45)
    assert (train.retry(2).mem_mb, train.retry(2).runtime) == (6000, 90)
    config["methods"]["lora"] = validate_config({**config, "methods": {"lora": {"type": "lora"}}})["methods"]["lora"]
    verify = job_request("verify_merge", config, None, "lora")
    assert (verify.mem_mb, verify.runtime) == (1234, 7)


def test_unknown_size_assumes_a_billion_parameters() -> None:
    """A model not on disk (None) is sized as DEFAULT_PARAMETERS."""
    config = study()
    assert job_request("evaluate_baseline", config, None) == job_request(
        "evaluate_baseline", config, DEFAULT_PARAMETERS
    )


def test_light_jobs_take_one_thread_and_training_its_method_cpus() -> None:
    """Scoring and merging: one thread at any size; validation (with the weight analysis), the baseline, the merge
    check and the base representations: one thread for a small model, two for a large or unknown one; training:
    methods.<name>.resources.cpus."""
    small, large = 22_000_000, 7_000_000_000
    assert job_threads("evaluate_run", large) == job_threads("merge_adapter", large) == 1
    assert job_threads("validate_run", small) == 1
    assert job_threads("validate_run", large) == job_threads("validate_run", None) == 2
    assert job_threads("validate_run", SMALL_MODEL) == 2 and job_threads("verify_merge", large) == 2
    for rule in ("evaluate_baseline", "verify_merge", "extract_base_representations"):
        assert job_threads(rule, small) == 1 and job_threads(rule, None) == 2
    config = study(**{"full": {"type": "full", "resources": {"cpus": 6}}})
    assert job_request("train_run", config, small, "full").cpus == 6
    assert job_request("evaluate_run", config, small, "full").cpus == 1
    assert job_request("evaluate_baseline", config, small).cpus == 1
    assert job_request("evaluate_baseline", config, large).cpus == 2


def test_tiny_study_fits_the_one_node_cluster() -> None:
    """The demo-sized study passes on the recorded test cluster with squeue status."""
    placed, findings = diagnose(study_requests(study(), 22_713_728), ONE_NODE, SQUEUE)
    assert findings == [] and {p for _, p in placed} == {"debug", "local"}
    assert {r.rule for r, p in placed if p == "local"} == set(LOCAL_RULES) - {"all", "smoke", "evaluate_gate"}
    assert "every request fits the cluster" in render(ONE_NODE, placed, findings, 22_713_728, "squeue")


def workflow_rules() -> set[str]:
    """The names of the `rule NAME:` and `checkpoint NAME:` lines of the Snakefile and rules/*.smk."""
    files = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    pattern = re.compile(r"^(?:rule|checkpoint) (\w+):", re.MULTILINE)
    return {m for f in files for m in pattern.findall(f.read_text(encoding="utf-8"))}


def test_requests_know_every_rule_of_the_workflow() -> None:
    """The rules the requests (and so the doctor) know are exactly the workflow's: a new rule cannot be forgotten."""
    assert len(workflow_rules()) > 15
    assert set(RULES) == workflow_rules()


def test_doctor_lists_every_job_rule_with_the_light_ones_local() -> None:
    """A study with a gate and representations: the doctor lists a job of every rule, the light ones as local and
    unchecked (a 1 MB node fits none of the node jobs), the targets by name."""
    config = study(full={"type": "full", "gate": {"enabled": True}}, lora={"type": "lora"})
    placed, findings = diagnose(study_requests(config, 22_000_000), ONE_NODE, SQUEUE)
    assert {r.rule for r, _ in placed} == {rule for rule, s in RULES.items() if s.job}
    assert {r.rule for r, p in placed if p == "local"} == set(LOCAL_RULES) - {"all", "smoke"}
    tiny = ONE_NODE.__class__({"debug": replace(ONE_NODE.partitions["debug"], mem_mb=1)}, False, "x", 86400, "22")
    _, findings = diagnose(study_requests(config, 22_000_000), tiny, SQUEUE)
    failing = {f.rule for f in findings if f.severity == "error"}
    assert failing == {rule for rule, s in RULES.items() if s.job and not s.local}
    text = render(ONE_NODE, placed, [], 22_000_000, "squeue")
    assert re.search(r"^compare_runs\s+-\s+local\s", text, re.MULTILINE) and "no job of their own): all, smoke" in text


def test_local_rules_are_the_light_jobs() -> None:
    """Targets, checks, scoring, drift and bookkeeping run beside Snakemake; no job that loads the model's weights,
    trains or analyses them is local."""
    assert set(LOCAL_RULES) == {
        "all",
        "smoke",
        "check_model",
        "prepare_data",
        "evaluate_gate",
        "evaluate_run",
        "compute_drift",
        "plot_drift",
        "plot_training_curves",
        "compare_runs",
        "summarize_lineage",
    }
    for rule in (
        "evaluate_baseline",
        "extract_base_representations",
        "pilot_run",
        "train_run",
        "validate_run",
        "merge_adapter",
        "verify_merge",
        "run_smoke_test",
    ):
        assert not RULES[rule].local, rule


def test_every_job_rule_is_sized_and_light_jobs_fixed() -> None:
    """Every rule with jobs has a request; the local (light) jobs ask the same memory whatever the model, the jobs
    on a node more for a larger one."""
    config = study(full={"type": "full", "gate": {"enabled": True}}, lora={"type": "lora"})
    small = {(r.rule, r.method): r for r in study_requests(config, 22_000_000)}
    config["resources"]["model_parameters"] = 7_000_000_000
    large = {(r.rule, r.method): r for r in study_requests(config, None)}
    for job, request in small.items():
        assert request.mem_mb > 0 and request.runtime > 0 and request.cpus >= 1, job
        assert (large[job].mem_mb > request.mem_mb) == (not request.local), job


def test_slurm_resources_of_training_per_node() -> None:
    """The executor's resources of training: per-node gres for several nodes, one task per node on CPU, whole-job
    gpu on one node; other jobs name only their GPUs."""
    config = study(
        multi={"type": "full", "resources": {"nodes": 2, "gpus": 4, "cpus": 8}},
        cpu={"type": "full", "resources": {"nodes": 2, "cpus": 3}},
        one={"type": "lora", "resources": {"gpus": 1, "cpus": 1}},
    )
    resources = {m: slurm_resources(job_request("train_run", config, 22_000_000, m)) for m in ("multi", "cpu", "one")}
    assert resources == {
        "multi": {"gpu": 0, "nodes": 2, "gres": "gpu:4", "tasks": 0, "cpus_per_gpu": 2},
        "cpu": {"gpu": 0, "nodes": 2, "gres": "", "tasks": 2, "cpus_per_gpu": 0},
        "one": {"gpu": 1, "nodes": 1, "gres": "", "tasks": 0, "cpus_per_gpu": 1},
    }
    assert slurm_resources(job_request("verify_merge", config, 22_000_000, "one")) == {"gpu": 1}


def test_doctor_reads_set_resources_numbers_and_attempt_expressions() -> None:
    """The doctor checks a set-resources number or `N * attempt` as its first attempt, and its doubled retry."""
    config = study(full={"type": "full"})
    for value in (20000, "20000 * attempt"):
        profile = {**SQUEUE, "set-resources": {"validate_run": {"mem_mb": value}}}
        placed, findings = diagnose(study_requests(config, 22_000_000), ONE_NODE, profile)
        assert [r.mem_mb for r, _ in placed if r.rule == "validate_run"] == [20000]
        assert [(f.severity, f.rule) for f in findings] == [("warning", "validate_run")]


def test_retry_expression_doubles_on_attempt_two() -> None:
    """A fixed override becomes an expression of the attempt: the value on attempt 1, twice it on attempt 2."""
    expression = retry_expression(3000)
    assert [eval(expression, {"attempt": a}) for a in (1, 2)] == [3000, 6000]  # noqa: S307 - our own expression


def test_scale_doc_tables_are_the_module_s() -> None:
    """docs/scale.md's request tables are what `python -m tunetrace.cluster.requests --markdown` prints now."""
    doc = (REPO / "docs" / "scale.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- requests:begin[^>]*-->\n(.*?)\n<!-- requests:end -->", doc, re.DOTALL)
    assert block, "docs/scale.md: no <!-- requests:begin --> ... <!-- requests:end --> block"
    assert block.group(1).strip() == markdown().strip(), (
        "docs/scale.md's request tables are stale: paste the output of python -m tunetrace.cluster.requests --markdown"
    )


def test_impossible_memory_names_rule_and_key() -> None:
    """An 8B float32 model's evaluation cannot fit 24 GB: the error names the rule, both numbers and the key."""
    _, findings = diagnose(study_requests(study(8_000_000_000), None), ONE_NODE, SQUEUE)
    errors = [f.message for f in findings if f.severity == "error"]
    assert any(
        m.startswith("evaluate_baseline requests 63500 MB of memory")
        and "has 24105" in m
        and "resources.evaluate_baseline.mem_mb" in m
        for m in errors
    )


def test_too_many_gpus_and_missing_partition() -> None:
    """Four GPUs on a one-GPU node and an unknown partition are errors naming the fix."""
    config = study(full={"type": "full", "resources": {"gpus": 4}})
    profile = {**SQUEUE, "set-resources": {"validate_run": {"slurm_partition": "gpu"}}}
    _, findings = diagnose(study_requests(config, 22_000_000), ONE_NODE, profile)
    messages = [f.message for f in findings]
    assert any("train_run (method full) requests 4 GPUs" in m and "methods.full.resources.gpus" in m for m in messages)
    assert any("partition 'gpu' does not exist" in m for m in messages)


def test_doctor_checks_the_gpus_of_a_big_models_inference_jobs() -> None:
    """A 70B model's merge check asks 5 GPUs; on one-GPU nodes the doctor says so and names resources.gpu_mem_gb."""
    config = study(lora={"type": "lora", "resources": {"gpus": 1}})
    config["model"]["dtype"] = "bfloat16"
    _, findings = diagnose(study_requests(config, 70_000_000_000), ONE_NODE, SQUEUE)
    merge_check = [f.message for f in findings if f.rule == "verify_merge" and "GPUs" in f.message]
    assert len(merge_check) == 1 and "requests 5 GPUs" in merge_check[0]
    assert "resources.gpu_mem_gb" in merge_check[0]


def test_profile_partition_and_time_limit() -> None:
    """Jobs placed in the site's gpu partition by the profile are checked against its 1-day limit."""
    config = study(full={"type": "full", "resources": {"gpus": 4, "runtime": 3000}})
    profile = {"set-resources": {"train_run": {"slurm_partition": "gpu"}}}
    placed, findings = diagnose(study_requests(config, 22_000_000), SITE, profile)
    assert dict(((r.rule, r.method), p) for r, p in placed)[("train_run", "full")] == "gpu"
    assert [f.message for f in findings if f.rule == "train_run"] == [
        "train_run (method full) requests 3000 min; partition 'gpu' allows 1440: set "
        "methods.full.resources.runtime to at most 1440"
    ]
    assert any("requests 1 GPUs" in f.message and "'cpu'" in f.message for f in findings)  # baseline in cpu


def test_retry_beyond_the_node_is_a_warning() -> None:
    """A first attempt that fits but whose doubled retry does not is a warning, not an error (for training and the
    smoke test, which asks what training asks)."""
    config = study(full={"type": "full", "resources": {"mem_mb": 20000}})
    _, findings = diagnose(study_requests(config, 22_000_000), ONE_NODE, SQUEUE)
    assert sorted((f.severity, f.rule) for f in findings) == [("warning", "run_smoke_test"), ("warning", "train_run")]


@pytest.mark.parametrize(
    ("profile", "age", "accounting", "expected"),
    [
        ({}, 86400, False, "slurm-status-command: squeue"),  # the silent hang of the issue
        (SQUEUE, 60, False, "MinJobAge >= 120"),  # the executor would fall back to sacct
        (SQUEUE, 86400, False, None),
        ({}, 300, True, None),
    ],
)
def test_status_command_against_accounting(profile: dict, age: int, accounting: bool, expected: str | None) -> None:
    """sacct without accounting, or squeue with a short MinJobAge, is an error naming the fix."""
    facts = ONE_NODE.__class__(ONE_NODE.partitions, accounting, "x", age, "22.05.8")
    messages = [f.message for f in status_findings(facts, profile)]
    if expected is None:
        assert messages == []
    else:
        assert len(messages) == 1 and expected in messages[0]


def test_doctor_without_slurm_says_where_to_run_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """No sinfo on PATH: exit 2 with one line saying to run it on a login node (the study is still read first)."""
    from tunetrace.cli import main

    (tmp_path / "config.yaml").write_text(
        "model: {}\nseeds: [0]\nmethods: {m: {type: lora}}\ntasks: {t: {source: {train: x.csv}, labels: [a, b]}}\n"
    )
    monkeypatch.setenv("PATH", str(tmp_path))
    code = main(
        [
            "doctor",
            "--profile",
            str(Path(__file__).parents[1] / "profiles" / "slurm"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(tmp_path / "config.yaml"),
        ]
    )
    assert code == 2 and "`sinfo` is not installed here" in capsys.readouterr().err


def test_doctor_names_a_missing_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """An unknown profile name is an error naming install.sh."""
    from tunetrace.cli import main

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["doctor", "--profile", "no_such_profile"]) == 2
    assert "bash profiles/install.sh no_such_profile" in capsys.readouterr().err


def test_every_rule_that_can_get_gpus_asks_slurm_for_them() -> None:
    """A rule whose request can hold GPUs (training, every inference job of models.placement) passes them to Slurm in
    its resources block: a request the rule never hands over would leave the job on the CPU."""
    from tunetrace.cluster.requests import GPU_COPIES, TRAINING_RULES

    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "rules").glob("*.smk")))
    missing = [rule for rule in (*TRAINING_RULES, *GPU_COPIES) if f'gpu=get_slurm("{rule}", "gpu")' not in text]
    assert missing == []


def counted_study(tmp_path: Path, rows: int, epochs: int, **task: Any) -> dict:
    """A one-task study whose training file (rows of 100 bytes, a header line) is counted at the DAG build."""
    lines = ["text,label"] + [f"{'x' * 96},a" for _ in range(rows)]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    config = study(1_000_000_000, full={"type": "full", "batch_size": 10, "epochs": epochs})
    config["tasks"]["t"] = {
        **config["tasks"]["t"],
        "source": {**config["tasks"]["t"]["source"], "train": str(tmp_path / "train.csv")},
        **task,
    }
    return config


def test_training_runtime_follows_the_work_in_hand_arithmetic(tmp_path: Path) -> None:
    """train_run's limit is start-up and loading plus 1.5 x its work: 100 counted rows x 2 epochs at batch 10 are
    20 steps; at max_length 8 that is 1,600 tokens; x 1e9 parameters x 6 FLOPs is 9.6e12 FLOPs at 2 CPU threads
    (the default cpus) x 25 GFLOP/s, 192 s; one final checkpoint of 1e9 x (4 + 12) B at 500 MB/s, 32 s.
    30 + 6 (1 min per 1e9, x 6 on the CPU) + 1.5 x 224 s = 41.6 min -> 42; four epochs: 36 + 1.5 x 416 s -> 47."""
    from tunetrace.cluster.requests import training_work

    config = counted_study(tmp_path, rows=100, epochs=2, max_length=8)
    work = training_work("train_run", config, "full", "t")
    assert (work.steps, work.train_tokens, work.eval_tokens, work.checkpoints) == (20, 1600, 0, 1)
    assert job_request("train_run", config, None, "full", "t").runtime == 42
    longer = counted_study(tmp_path, rows=100, epochs=4, max_length=8)
    assert job_request("train_run", longer, None, "full", "t").runtime == 47


def test_short_texts_count_fewer_tokens_than_max_length(tmp_path: Path) -> None:
    """Rows of 100 bytes at max_length 512 count 100 / 2.5 = 40 tokens each, not 512."""
    from tunetrace.cluster.requests import training_work

    config = counted_study(tmp_path, rows=100, epochs=1, max_length=512)
    assert training_work("train_run", config, "full", "t").train_tokens == 10 * 10 * 40


def test_uncountable_examples_fall_back_to_the_model_size_and_a_cap_counts() -> None:
    """A hub split cannot be counted at the DAG build: train_run asks 240 min per 1e9 parameters on top (x 6 on
    the CPU); with max_train_examples the cap is the count. The pilot needs no count (gate.pilot_steps)."""
    config = study(1_000_000_000, full={"type": "full", "resources": {"gpus": 1}})
    config["tasks"]["t"]["source"] = {
        **config["tasks"]["t"]["source"],
        "format": "hub",
        "hub_id": "glue",
        "train": None,
    }
    assert job_request("train_run", config, None, "full", "t").runtime == 30 + 1 + 240
    config["tasks"]["t"]["max_train_examples"] = 1000
    capped = job_request("train_run", config, None, "full", "t").runtime
    assert 31 < capped < 60  # 300 steps of 16 x 128 tokens at 100 TFLOP/s: a few minutes


def test_data_files_are_counted_without_reading_them_as_tables(tmp_path: Path) -> None:
    """CSV/TSV count lines less the header, JSON Lines its lines, a JSON array its items, SQuAD its questions,
    Parquet its footer's rows; a missing file or a hub split is unknown; an edited file is counted again."""
    import json

    import pandas as pd

    from tunetrace.data.counting import count_examples, mean_bytes_per_example

    (tmp_path / "a.tsv").write_text("text\tlabel\nx\ta\ny\tb")  # no newline at the end
    (tmp_path / "a.jsonl").write_text('{"t": 1}\n{"t": 2}\n{"t": 3}\n')
    (tmp_path / "a.json").write_text(json.dumps([{"t": 1}, {"t": 2}]))
    squad = {"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1"}, {"id": "2"}]}, {"qas": [{"id": "3"}]}]}]}
    (tmp_path / "s.json").write_text(json.dumps(squad))
    pd.DataFrame({"t": range(7)}).to_parquet(tmp_path / "a.parquet")
    counts = [count_examples(tmp_path / n) for n in ("a.tsv", "a.jsonl", "a.json", "s.json", "a.parquet")]
    assert counts == [2, 3, 2, 3, 7]
    assert count_examples(tmp_path / "s.json", "squad") == 3
    assert count_examples(tmp_path / "missing.csv") is None and count_examples("glue", "hub") is None
    assert (
        mean_bytes_per_example(tmp_path / "a.jsonl") == 27 / 3
        and mean_bytes_per_example(tmp_path / "a.parquet") is None
    )
    (tmp_path / "a.jsonl").write_text('{"t": 1}\n' * 5)
    assert count_examples(tmp_path / "a.jsonl") == 5


def test_a_training_job_is_sized_by_its_own_task(tmp_path: Path) -> None:
    """Two tasks, one ten times the other: each train_run job asks for its own task's work, and the request table
    (no task) for the longer."""
    config = counted_study(tmp_path, rows=1000, epochs=2, max_length=8)
    (tmp_path / "small.csv").write_text("text,label\n" + f"{'x' * 96},a\n" * 100)
    config["tasks"]["small"] = {
        **config["tasks"]["t"],
        "source": {**config["tasks"]["t"]["source"], "train": str(tmp_path / "small.csv")},
    }
    big, small = (job_request("train_run", config, None, "full", t).runtime for t in ("t", "small"))
    assert big > small
    assert job_request("train_run", config, None, "full").runtime == big
