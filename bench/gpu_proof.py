"""GPU proof: what one H100/H200 does with tunetrace's own training path, in one call of under 8 minutes.

Trains a random-weight Llama-style decoder (about 1B parameters, built locally: no hub) on the causal_lm
task type through `tunetrace.training.launch.run_training` (the train_run job's code), each configuration
in its own process as the workflow runs it:

- bf16 full fine-tuning and LoRA: tokens/s, MFU against --peak-tflops (989: H100/H200 dense bf16), peak
  GPU memory;
- DeepSpeed ZeRO-2 and ZeRO-3 on one GPU (accelerate launch --use_deepspeed, the model created sharded);
- the merge check of the LoRA run in bf16 (stages.merge.merge_adapter, then the task type's
  merge_check) with dtype-aware tolerances;
- kill-and-resume: a LoRA run SIGKILLed after its first checkpoint and run again must end where an
  uninterrupted run ends.

Writes gpu_proof.json and gpu_proof.md into --out. `--tiny` does the same on CPU with the 2-layer tiny
Llama in fp32 and a few steps (DeepSpeed on its CPU accelerator): CI runs it (tests/test_gpu_proof.py), so
the script is known to work before a GPU sees it. Run it with bench/gpu_proof.sh OUT_DIR [--tiny].
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "pkg"))

log = logging.getLogger("gpu_proof")

# ~1.0B parameters with the tiny models' 30,522-token vocabulary (tied embeddings), Llama-style.
GPU_SIZES = {"hidden": 2048, "layers": 18, "heads": 16, "intermediate": 5632, "positions": 2048}
PROFILES: dict[str, dict[str, Any]] = {
    "gpu": {
        "sizes": GPU_SIZES,
        "dtype": "bfloat16",
        "precision": "bf16",
        "seq_len": 1024,
        "batch_size": 8,
        "steps": 20,
        "warmup": 5,
        "resume_steps": 12,
        "resume_save_every": 4,
        "lora_r": 16,
        "words": 1100,
    },
    "tiny": {
        "sizes": None,
        "dtype": "float32",
        "precision": "fp32",
        "seq_len": 64,
        "batch_size": 4,
        "steps": 4,
        "warmup": 1,
        "resume_steps": 6,
        "resume_save_every": 2,
        "lora_r": 4,
        "words": 80,
    },
}
# Each seed study's architecture twin (models/twins.py) at about 1.0B parameters (models/size.py counts them), trained
# with LoRA on the seed study's targets through the train_run job's code; tiny mode uses the default twin sizes.
TWIN_BASE = {
    "hidden": 64,
    "layers": 2,
    "moe_layers": 4,
    "head_dim": 64,
    "kv_heads": 32,
    "intermediate": 5632,
    "experts": 4,
    "experts_per_token": 2,
}
TWINS: dict[str, dict[str, Any]] = {
    "meta-llama/Llama-2-7b-hf": {
        "sizes": {**TWIN_BASE, "layers": 17},
        "lora": {"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
    },
    "Qwen/Qwen2.5-14B": {
        "sizes": {**TWIN_BASE, "layers": 21},
        "lora": {"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
    },
    "openai/gpt-oss-20b": {
        "sizes": {**TWIN_BASE, "hidden": 1536, "moe_layers": 14, "intermediate": 1536, "experts": 8},
        "lora": {
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
            "target_parameters": ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"],
        },
    },
}
UNIT_ROUNDOFF = {"float32": 2.0**-24, "bfloat16": 2.0**-8, "float16": 2.0**-11}
WORDS = (
    "the model reads every token of a long document and learns which word comes next while the "
    "optimizer moves its weights a little at each step until the loss stops falling"
).split()


def build_model(out: Path, profile: dict[str, Any], gpu: bool) -> Path:
    """The random-weight decoder (tiny.build_tiny_decoder, scaled up on the GPU), saved in the profile's dtype."""
    from tunetrace.models.tiny import SIZES, build_tiny_decoder

    target = out / "model"
    if not (target / "config.json").is_file():
        build_tiny_decoder(
            target, "llama", sizes=profile["sizes"] or SIZES, dtype=profile["dtype"], device="cuda" if gpu else "cpu"
        )
    return target


def twin_runs(out: Path, profile: dict[str, Any], data_dir: Path, peak_tflops: float, gpu: bool) -> dict:
    """Each seed study's twin (bf16 on the GPU, at about 1B parameters): LoRA on the seed's targets, measured like
    the other runs (device, tokens/s, peak memory)."""
    from tunetrace.models.twins import TWIN_SIZES, build_twin

    results = {}
    for hub_id, twin in TWINS.items():
        name = "twin-" + hub_id.split("/")[-1].lower()
        model_dir = out / name
        if not (model_dir / "config.json").is_file():
            build_twin(
                model_dir,
                hub_id,
                sizes=twin["sizes"] if gpu else TWIN_SIZES,
                dtype=profile["dtype"],
                device="cuda" if gpu else "cpu",
            )
        method = method_config("lora", profile, gpu, profile["steps"], None)
        method["lora"].update(twin["lora"])
        log.info("training the %s twin", hub_id)
        results[hub_id] = measure(
            train(out, job_for(out, name, method, model_dir, data_dir, profile)), profile, model_dir, peak_tflops, gpu
        )
    return results


def write_data(out: Path, profile: dict[str, Any]) -> Path:
    """Prompt/completion JSONL: training completions longer than seq_len (every sequence is exactly seq_len
    tokens, so tokens/step is known), a short eval split for the merge check; prepared by the library."""
    from tunetrace.config import TaskSpec
    from tunetrace.stages.prepare import prepare_task_data

    rng = random.Random(0)
    rows = profile["batch_size"] * max(profile["steps"], profile["resume_steps"])
    for split, n, words in (("train", rows, profile["words"]), ("eval", 8, 24)):
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as handle:
            for i in range(n):
                text = " ".join(rng.choice(WORDS) for _ in range(words))
                handle.write(json.dumps({"id": f"{split}{i}", "prompt": f"continue {i}:", "completion": text}) + "\n")
    prepare_task_data(TaskSpec.from_dict("proof", task_config(out, profile)), out / "prepared")
    return out / "prepared"


def task_config(out: Path, profile: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "causal_lm",
        "source": {"train": str(out / "train.jsonl"), "eval": str(out / "eval.jsonl")},
        "id_field": "id",
        "max_length": profile["seq_len"],
        "primary_metric": "loss",
    }


def method_config(kind: str, profile: dict[str, Any], gpu: bool, steps: int, save_every: int | None) -> dict:
    """full / lora / zero2 / zero3, bf16 on the GPU (fp32 in tiny mode), one process."""
    lora = kind == "lora"
    method = {
        "type": "lora" if lora else "full",
        "learning_rate": 1e-4 if lora else 1e-5,
        "batch_size": profile["batch_size"],
        "max_steps": steps,
        "logging_steps": 1,
        "warmup_ratio": 0.0,
        "precision": profile["precision"],
        "save_every_steps": save_every,
        "lora": {"r": profile["lora_r"], "alpha": 2 * profile["lora_r"], "dropout": 0.0},
        "resources": {"gpus": 1 if gpu else 0},
    }
    if kind.startswith("zero"):
        method.update(deepspeed=kind, processes=1)
    return method


def job_for(out: Path, name: str, method: dict, model_dir: Path, data_dir: Path, profile: dict) -> Any:
    from tunetrace.training.launch import TrainingJob

    return TrainingJob(
        model={"name_or_path": str(model_dir), "dtype": profile["dtype"]},
        task_name="proof",
        task=task_config(out, profile),
        method_name=name,
        method=method,
        seed=0,
        data_dir=str(data_dir),
        run_dir=str(out / "runs" / name),
        resume_dir=str(out / "state" / name),
    )


def start(out: Path, job: Any) -> subprocess.Popen:
    """One training job in its own process (its own peak memory, as a workflow job), logging to logs/."""
    job_file = out / "jobs" / f"{job.method_name}.json"
    job_file.parent.mkdir(parents=True, exist_ok=True)
    job_file.write_text(json.dumps(dataclasses.asdict(job)))
    (out / "logs").mkdir(exist_ok=True)
    with open(out / "logs" / f"{job.method_name}.log", "ab") as handle:
        return subprocess.Popen(
            [sys.executable, __file__, "--job", str(job_file)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(REPO / "pkg")},
        )


def train(out: Path, job: Any) -> Path:
    proc = start(out, job)
    if proc.wait() != 0:
        raise RuntimeError(f"training {job.method_name} failed; see {out / 'logs' / job.method_name}.log")
    return Path(job.run_dir)


def train_log(run_dir: Path) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, (run_dir / "train_log.jsonl").read_text().splitlines()) if "loss" in r]


def flops_per_token(config: dict[str, Any], params: int, seq_len: int, lora: bool) -> float:
    """Training FLOPs per token: 6N (forward 2N, backward 4N) plus attention's 12 * layers * hidden * seq
    (PaLM, appendix B); LoRA computes no weight gradients of the base, so two thirds of it."""
    dense = 6 * params + 12 * config["num_hidden_layers"] * config["hidden_size"] * seq_len
    return dense * (2 / 3 if lora else 1)


def measure(run_dir: Path, profile: dict[str, Any], model_dir: Path, peak_tflops: float, gpu: bool) -> dict:
    """Tokens/s from the median step time after warm-up, MFU, peak memory, from the run's own records."""
    records, run = train_log(run_dir), json.loads((run_dir / "run.json").read_text())
    times = [r["step_time_s"] for r in records if r["step"] > profile["warmup"] and r.get("step_time_s")]
    tokens_per_s = profile["batch_size"] * profile["seq_len"] / statistics.median(times)
    config = json.loads((model_dir / "config.json").read_text())
    params = int(run["parameters"]["total"])
    flops = flops_per_token(config, params, profile["seq_len"], run["method_type"] == "lora")
    memory = run["memory"]
    return {
        "parameters": params,
        "trainable": int(run["parameters"]["trainable"]),
        "steps": run["global_steps"],
        "timed_steps": len(times),
        "tokens_per_s": tokens_per_s,
        "mfu": flops * tokens_per_s / (peak_tflops * 1e12) if gpu else None,
        "peak_gpu_memory_gib": memory.get("gpu_peak_allocated_mb", math.nan) / 1024 if gpu else None,
        "peak_cpu_rss_gib": memory["cpu_peak_rss_mb"] / 1024,
        "final_loss": records[-1]["loss"],
        "deepspeed": run.get("deepspeed"),
        "device": run["device"],
    }


def merge_check(out: Path, adapter_dir: Path, model_dir: Path, data_dir: Path, profile: dict, gpu: bool) -> dict:
    """Merge the LoRA adapter into the base in the profile's dtype and compare adapter and merged model with
    the task type's merge_check. A 16-bit merged weight W + BA is rounded to its dtype, so the loss may
    move by a few units of roundoff: tolerance max(evaluation.merge_tolerance, 8u), u = 2^-8 in bf16."""
    import torch

    from tunetrace.config import EvalSpec, ModelSpec, TaskSpec
    from tunetrace.data.readers import load_prepared
    from tunetrace.stages.merge import merge_adapter
    from tunetrace.tasks.dispatch import get_task_type

    spec, task = (
        ModelSpec.from_dict({"name_or_path": str(model_dir), "dtype": profile["dtype"]}),
        TaskSpec.from_dict("proof", task_config(out, profile)),
    )
    merged_dir = out / "merged"
    merge_adapter(spec, task, adapter_dir, merged_dir)
    task_type, device = get_task_type(task.type), "cuda" if gpu else "cpu"
    adapter = task_type.load_adapter_model(spec, task, adapter_dir).to(device)
    merged = task_type.load_model(spec, task, path=str(merged_dir)).to(device)
    evaluation = EvalSpec.from_dict({})
    check = task_type.merge_check(
        adapter, merged, task_type.load_tokenizer(spec, str(merged_dir)), load_prepared(data_dir)[1], task, evaluation
    )
    values = {q.name: q.value for q in check.quantities}
    loss_tol = max(evaluation.merge_tolerance, 8 * UNIT_ROUNDOFF[profile["dtype"]])
    relative_ppl = values["perplexity_abs_diff"] / check.details["perplexity_adapter"]
    del adapter, merged
    if gpu:
        torch.cuda.empty_cache()
    return {
        "dtype": profile["dtype"],
        **values,
        "relative_perplexity_diff": relative_ppl,
        **check.details,
        "loss_tolerance": loss_tol,
        "relative_perplexity_tolerance": math.expm1(loss_tol),
        "passed": values["loss_abs_diff"] <= loss_tol and relative_ppl <= math.expm1(loss_tol),
    }


def resume_check(out: Path, model_dir: Path, data_dir: Path, profile: dict, gpu: bool) -> dict:
    """A LoRA run SIGKILLed once its first checkpoint is complete (a later one may be complete by then too),
    then run again, against the same run uninterrupted: adapter weights and per-step losses. fp32 on CPU
    must be bitwise; bf16 on a GPU within 1e-3 (a kernel may choose another reduction order after the restart)."""
    from tunetrace.training.checkpoints import COMPLETE_MARKER

    steps, every = profile["resume_steps"], profile["resume_save_every"]
    jobs = {
        name: job_for(out, name, method_config("lora", profile, gpu, steps, every), model_dir, data_dir, profile)
        for name in ("resume_reference", "resume_killed")
    }
    reference = train(out, jobs["resume_reference"])
    killed = jobs["resume_killed"]
    proc = start(out, killed)
    marker = Path(killed.resume_dir) / f"checkpoint-{every}" / COMPLETE_MARKER
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if not marker.exists() or (Path(killed.run_dir) / "run.json").exists():
        raise RuntimeError(
            f"the run to kill ended before its checkpoint or finished before the kill; see "
            f"{out / 'logs'}/resume_killed.log"
        )
    resumed = train(out, killed)
    return compare_runs(reference, resumed, tolerance=0.0 if not gpu else 1e-3)


def compare_runs(reference: Path, resumed: Path, tolerance: float) -> dict[str, Any]:
    from safetensors.torch import load_file

    a, b = (load_file(str(d / "final" / "adapter_model.safetensors")) for d in (reference, resumed))
    weight_diff = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    la, lb = ([(r["step"], r["loss"]) for r in train_log(d)] for d in (reference, resumed))
    loss_diff = (
        max(abs(x[1] - y[1]) for x, y in zip(la, lb, strict=True))
        if [s for s, _ in la] == [s for s, _ in lb]
        else math.inf
    )
    run = json.loads((resumed / "run.json").read_text())
    return {
        "resumed_from_step": run["resumed_from_step"],
        "steps": run["global_steps"],
        "max_adapter_weight_diff": weight_diff,
        "max_loss_diff": loss_diff,
        "tolerance": tolerance,
        "bitwise": weight_diff == 0.0 and loss_diff == 0.0,
        "passed": bool(run["resumed_from_step"]) and weight_diff <= tolerance and loss_diff <= tolerance,
    }


def environment(gpu: bool) -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    versions = {p: md.version(p) for p in ("torch", "transformers", "accelerate", "peft", "deepspeed")}
    return {"device": torch.cuda.get_device_name(0) if gpu else "cpu", "cuda": torch.version.cuda, "versions": versions}


def markdown(result: dict[str, Any]) -> str:
    """The table of gpu_proof.md."""
    lines = [
        f"# GPU proof ({result['mode']}, {result['environment']['device']})",
        "",
        f"Model: random-weight Llama, {result['parameters'] / 1e9:.3f}B parameters, {result['dtype']}; "
        f"batch {result['batch_size']} x {result['seq_len']} tokens; MFU against {result['peak_tflops']:g} "
        "TFLOP/s.",
        "",
        "| run | tokens/s | MFU | peak GPU memory (GiB) | peak host RSS (GiB) | final loss |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in result["runs"].items():
        mfu = "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        gpu_mem = "n/a" if r["peak_gpu_memory_gib"] is None else f"{r['peak_gpu_memory_gib']:.2f}"
        lines.append(
            f"| {name} | {r['tokens_per_s']:,.0f} | {mfu} | {gpu_mem} | {r['peak_cpu_rss_gib']:.2f} | "
            f"{r['final_loss']:.4f} |"
        )
    lines += [
        "",
        "| seed twin (LoRA on the seed's targets) | parameters | device | tokens/s | peak GPU memory (GiB) | "
        "final loss |",
        "|---|---|---|---|---|---|",
    ]
    for hub_id, r in result["twins"].items():
        gpu_mem = "n/a" if r["peak_gpu_memory_gib"] is None else f"{r['peak_gpu_memory_gib']:.2f}"
        lines.append(
            f"| {hub_id} | {r['parameters'] / 1e9:.3f}B | {r['device']} | {r['tokens_per_s']:,.0f} | "
            f"{gpu_mem} | {r['final_loss']:.4f} |"
        )
    m, k = result["merge_check"], result["resume"]
    lines += [
        "",
        f"Merge check ({m['dtype']}): loss diff {m['loss_abs_diff']:.3g} "
        f"(tolerance {m['loss_tolerance']:.3g}), "
        f"relative perplexity diff {m['relative_perplexity_diff']:.3g}, max logit diff "
        f"{m['max_abs_logit_diff']:.3g}: **{'passed' if m['passed'] else 'FAILED'}**",
        f"Kill and resume: resumed from step {k['resumed_from_step']} of {k['steps']}, adapter weight diff "
        f"{k['max_adapter_weight_diff']:.3g}, loss diff {k['max_loss_diff']:.3g} (tolerance {k['tolerance']:g}"
        f"{', bitwise' if k['bitwise'] else ''}): **{'passed' if k['passed'] else 'FAILED'}**",
        "",
        f"Overall: **{'passed' if result['passed'] else 'FAILED'}** in {result['wall_s']:.0f} s",
    ]
    return "\n".join(lines) + "\n"


def prove(out: Path, tiny: bool, peak_tflops: float) -> dict[str, Any]:
    import torch

    gpu = torch.cuda.is_available() and not tiny
    if not tiny and not gpu:
        raise SystemExit("gpu_proof: no CUDA GPU is visible; run `bench/gpu_proof.sh OUT --tiny` for the CPU mode")
    profile, started = PROFILES["tiny" if tiny else "gpu"], time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    model_dir, data_dir = build_model(out, profile, gpu), write_data(out, profile)
    runs = {}
    for kind in ("full", "lora", "zero2", "zero3"):
        log.info("training %s", kind)
        job = job_for(
            out, kind, method_config(kind, profile, gpu, profile["steps"], None), model_dir, data_dir, profile
        )
        runs[kind] = measure(train(out, job), profile, model_dir, peak_tflops, gpu)
    twins = twin_runs(out, profile, data_dir, peak_tflops, gpu)
    log.info("merge check")
    merge = merge_check(out, out / "runs" / "lora" / "final", model_dir, data_dir, profile, gpu)
    log.info("kill and resume")
    resume = resume_check(out, model_dir, data_dir, profile, gpu)
    sharded = runs["zero3"]["deepspeed"] or {}
    result = {
        "mode": "tiny" if tiny else "gpu",
        "environment": environment(gpu),
        "dtype": profile["dtype"],
        "parameters": runs["full"]["parameters"],
        "batch_size": profile["batch_size"],
        "seq_len": profile["seq_len"],
        "peak_tflops": peak_tflops,
        "runs": runs,
        "merge_check": merge,
        "resume": resume,
        "twins": twins,
        "zero3_sharded_at_load": bool(sharded.get("sharded_at_load")),
        "wall_s": time.perf_counter() - started,
    }
    result["passed"] = merge["passed"] and resume["passed"] and result["zero3_sharded_at_load"]
    (out / "gpu_proof.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (out / "gpu_proof.md").write_text(markdown(result))
    return result


def run_job(job_file: str) -> None:
    """One training job (a subprocess of the proof): the library's run_training, as train_run calls it."""
    from tunetrace.logutil import setup_logging
    from tunetrace.training.jobcontrol import run_as_job
    from tunetrace.training.launch import TrainingJob, run_training

    setup_logging()
    run_as_job()
    run_training(TrainingJob(**json.loads(Path(job_file).read_text())), threads=max(os.cpu_count() or 1, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for gpu_proof.json, gpu_proof.md, runs and logs")
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny Llama, fp32, a few steps (what CI runs)")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100/H200)")
    parser.add_argument("--job", help=argparse.SUPPRESS)  # internal: one training job
    args = parser.parse_args()
    if args.job:
        run_job(args.job)
        return
    if args.out is None:
        parser.error("--out is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = prove(args.out.resolve(), args.tiny, args.peak_tflops)
    sys.stdout.write(markdown(result))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
