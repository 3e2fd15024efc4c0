rule summarize_lineage:
    input:
        comparison="results/comparison.json",
    output:
        summary=report(
            "results/lineage/summary.html",
            caption="../report/lineage.rst",
            category="Lineage",
        ),
        audit="results/lineage/audit.json",
    params:
        code=get_code_params("summarize_lineage"),
    log:
        "logs/summarize_lineage/summarize_lineage.log",
    benchmark:
        "benchmarks/summarize_lineage/summarize_lineage.tsv"
    threads: get_threads("summarize_lineage")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("summarize_lineage"),
        runtime=get_runtime("summarize_lineage"),
    script:
        "../workflow_scripts/summarize_lineage.py"
