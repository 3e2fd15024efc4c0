"""Throughput, peak memory and MFU of one training configuration: bf16, DeepSpeed ZeRO-2 or ZeRO-3.

Trains a random-weight Llama-style decoder (about 1.1B parameters by default) on random tokens with
the Hugging Face Trainer, the same engine as tunetrace's training path, and prints one JSON line.
Run one stage per process, under accelerate for the DeepSpeed stages:

    python bench/bench_scale.py --stage bf16
    accelerate launch --num_processes 1 --use_deepspeed \
        --deepspeed_config_file pkg/tunetrace/training/deepspeed/zero2.json bench/bench_scale.py --stage zero2
    accelerate launch --num_processes 1 --use_deepspeed \
        --deepspeed_config_file pkg/tunetrace/training/deepspeed/zero3.json bench/bench_scale.py --stage zero3

`--tiny` runs a 2-layer model on CPU in fp32 (a smoke test of the script, not a measurement).
MFU = 6 * parameters * tokens/s / peak dense bf16 FLOP/s of the GPU (--peak-tflops, default 989
for H100/H200 SXM).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch


def build_model(tiny: bool) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    if tiny:
        config = LlamaConfig(
            vocab_size=1000,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=256,
        )
    else:
        config = LlamaConfig(
            vocab_size=32000,
            hidden_size=2048,
            intermediate_size=5632,
            num_hidden_layers=16,
            num_attention_heads=16,
            num_key_value_heads=16,
            max_position_embeddings=2048,
        )
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


class RandomTokens(torch.utils.data.Dataset):
    def __init__(self, n: int, seq_len: int, vocab: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.data = torch.randint(0, vocab, (n, seq_len), generator=generator)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.data[i], "labels": self.data[i]}


def make_timer(warmup: int):  # type: ignore[no-untyped-def]
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        start = None
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if state.global_step == warmup:
                self.start = time.perf_counter()
            elif state.global_step > warmup:
                self.steps = state.global_step - warmup
                self.elapsed = time.perf_counter() - self.start

    return StepTimer()


def main() -> None:
    from transformers import Trainer, TrainingArguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=["bf16", "zero2", "zero3"], default="bf16")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "bench_scale"))
    args = parser.parse_args()

    model = build_model(args.tiny)
    n_params = sum(p.numel() for p in model.parameters())
    seq_len = min(args.seq_len, model.config.max_position_embeddings)
    data = RandomTokens(args.batch_size * (args.steps + 1), seq_len, model.config.vocab_size)
    timer = make_timer(args.warmup)
    gpu = torch.cuda.is_available()
    training_args = TrainingArguments(
        output_dir=args.out,
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=1e-4,
        bf16=gpu,
        use_cpu=not gpu,
        save_strategy="no",
        report_to=[],
        logging_steps=10,
        gradient_checkpointing=not args.tiny,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=data, callbacks=[timer])
    trainer.train()
    tokens_per_s = args.batch_size * seq_len * timer.steps / timer.elapsed
    result = {
        "stage": args.stage,
        "parameters": n_params,
        "batch_size": args.batch_size,
        "seq_len": seq_len,
        "timed_steps": timer.steps,
        "tokens_per_s": tokens_per_s,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if gpu else None,
        "mfu": 6 * n_params * tokens_per_s / (args.peak_tflops * 1e12) if gpu else None,
        "device": torch.cuda.get_device_name(0) if gpu else "cpu",
    }
    if trainer.is_world_process_zero():
        print(json.dumps(result))


if __name__ == "__main__":
    main()
