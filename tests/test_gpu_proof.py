"""bench/gpu_proof.sh: its tiny CPU mode end to end (what a GPU would run, scaled down), and its FLOP count."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed (make setup installs it)"
)


def _proof_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gpu_proof", REPO / "bench" / "gpu_proof.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flops_per_token_counts_weights_and_attention() -> None:
    """6N plus 12 x layers x hidden x sequence per token for full fine-tuning; two thirds of it for LoRA."""
    proof = _proof_module()
    config = {"num_hidden_layers": 2, "hidden_size": 8}
    assert proof.flops_per_token(config, 1000, 16, lora=False) == 6 * 1000 + 12 * 2 * 8 * 16
    assert proof.flops_per_token(config, 1000, 16, lora=True) == pytest.approx((6 * 1000 + 12 * 2 * 8 * 16) * 2 / 3)


@pytest.mark.workflow
def test_tiny_mode_runs_every_check_of_the_gpu_proof(tmp_path: Path) -> None:
    """`gpu_proof.sh OUT --tiny` trains full, LoRA, ZeRO-2, ZeRO-3 and LoRA on the three seed twins through the
    library, passes the merge check and a bitwise kill-and-resume, and writes the JSON and the markdown table."""
    out = tmp_path / "proof"
    # about 90 s on a quiet 2-core machine; the limits only guard against a hang on a loaded one
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "TUNETRACE_CACHE": str(tmp_path / "cache"),
        "GPU_PROOF_TIMEOUT": "900",
    }
    proc = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu_proof.sh"), str(out), "--tiny"],
        env=env,
        capture_output=True,
        text=True,
        timeout=960,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]

    result = json.loads((out / "gpu_proof.json").read_text())
    assert result["mode"] == "tiny" and result["passed"]
    assert sorted(result["runs"]) == ["full", "lora", "zero2", "zero3"]
    for name, run in result["runs"].items():
        assert run["steps"] == 4 and run["tokens_per_s"] > 0 and run["mfu"] is None, name
    assert run["trainable"] == run["parameters"] > result["runs"]["lora"]["trainable"] > 0
    assert result["runs"]["zero3"]["deepspeed"]["stage"] == "zero3" and result["zero3_sharded_at_load"]
    # one process: full, ZeRO-2 and ZeRO-3 are the same optimisation in fp32
    losses = {name: result["runs"][name]["final_loss"] for name in ("full", "zero2", "zero3")}
    assert max(losses.values()) - min(losses.values()) < 1e-5, losses
    assert sorted(result["twins"]) == ["Qwen/Qwen2.5-14B", "meta-llama/Llama-2-7b-hf", "openai/gpt-oss-20b"]
    for hub_id, twin in result["twins"].items():
        assert twin["steps"] == 4 and twin["tokens_per_s"] > 0 and 0 < twin["trainable"] < twin["parameters"], hub_id
    assert "| openai/gpt-oss-20b |" in (out / "gpu_proof.md").read_text()
    merge = result["merge_check"]
    assert merge["passed"] and merge["loss_abs_diff"] <= 1e-4 and merge["dtype"] == "float32"
    resume = result["resume"]
    assert resume["resumed_from_step"] in (2, 4) and resume["steps"] == 6 and resume["bitwise"]
    table = (out / "gpu_proof.md").read_text()
    assert "| run | tokens/s | MFU |" in table and "| zero3 |" in table and "**passed**" in table
