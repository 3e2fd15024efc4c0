rule plot_training_curves:
    input:
        unpack(get_task_curve_inputs),
    output:
        plot=report(
            "results/plots/training/{task}_loss_curves.png",
            caption="../report/training_curves.rst",
            category="Training curves",
        ),
    params:
        code=get_code_params("plot_training_curves"),
    log:
        "logs/plot_training_curves/{task}.log",
    benchmark:
        "benchmarks/plot_training_curves/{task}.tsv"
    threads: get_threads("plot_training_curves")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("plot_training_curves"),
        runtime=get_runtime("plot_training_curves"),
    script:
        "../workflow_scripts/plot_training_curves.py"
