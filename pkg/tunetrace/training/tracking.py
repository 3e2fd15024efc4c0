"""Weights & Biases tracking of a training run, as a log sink of the monitor.

`disabled` imports nothing and writes nothing; `offline` writes a local run directory under the
run's `wandb/` and never touches the network; `online` syncs (needs an API key in the usual W&B
places, which is never copied into any artifact or log).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tunetrace.config import TrackingSpec
from tunetrace.fileio import read_json, write_json

log = logging.getLogger(__name__)
WANDB_SUBDIR = "wandb"


class Tracker:
    """A started W&B run (or a no-op when disabled); `log` has the monitor's sink signature."""

    def __init__(self, run: Any = None, mode: str = "disabled") -> None:
        self.run = run
        self.mode = mode

    def log(self, record: Mapping[str, Any], step: int) -> None:
        if self.run is None:
            return
        values = {
            f"train/{k}": v
            for k, v in record.items()
            if k not in ("step", "time") and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        self.run.log(values, step=int(step))

    def info(self) -> dict[str, Any]:
        """What run.json records about tracking: mode, project, run id and local directory."""
        if self.run is None:
            return {"wandb_mode": self.mode, "wandb_run_id": None}
        return {
            "wandb_mode": self.mode,
            "wandb_run_id": self.run.id,
            "wandb_project": self.run.project,
            "wandb_group": self.run.group,
            "wandb_dir": _relative(self.run.dir),
        }


def _relative(path: str) -> str:
    with contextlib.suppress(ValueError):
        return os.path.relpath(path)
    return path


def run_identity(spec: TrackingSpec, method: str, task: str, seed: int) -> dict[str, Any]:
    """W&B name, group (task and method) and tags (method, task, seed plus the configured ones)."""
    group = spec.group or f"{task}-{method}"
    tags = [method, task, f"seed{seed}", *spec.tags]
    return {"name": f"{method}/{task}/seed{seed}", "group": group, "tags": list(dict.fromkeys(tags))}


@contextlib.contextmanager
def start_tracking(
    spec: TrackingSpec,
    method: str,
    task: str,
    seed: int,
    run_dir: str | os.PathLike,
    config: Mapping[str, Any] | None = None,
) -> Iterator[Tracker]:
    """Start a W&B run for one training run and finish it on exit (also on failure)."""
    if spec.wandb_mode == "disabled":
        yield Tracker(None, "disabled")
        return
    import wandb

    wandb_dir = Path(run_dir) / WANDB_SUBDIR
    wandb_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        mode=spec.wandb_mode,
        project=spec.project,
        entity=spec.entity,
        dir=str(wandb_dir),
        config=dict(config or {}),
        settings=_settings(),
        reinit="finish_previous",
        **run_identity(spec, method, task, seed),
    )
    log.info("W&B %s run %s in %s", spec.wandb_mode, run.id, run.dir)
    failed = True
    try:
        yield Tracker(run, spec.wandb_mode)
        failed = False
    finally:
        run.finish(exit_code=1 if failed else 0)
        wandb.teardown()  # waits for the W&B service to flush the run file to disk


def _settings() -> Any:
    import wandb

    return wandb.Settings(
        silent=True, console="off", x_disable_stats=True, save_code=False, x_save_requirements=False, disable_git=True
    )


def tracked_run_id(run_json: str | os.PathLike) -> str | None:
    """The W&B run id run.json records (None when the run was not tracked)."""
    info = read_json(run_json).get("tracking") or {}
    return None if info.get("wandb_mode", "disabled") == "disabled" else info.get("wandb_run_id")


def update_run(run_json: str | os.PathLike, summary: Mapping[str, Any], alerts: Sequence[tuple[str, str]] = ()) -> bool:
    """Add `summary` to the W&B run that trained a run (its id and mode from run.json's `tracking`), resumed by
    id (resume="allow"), and raise one alert (title, text) each; False, doing nothing, when the run was not
    tracked. Offline, the update is a second local run directory of the same id (alerts included), merged into
    the run by `wandb sync`; the alerts' titles are also the summary's `alerts`, visible without the alert feed."""
    if not tracked_run_id(run_json):
        return False
    import wandb

    info = read_json(run_json)["tracking"]
    wandb_dir = Path(run_json).parent / WANDB_SUBDIR
    wandb_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        mode=info["wandb_mode"],
        id=info["wandb_run_id"],
        resume="allow",
        project=info.get("wandb_project"),
        group=info.get("wandb_group"),
        dir=str(wandb_dir),
        settings=_settings(),
        reinit="finish_previous",
    )
    try:
        run.summary.update({**summary, "alerts": [title for title, _ in alerts]})
        for title, text in alerts:
            _alert(run, title, text)
    finally:
        run.finish()
        wandb.teardown()
    log.info("W&B %s run %s: summary updated (%d alerts)", info["wandb_mode"], run.id, len(alerts))
    return True


def _alert(run: Any, title: str, text: str) -> None:
    """One W&B alert; one that W&B refuses is logged (the summary's `alerts` keeps its title)."""
    import wandb

    try:
        run.alert(title=title, text=text, level=wandb.AlertLevel.ERROR)
    except Exception as err:  # noqa: BLE001 - an alert is a notice; the summary has it anyway
        log.warning("W&B alert %r not sent (%s); it is in the run summary's alerts", title, err)


def record_tracking(run_json: str | os.PathLike, tracker: Tracker) -> None:
    """Add the tracking info (mode, run id) to the run's run.json."""
    metadata = read_json(run_json)
    metadata["tracking"] = tracker.info()
    write_json(run_json, metadata)


def offline_records(wandb_file: str | os.PathLike) -> Iterator[Any]:
    """The protobuf records of an offline W&B run file `run-<id>.wandb`, in order.

    The file is a LevelDB-style log of protobuf records: a 7-byte header, then 32 KiB blocks of
    chunks (crc32 uint32, length uint16, type uint8: 1 full, 2 first, 3 middle, 4 last).
    """
    import struct

    from wandb.proto import wandb_internal_pb2

    data, block, pos, buffer = Path(wandb_file).read_bytes(), 32768, 7, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (length == 0 and kind == 0):
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        buffer = chunk if kind in (1, 2) else buffer + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(buffer)
            yield record


def _items(items: Any) -> dict[str, Any]:
    import json

    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def read_offline_history(wandb_file: str | os.PathLike) -> list[dict[str, Any]]:
    """The history rows (logged metrics) of an offline W&B run file."""
    return [_items(r.history.item) for r in offline_records(wandb_file) if r.WhichOneof("record_type") == "history"]


def read_offline_summary(wandb_file: str | os.PathLike) -> dict[str, Any]:
    """The summary an offline W&B run file sets (its summary updates, in order)."""
    summary: dict[str, Any] = {}
    for record in offline_records(wandb_file):
        if record.WhichOneof("record_type") == "summary":
            summary.update(_items(record.summary.update))
    return summary


def read_offline_alerts(wandb_file: str | os.PathLike) -> list[str]:
    """The titles of the alerts an offline W&B run file holds (sent when it is synced)."""
    return [r.alert.title for r in offline_records(wandb_file) if r.WhichOneof("record_type") == "alert"]
