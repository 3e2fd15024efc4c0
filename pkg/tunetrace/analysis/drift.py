"""Representation drift of a run against the base model: a table per run, and its plots.

One row per (step, layer): linear CKA, unbiased minibatch CKA and mean per-example cosine of the
run's representations against the base representations of the same probe set. Step 0 is the run's own
capture when it made one (representations.capture_step0), else the base extraction itself, the model
every run starts from (similarity 1 by construction).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunetrace.analysis.similarity import linear_cka, mean_cosine, minibatch_cka
from tunetrace.analysis.steps import RepresentationError, layer_file_name, list_steps, load_step

log = logging.getLogger(__name__)
DRIFT_COLUMNS = ["method", "task", "seed", "step", "layer", "layer_name", "cka", "cka_unbiased", "cosine", "rows"]


def _rows_of(layer: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Pooled (examples, dim) as is; token level (examples, tokens, dim) -> real tokens only."""
    if layer.ndim == 2:
        return layer
    return layer[mask.astype(bool)]


def layer_drift(
    base: np.ndarray, current: np.ndarray, mask: np.ndarray | None, cka_batch_size: int
) -> dict[str, float]:
    """CKA, unbiased CKA and mean cosine of one layer against the base."""
    x, y = _rows_of(base, mask), _rows_of(current, mask)
    return {
        "cka": linear_cka(x, y),
        "cka_unbiased": minibatch_cka(x, y, cka_batch_size) if x.shape[0] >= 4 else float("nan"),
        "cosine": mean_cosine(x, y),
        "rows": int(x.shape[0]),
    }


def _check_same_probe(base_meta: Mapping[str, Any], meta: Mapping[str, Any], step_dir: Path) -> None:
    for key in ("pooling",):
        if meta[key] != base_meta[key]:
            raise RepresentationError(
                f"{step_dir / 'metadata.json'}: {key} '{meta[key]}' differs from the base's "
                f"'{base_meta[key]}'; extract both with the same representations settings"
            )
    if meta["probe"]["hash"] != base_meta["probe"]["hash"]:
        raise RepresentationError(
            f"{step_dir / 'metadata.json'}: probe-set hash differs from the base "
            "representations; "
            "rerun base extraction and training with the same probe_size and data"
        )


def drift_table(
    base_dir: str | os.PathLike, run_dir: str | os.PathLike, identity: Mapping[str, Any], cka_batch_size: int = 256
) -> pd.DataFrame:
    """Every saved step and layer of a run against the base; raises naming any bad file."""
    base = load_step(base_dir)
    base_meta, base_layers, base_mask = base
    steps = list_steps(run_dir)
    if not steps:
        raise RepresentationError(
            f"{run_dir}: no step_NNNNNN directories; was the run trained with representations enabled?"
        )
    rows = []
    if steps[0][0] != 0:  # step 0 not captured in the run (representations.capture_step0 false): it is the base
        steps = [(0, Path(base_dir)), *steps]
    for step, step_dir in steps:
        meta, layers, _ = base if step_dir == Path(base_dir) else load_step(step_dir)
        _check_same_probe(base_meta, meta, step_dir)
        missing = sorted(set(base_layers) - set(layers))
        if missing:
            raise RepresentationError(f"{step_dir}: layers {missing} are in the base but not in this step")
        names = {e["index"]: e["name"] for e in meta["layers"]}
        for index in sorted(base_layers):
            values = layer_drift(base_layers[index], layers[index], base_mask, cka_batch_size)
            if not np.isfinite([values["cka"], values["cosine"]]).all():
                raise RepresentationError(
                    f"{step_dir / layer_file_name(index)}: non-finite similarity "
                    "(inf/NaN in stored values); "
                    "store representations as fp32 (representations.dtype)"
                )
            rows.append({**identity, "step": step, "layer": index, "layer_name": names[index], **values})
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS)


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write Parquet atomically (temporary sibling, then rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- plots


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_cka_heatmap(frame: pd.DataFrame, title: str, out_path: str | os.PathLike) -> None:
    """Layer (rows) by step (columns) heatmap of linear CKA to the base, values written in cells."""
    plt = _pyplot()
    grid = frame.pivot(index="layer", columns="step", values="cka").sort_index()
    names = frame.drop_duplicates("layer").set_index("layer")["layer_name"].reindex(grid.index)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * grid.shape[1], 1.0 + 0.4 * grid.shape[0]), constrained_layout=True)
    image = ax.imshow(
        grid.to_numpy(), aspect="auto", cmap="viridis", vmin=min(0.9, float(np.nanmin(grid.to_numpy()))), vmax=1.0
    )
    ax.set_xticks(range(grid.shape[1]), [str(s) for s in grid.columns])
    ax.set_yticks(range(grid.shape[0]), list(names))
    ax.set_xlabel("training step")
    ax.set_ylabel("layer")
    ax.set_title(title, fontsize=9)
    if grid.size <= 400:
        for (r, c), value in np.ndenumerate(grid.to_numpy()):
            ax.text(
                c, r, f"{value:.3f}", ha="center", va="center", fontsize=6, color="white" if value < 0.97 else "black"
            )
    fig.colorbar(image, ax=ax, label="linear CKA to base")
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=120)
    plt.close(fig)


def final_step(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of each run's last saved step."""
    last = frame.groupby(["method", "task", "seed"])["step"].transform("max")
    return frame[frame["step"] == last]


def plot_final_cka(
    frame: pd.DataFrame, method_types: Mapping[str, str], title: str, out_path: str | os.PathLike
) -> None:
    """Final-step CKA per layer, one bar per method (mean over seeds, min-max whiskers), side by side."""
    plt = _pyplot()
    final = final_step(frame)
    stats = final.groupby(["method", "layer"])["cka"].agg(["mean", "min", "max"]).reset_index()
    layers = sorted(final["layer"].unique())
    names = final.drop_duplicates("layer").set_index("layer")["layer_name"].reindex(layers)
    methods = sorted(stats["method"].unique(), key=lambda m: (method_types.get(m) != "full", m))
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(layers) + 2), 3.6), constrained_layout=True)
    for k, method in enumerate(methods):
        s = stats[stats["method"] == method].set_index("layer").reindex(layers)
        xs = np.arange(len(layers)) + (k - (len(methods) - 1) / 2) * width
        err = np.vstack([s["mean"] - s["min"], s["max"] - s["mean"]])
        ax.bar(xs, s["mean"], width, yerr=err, capsize=2, label=f"{method} ({method_types.get(method, '?')})")
    low = float(stats["min"].min())
    ax.set_ylim(max(0.0, low - 0.05 * (1 - low) - 0.01), 1.0)
    ax.set_xticks(range(len(layers)), list(names), rotation=30)
    ax.set_ylabel("linear CKA to base (final step)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- entry points

# ---------------------------------------------------------------- comparison section


def _stat(values: Sequence[float]) -> dict[str, Any]:
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0, "n": int(arr.size)}


def _final_step_section(frame: pd.DataFrame, methods: Sequence[str]) -> list[dict[str, Any]]:
    final = final_step(frame)
    out = []
    for layer, rows in final.groupby("layer", sort=True):
        per_method = {
            m: {key: _stat(rows.loc[rows["method"] == m, key].tolist()) for key in ("cka", "cka_unbiased", "cosine")}
            for m in methods
            if (rows["method"] == m).any()
        }
        # lower CKA to the base = the layer moved further from where it started; "tie" when all
        # methods agree to 1e-6 (e.g. embeddings, which LoRA never changes, in a barely moved full run)
        ckas = {m: per_method[m]["cka"]["mean"] for m in per_method}
        moved = min(ckas, key=ckas.get) if max(ckas.values()) - min(ckas.values()) > 1e-6 else "tie"
        out.append(
            {
                "layer": int(layer),
                "layer_name": str(rows["layer_name"].iloc[0]),
                "methods": per_method,
                "moved_most": moved,
            }
        )
    return out


def _weights_section(weights: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> list[dict[str, Any]]:
    keys = ("relative_update_norm", "update_effective_rank", "intruder_dimensions", "rank_utilisation")
    by_matrix: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for doc in weights:
        for matrix in doc["matrices"]:
            by_matrix.setdefault(matrix["name"], {}).setdefault(doc["method"], []).append(matrix)
    out = []
    for name in sorted(by_matrix, key=lambda n: (by_matrix[n][next(iter(by_matrix[n]))][0]["layer"] or -1, n)):
        entries = by_matrix[name]
        out.append(
            {
                "matrix": name,
                "layer": next(iter(entries.values()))[0]["layer"],
                "methods": {m: {k: _stat([e[k] for e in entries[m]]) for k in keys} for m in methods if m in entries},
            }
        )
    return out


def drift_sections(
    tables: Sequence[str | os.PathLike],
    weights: Sequence[str | os.PathLike],
    plots: Sequence[str | os.PathLike],
    method_types: Mapping[str, str],
) -> dict[str, dict[str, Any]]:
    """Per task: final-step CKA/cosine per layer and method (over seeds), which method moved each
    layer most, and weight-space numbers per matrix and method."""
    from tunetrace.fileio import read_json

    frame = pd.concat([pd.read_parquet(p) for p in tables], ignore_index=True)
    weight_docs = [read_json(p) for p in weights]
    methods = sorted(method_types)
    sections = {}
    for task, rows in frame.groupby("task", sort=True):
        task_methods = [m for m in methods if (rows["method"] == m).any()]
        sections[str(task)] = {
            "method_types": {m: method_types[m] for m in task_methods},
            "final_step": _final_step_section(rows, task_methods),
            "weights": _weights_section([d for d in weight_docs if d["task"] == task], task_methods),
            "plots": sorted(str(p) for p in plots if Path(p).name.startswith(f"{task}_")),
        }
    return sections


def _num(stat: Mapping[str, Any] | None, fmt: str = ".4f") -> str:
    if not stat or stat.get("mean") is None:
        return "n/a"
    return format(stat["mean"], fmt)


def drift_markdown(section: Mapping[str, Any] | None) -> list[str]:
    """Markdown lines of a task's drift section (empty when there is none)."""
    if not section:
        return []
    methods = list(section["method_types"])
    header = (
        "| layer | "
        + " | ".join(f"CKA {m}" for m in methods)
        + " | "
        + " | ".join(f"cos {m}" for m in methods)
        + " | moved most |"
    )
    lines = [
        "",
        "Representation drift at the final step (linear CKA and mean cosine to the base model; mean over seeds):",
        "",
        header,
        "|---" * (2 * len(methods) + 2) + "|",
    ]
    for row in section["final_step"]:
        ms = row["methods"]
        lines.append(
            f"| {row['layer_name']} | "
            + " | ".join(_num(ms.get(m, {}).get("cka")) for m in methods)
            + " | "
            + " | ".join(_num(ms.get(m, {}).get("cosine")) for m in methods)
            + f" | {row['moved_most']} |"
        )
    shared = [w for w in section["weights"] if len(w["methods"]) > 1]
    if shared:
        lines += [
            "",
            "Weight space, matrices analysed for more than one method (relative update ‖ΔW‖/‖W‖, "
            "effective rank of ΔW, intruder dimensions in the top singular vectors, "
            "LoRA rank utilisation):",
            "",
            "| matrix | method | ‖ΔW‖/‖W‖ | eff. rank ΔW | intruders | rank use |",
            "|---|---|---|---|---|---|",
        ]
        for w in shared:
            for m, s in w["methods"].items():
                lines.append(
                    f"| {w['matrix']} | {m} | {_num(s['relative_update_norm'])} "
                    f"| {_num(s['update_effective_rank'], '.2f')} "
                    f"| {_num(s['intruder_dimensions'], '.1f')} | {_num(s['rank_utilisation'], '.2f')} |"
                )
    # comparison.md sits in results/, so links are relative to it
    lines += ["", *(f"![final-step CKA per layer]({str(p).removeprefix('results/')})" for p in section["plots"])]
    return lines
