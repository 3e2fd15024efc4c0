# Resources of every job, asked of tunetrace.cluster.requests (the one place for memory, runtime, GPUs, nodes,
# tasks and threads): jobs that load the model are sized by it and the method, light jobs ask a fixed request and
# run beside Snakemake (LOCAL_RULES). Memory and runtime grow with the attempt. Scheduling only: none of it
# reaches a job's params, so moving a study to a bigger node reruns nothing.
from tunetrace.cluster.requests import LOCAL_RULES, RETRY_SCALED, job_request, retry_expression, slurm_resources
from snakemake.resources import Resource

from tunetrace.models.size import parameter_count

# Counted once per DAG build, from the safetensors headers (no weights loaded, no network).
MODEL_PARAMETERS = parameter_count(config["model"]["name_or_path"], config["model"]["revision"])


def _request(rule, wildcards):
    method = getattr(wildcards, "method", None) or getattr(wildcards, "lora_method", None)
    return job_request(rule, config, MODEL_PARAMETERS, method, getattr(wildcards, "task", None))


def get_mem_mb(rule):
    """Host memory of the rule's job in MB; attempt 2 gets twice the first attempt's."""

    def mem_mb(wildcards, attempt):
        return _request(rule, wildcards).mem_mb * attempt

    return mem_mb


def get_runtime(rule):
    """Wall-clock limit of the rule's job in minutes; a retry (resuming from its checkpoint) gets more."""

    def runtime(wildcards, attempt):
        return _request(rule, wildcards).runtime * attempt

    return runtime


def get_slurm(rule, name):
    """One of the Slurm executor's resources of the rule's job (gpu, nodes, gres, tasks, cpus_per_gpu):
    GPUs only where the method has them (a CPU-only method's jobs ask Slurm for none)."""

    def resource(wildcards):
        return slurm_resources(_request(rule, wildcards))[name]

    return resource


def get_threads(rule):
    """Threads of the rule's job: the method's cpus for training, one where the work is light."""

    def threads(wildcards):
        return _request(rule, wildcards).cpus

    return threads


def scale_profile_overrides():
    """A profile's set-resources mem_mb / runtime given as a number grow with the attempt, as the derived requests
    do: each becomes the expression `N * attempt`. Snakemake applies these overrides as each rule is defined and
    passes them on to the jobs (where the expression is kept as it is), so this runs before any rule."""
    for resources in workflow.resource_settings._parsed_overwrite_resources.values():
        for name in RETRY_SCALED:
            value = resources.get(name)
            if not value.is_evaluable() and isinstance(value.value, int):
                resources[name] = Resource.from_cli_expression(name, retry_expression(value.value))


scale_profile_overrides()
# Light jobs run beside Snakemake: a cluster run submits only the jobs that need a node.
workflow.localrules(*LOCAL_RULES)

# The jobs on the way to training (the baseline and the gate's pilot when the gate is on) and training itself
# go first whenever they are ready: the longest jobs start earliest, and the light jobs of finished runs fill the
# cores beside them. Without it Snakemake prefers jobs with larger inputs, i.e. the evaluations of finished runs,
# and a study's last training can start late and run alone (the wall time then rests on the luck of that order).
TRAINING_PATH_PRIORITY = 10
