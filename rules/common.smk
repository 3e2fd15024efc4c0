# Input functions: which files each rule reads, derived from the config.

def get_data_sources(wildcards):
    """The task's local data files, so editing one reruns that task's jobs."""
    source = config["tasks"][wildcards.task]["source"]
    if source["format"] == "hub":
        return []
    return [source[split] for split in ("train", "eval") if source.get(split)]


def get_comparison_inputs(wildcards):
    refuse_edited_final_outputs()  # a hand-edited comparison is refused at DAG build (below)
    runs = [(m, t, s) for m in METHODS for t in TASKS for s in SEEDS]
    lora_runs = [(m, t, s) for (m, t, s) in runs if m in LORA_METHODS]
    return {
        "baselines": [f"results/baseline/{t}/metrics.json" for t in TASKS],
        "manifests": [f"results/data/{t}/manifest.json" for t in TASKS],
        "evals": [f"results/eval/{m}/{t}/seed{s}/metrics.json" for m, t, s in runs],
        "runs": [f"results/runs/{m}/{t}/seed{s}/run.json" for m, t, s in runs],
        "merge_checks": [f"results/merge_checks/{m}/{t}/seed{s}.json" for m, t, s in lora_runs],
        "validations": [f"results/validation/{m}/{t}/seed{s}.json" for m, t, s in runs],
        "curve_plots": [f"results/plots/training/{t}_loss_curves.png" for t in TASKS],
        **(get_drift_inputs(runs) if config["representations"]["enabled"] else {}),
    }


def get_task_curve_inputs(wildcards):
    """Training logs and validation reports of one task's runs, in the same (method, seed) order."""
    runs = [(m, s) for m in METHODS for s in SEEDS]
    return {
        "logs": [f"results/runs/{m}/{wildcards.task}/seed{s}/train_log.jsonl" for m, s in runs],
        "validations": [f"results/validation/{m}/{wildcards.task}/seed{s}.json" for m, s in runs],
    }


def get_task_drift_tables(wildcards):
    return [f"results/drift/{m}/{wildcards.task}/seed{s}.parquet" for m in METHODS for s in SEEDS]


# The weight-space analysis of a run's update (results/weights/, with representations on) is written by
# validate_run, which checks it: that job has imported torch and transformers and loaded the final model already,
# where a job of its own paid both again for each run (BENCHMARKS.md, "The demo end to end").
WEIGHT_ANALYSIS_OUTPUT = (
    {"weights": "results/weights/{method}/{task}/seed{seed}.json"} if config["representations"]["enabled"] else {}
)


def get_drift_inputs(runs):
    """Drift tables, weight analyses and per-task drift plots of every run (every task type), for the comparison."""
    return {
        "drift": [f"results/drift/{m}/{t}/seed{s}.parquet" for m, t, s in runs],
        "weights": [f"results/weights/{m}/{t}/seed{s}.json" for m, t, s in runs],
        "drift_plots": [f"results/plots/drift/{t}_final_cka_by_layer.png" for t in sorted({t for _, t, _ in runs})],
    }


def get_model_check(wildcards):
    """Input function of every job that loads the base model: the task's model check.

    While the check is to (re)run it is a plain input: the job waits for it, and a dry run lists the job
    as one that may rerun. Once it has run, Snakemake asks again and gets it as an ancient() input: the
    check being rewritten (it reruns when any LoRA method's target_modules or its own code change) reruns
    no job; the job's own params, code and other inputs decide."""
    return ancient(checkpoints.check_model.get(task=wildcards.task).output.summary)


def get_gate_input(wildcards):
    """The GO/NO-GO decision: an input of train_run only for methods with gate.enabled."""
    if config["methods"][wildcards.method]["gate"]["enabled"]:
        return [f"results/gates/{wildcards.method}/{wildcards.task}/seed{wildcards.seed}.json"]
    return []


def get_smoke_input(wildcards):
    """The smoke report of this method and task: an input of train_run only with validation.smoke_before_training."""
    if config["validation"]["smoke_before_training"]:
        return [f"results/smoke/{wildcards.method}/{wildcards.task}.json"]
    return []


def get_smoke_targets(wildcards):
    return [f"results/smoke/{m}/{t}.json" for m in METHODS for t in TASKS]


# At DAG build (get_comparison_inputs): a final output edited by hand (its bytes no longer the
# ones its record holds) stops the call with the fix, unless the call already reruns compare_runs; it is never
# left beside a disagreeing twin. Snakemake hands the call's settings to the workflow only after parsing, so the
# check runs in the input function, not at include time.
FINAL_OUTPUTS = ("results/comparison.json", "results/comparison.md")


def _reruns_comparison(settings):
    forced = {os.path.normpath(str(item)) for item in settings.forcerun}
    targets = {os.path.normpath(str(item)) for item in settings.targets}
    return (settings.forceall or "compare_runs" in forced or bool(forced & set(FINAL_OUTPUTS))
            or (settings.forcetargets and bool(targets & {*FINAL_OUTPUTS, "compare_runs"})))


def refuse_edited_final_outputs():
    from snakemake.settings.types import ExecMode

    from tunetrace.provenance.integrity import edited_final_outputs, repair_command

    settings = workflow.dag_settings
    if settings is None or workflow.exec_mode != ExecMode.DEFAULT or _reruns_comparison(settings):
        return  # a job's own process (cluster, subprocess) plans nothing; a forced rerun rebuilds both
    edited = edited_final_outputs(FINAL_OUTPUTS)
    if edited:
        details = "; ".join(f"{p.path}: {p.detail}" for p in edited)
        raise WorkflowError(f"tunetrace: {details}. Outputs are never edited by hand (docs/lineage.md); rebuild "
                            f"results/comparison.json and results/comparison.md from their inputs with: "
                            f"{repair_command([FINAL_OUTPUTS[0]])} (add the options you run the study with, "
                            f"e.g. --configfile)")
