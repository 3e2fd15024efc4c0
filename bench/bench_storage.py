"""Representation storage: bytes per capture (one step directory) against layers, hidden size, probe
size, pooling and dtype; measured on the embedded model, computed for the seeds' models.

Measured: real step directories written by `tunetrace.analysis.representations.capture_step` from the
embedded MiniLM (6 blocks + embeddings, hidden 384) on the demo eval split (200 examples; the
1,000-example probe repeats them under new ids, which changes no byte count of pooled states), each
compared with the formula

    layer files = captured layers x probe x (padded tokens if pooling is none, else 1) x hidden x dtype bytes
    + attention mask (pooling none only) = probe x padded tokens x 1 byte
    + overhead: one safetensors header per file (~100 bytes) and metadata.json (the probe ids, per-layer hashes)

Computed: the same formula for Llama-2-class models (24-32 blocks, hidden 2048-4096), probe 1,000,
a capture every 100 steps of a 10,000-step run (steps 100, 200, ..., 10,000: 100 step directories; step 0
is the base extraction unless `representations.capture_step0` is set, which adds one per run),
and for the settings that keep a run's dumps small.

    .venv/bin/python bench/bench_storage.py [--quick] [--section PATH]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
WIDTH = {"fp16": 2, "fp32": 4}
TOKENS_NONE = 256  # padded probe length assumed for token-level (pooling none) rows of the computed table
HEADER_BYTES = 100  # a safetensors header: 8-byte length + JSON of one tensor's dtype, shape and offsets


def payload_bytes(layers: int, hidden: int, probe: int, pooling: str, dtype: str, tokens: int) -> int:
    """Tensor bytes of one step directory: every captured layer's states, plus the mask when token level."""
    positions = probe * (tokens if pooling == "none" else 1)
    return layers * positions * hidden * WIDTH[dtype] + (probe * tokens if pooling == "none" else 0)


def captures_per_run(steps: int, every: int) -> int:
    """Step directories a run writes at the defaults: every `every` steps and the final step (step 0 is the
    base extraction; `representations.capture_step0` would add one)."""
    return len(set(range(every, steps + 1, every)) | {steps})


def run_bytes(per_capture: int, steps: int, every: int) -> int:
    """A run's dumps at the defaults (captures_per_run step directories)."""
    return per_capture * captures_per_run(steps, every)


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


# ---------------------------------------------------------------- measured on the embedded model


def embedded_setup(tmp: Path):  # type: ignore[no-untyped-def]
    """The demo task, the embedded model and its probe frame (prepared as the workflow's prepare_data does)."""
    from tunetrace.config import ModelSpec, TaskSpec
    from tunetrace.data.readers import load_prepared
    from tunetrace.stages.prepare import prepare_task_data
    from tunetrace.tasks.dispatch import get_task_type

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    task = TaskSpec.from_dict("demo_sentiment", config["tasks"]["demo_sentiment"])
    model_spec = ModelSpec.from_dict(config["model"])
    prepare_task_data(task, tmp / "data", workdir=REPO)
    _, eval_frame = load_prepared(tmp / "data")
    task_type = get_task_type(task.type)
    tokenizer, frame = task_type.probe_inputs(model_spec, task, eval_frame)
    return task, tokenizer, frame, task_type.load_model(model_spec, task)


def grown(frame: pd.DataFrame, size: int) -> pd.DataFrame:
    """`size` probe rows: the frame repeated under new example ids."""
    from tunetrace import artifacts as A

    copies = []
    for i in range(-(-size // len(frame))):
        copy = frame.copy()
        copy[A.COL_ID] = copy[A.COL_ID].astype(str) + f"_r{i}"
        copies.append(copy)
    return pd.concat(copies, ignore_index=True)


def measure_one(model, tokenizer, task, frame, settings: dict, out: Path) -> dict:  # type: ignore[no-untyped-def]
    from tunetrace.analysis.representations import build_probe, capture_step
    from tunetrace.analysis.steps import RepresentationSpec

    spec = RepresentationSpec.from_dict(settings)
    probe = build_probe(grown(frame, spec.probe_size), tokenizer, task, spec)
    meta = capture_step(model, probe, spec, out, {"model": "embedded", "run": "bench", "task": task.name, "step": 0})
    sizes = {f.name: f.stat().st_size for f in out.iterdir()}
    tokens = meta["attention_mask"]["shape"][1] if meta["attention_mask"] else 0
    layers = len(meta["layers"])
    hidden = meta["layers"][0]["shape"][-1]
    formula = payload_bytes(layers, hidden, len(probe.ids), spec.pooling, spec.dtype, tokens)
    return {
        "layers": layers,
        "hidden": hidden,
        "probe": len(probe.ids),
        "pooling": spec.pooling,
        "dtype": spec.dtype,
        "tokens": tokens,
        "measured": sum(sizes.values()),
        "formula": formula,
        "metadata": sizes["metadata.json"],
        "files": len(sizes),
    }


def measure_embedded(quick: bool) -> list[dict]:
    grid = {
        "probe_size": [50, 200] if quick else [50, 200, 1000],
        "pooling": ["mean", "none"] if quick else ["mean", "first", "none"],
        "dtype": ["fp16", "fp32"],
        "layers": [None, [0, 6]],
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_storage_") as tmp:
        task, tokenizer, frame, model = embedded_setup(Path(tmp))
        for i, values in enumerate(itertools.product(*grid.values())):
            settings = dict(zip(grid, values, strict=True))
            rows.append(measure_one(model, tokenizer, task, frame, settings, Path(tmp) / f"step_{i:06d}"))
            print(rows[-1], file=sys.stderr)
    return rows


# ---------------------------------------------------------------- computed for the seeds' models

SEED_MODELS = [("24 blocks, hidden 2048 (1.3B class)", 24, 2048), ("32 blocks, hidden 4096 (Llama-2-7B)", 32, 4096)]
STEPS, EVERY, PROBE = 10_000, 100, 1000


def computed_rows() -> list[dict]:
    """Default settings (every layer, mean, fp16), the other dtype and pooling, then smaller settings."""
    rows = []
    for name, blocks, hidden in SEED_MODELS:
        five = f"layers [{', '.join(str(blocks * k // 4) for k in range(5))}]"
        every_layer = blocks + 1
        variants = [
            ("default: every layer, mean, fp16, every_steps 100", every_layer, PROBE, "mean", "fp16", EVERY),
            ("dtype fp32", every_layer, PROBE, "mean", "fp32", EVERY),
            (f"pooling none ({TOKENS_NONE} padded tokens)", every_layer, PROBE, "none", "fp16", EVERY),
            (five, 5, PROBE, "mean", "fp16", EVERY),
            (f"{five}, every_steps 500", 5, PROBE, "mean", "fp16", 500),
            (f"{five}, every_steps 500, probe_size 500", 5, 500, "mean", "fp16", 500),
        ]
        for label, layers, probe, pooling, dtype, every in variants:
            capture = payload_bytes(layers, hidden, probe, pooling, dtype, TOKENS_NONE)
            rows.append(
                {
                    "model": name,
                    "settings": label,
                    "capture": capture,
                    "run": run_bytes(capture, STEPS, every),
                    "captures": captures_per_run(STEPS, every),
                }
            )
    return rows


# ---------------------------------------------------------------- report


def section(command: str, measured: list[dict], computed: list[dict]) -> str:
    lines = [
        "### Representation storage per capture",
        "",
        f"Command: `{command}`",
        "",
        "Measured on the embedded MiniLM (hidden 384; layers: all 7 = embeddings + 6 blocks, or [0, 6]); "
        "bytes of the whole step directory against the formula's tensor bytes.",
        "",
        "| layers | probe | pooling | dtype | padded tokens | measured (bytes) | formula (bytes) | "
        "overhead: headers + metadata.json | measured / formula |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in measured:
        tokens = r["tokens"] if r["pooling"] == "none" else "-"
        lines.append(
            f"| {r['layers']} | {r['probe']} | {r['pooling']} | {r['dtype']} | {tokens} | {r['measured']:,} | "
            f"{r['formula']:,} | {r['measured'] - r['formula']:,} (metadata.json {r['metadata']:,}) | "
            f"{r['measured'] / r['formula']:.3f} |"
        )
    lines += [
        "",
        f"Computed for the seeds' models: probe {PROBE:,}, a {STEPS:,}-step run; layers counts "
        "the embeddings output too (L blocks give L + 1 hidden states); per-run totals are one run's "
        "step directories (a study multiplies them by its runs).",
        "",
        "| model | settings | per capture | captures per run | per run |",
        "|---|---|---|---|---|",
    ]
    for r in computed:
        lines.append(
            f"| {r['model']} | {r['settings']} | {human(r['capture'])} | {r['captures']} | {human(r['run'])} |"
        )
    return "\n".join(lines + [""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid of measured settings")
    parser.add_argument("--section", type=Path, help="write the markdown section here too")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    measured = measure_embedded(args.quick)
    text = section(
        f".venv/bin/python bench/bench_storage.py {' '.join(sys.argv[1:])}".strip(), measured, computed_rows()
    )
    print(text)
    if args.section:
        args.section.write_text(text)


if __name__ == "__main__":
    main()
