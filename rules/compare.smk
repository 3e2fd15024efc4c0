rule compare_runs:
    input:
        unpack(get_comparison_inputs),
    output:
        # update(): Snakemake leaves them in place (and puts them back if the job fails), so a refused
        # comparison (forged input, strict red flag) keeps the previous one
        comparison=update("results/comparison.json"),
        markdown=update(
            report(
                "results/comparison.md",
                caption="../report/comparison.rst",
                category="Comparison",
            )
        ),
    params:
        study=get_comparison_params,
        validation=get_strict_params,
        code=get_code_params("compare_runs"),
    log:
        "logs/compare_runs/compare_runs.log",
    benchmark:
        "benchmarks/compare_runs/compare_runs.tsv"
    threads: get_threads("compare_runs")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("compare_runs"),
        runtime=get_runtime("compare_runs"),
    script:
        "../workflow_scripts/compare_runs.py"



# At DAG build (get_comparison_inputs, rules/common.smk): a final output edited by hand (its bytes no longer the
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
