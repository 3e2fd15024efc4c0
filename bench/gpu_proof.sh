#!/usr/bin/env bash
# GPU proof of tunetrace's training path on one H100/H200, in one call of under 9.5 minutes:
#   bash bench/gpu_proof.sh OUT_DIR           # bf16 full/LoRA (tokens/s, MFU, memory), ZeRO-2/3, merge, resume,
#                                             # LoRA on the three seed twins at ~1B (tokens/s, memory)
#   bash bench/gpu_proof.sh OUT_DIR --tiny    # the same on CPU with a tiny model (what CI runs)
# Writes OUT_DIR/gpu_proof.json and OUT_DIR/gpu_proof.md; exits non-zero when a check fails.
# Needs `make setup` (with a CUDA torch on the GPU machine: make setup TORCH_SPEC=torch==2.13.0); no network.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:?usage: bash bench/gpu_proof.sh OUT_DIR [--tiny]}"
shift
mkdir -p "$out"
export PYTHONPATH="$repo/pkg${PYTHONPATH:+:$PYTHONPATH}" WANDB_MODE=disabled HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export TUNETRACE_CACHE="${TUNETRACE_CACHE:-$out/cache}"
# One GPU: every run asks for resources.gpus 1, and each rank checks it sees exactly that many.
export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}"
python="${PYTHON:-$repo/.venv/bin/python}"
# The whole proof stays under 9.5 minutes or fails (GPU_PROOF_TIMEOUT seconds).
exec timeout --signal=TERM --kill-after=20 "${GPU_PROOF_TIMEOUT:-570}" "$python" "$repo/bench/gpu_proof.py" --out "$out" "$@"
