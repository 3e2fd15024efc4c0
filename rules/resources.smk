# Resources of the model jobs, derived from the base model's size and the method (tunetrace.cluster.requests):
# memory and runtime grow with the attempt, GPUs only where the method has them. Scheduling only: none of it
# reaches a job's params, so moving a study to a bigger node reruns nothing.
from tunetrace.cluster.requests import job_request, job_threads
from tunetrace.models.size import parameter_count

# Counted once per DAG build, from the safetensors headers (no weights loaded, no network).
MODEL_PARAMETERS = parameter_count(config["model"]["name_or_path"], config["model"]["revision"])


def _request(rule, wildcards):
    method = getattr(wildcards, "method", None) or getattr(wildcards, "lora_method", None)
    return job_request(rule, config, MODEL_PARAMETERS, method)


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


def get_gpus(rule):
    """GPUs of the rule's job: 0 for a CPU-only method (Slurm is then asked for none)."""

    def gpus(wildcards):
        return _request(rule, wildcards).gpus

    return gpus


def get_threads(rule):
    """Threads of a job that is not training: one where the work is light (tunetrace.cluster.requests)."""
    return job_threads(rule, config["resources"]["model_parameters"] or MODEL_PARAMETERS)


# The jobs on the way to training (the baseline and the gate's pilot when the gate is on) and training itself
# go first whenever they are ready: the longest jobs start earliest, and the light jobs of finished runs fill the
# cores beside them. Without it Snakemake prefers jobs with larger inputs, i.e. the evaluations of finished runs,
# and a study's last training can start late and run alone (the wall time then rests on the luck of that order).
TRAINING_PATH_PRIORITY = 10
