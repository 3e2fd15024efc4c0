"""Tiny random-weight decoder LLMs built locally, for tests and CPU-sized example studies.

`tiny:llama` and `tiny:gpt2` are model names like `embedded:...`: the first use writes a config,
seeded random weights and a tokenizer (the embedded MiniLM's WordPiece vocabulary, with a chat
template) to a cache directory, and every later `from_pretrained` loads that directory. The weights
are a pure function of the architecture and seed, so every job of a workflow sees the same base.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunetrace.fileio import atomic_dir, cache_root
from tunetrace.models.embedded import resolve_embedded

log = logging.getLogger(__name__)

TINY_PREFIX = "tiny:"
TINY_SEED = 0
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
TINY_ARCHS = ("llama", "gpt2")  # the architectures _config builds (checked at config validation)
SIZES = {"hidden": 64, "layers": 2, "heads": 4, "intermediate": 128, "positions": 512}


def _config(
    arch: str,
    vocab_size: int,
    pad: int,
    bos: int,
    eos: int,  # type: ignore[no-untyped-def]
    sizes: Mapping[str, int] = SIZES,
):
    from transformers import GPT2Config, LlamaConfig

    s = sizes
    if arch == "llama":
        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=s["hidden"],
            intermediate_size=s["intermediate"],
            num_hidden_layers=s["layers"],
            num_attention_heads=s["heads"],
            num_key_value_heads=s["heads"],
            max_position_embeddings=s["positions"],
            pad_token_id=pad,
            bos_token_id=bos,
            eos_token_id=eos,
            tie_word_embeddings=True,
        )
    if arch == "gpt2":
        return GPT2Config(
            vocab_size=vocab_size,
            n_embd=s["hidden"],
            n_layer=s["layers"],
            n_head=s["heads"],
            n_positions=s["positions"],
            pad_token_id=pad,
            bos_token_id=bos,
            eos_token_id=eos,
        )
    raise ValueError(
        f"model.name_or_path: unknown tiny architecture '{arch}'; use one of "
        f"{', '.join(TINY_PREFIX + a for a in TINY_ARCHS)}"
    )


def decoder_tokenizer() -> Any:
    """The tokenizer of tiny decoders and architecture twins: the embedded MiniLM's WordPiece vocabulary with
    end/begin tokens, a chat template and right padding."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_embedded("all-MiniLM-L6-v2"))
    # a decoder ends a completion with an end token; [SEP] plays that part in this vocabulary
    tokenizer.eos_token, tokenizer.bos_token = tokenizer.sep_token, tokenizer.cls_token
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "right"
    return tokenizer


def build_tiny_decoder(
    out_dir: str | os.PathLike,
    arch: str = "llama",
    seed: int = TINY_SEED,
    sizes: Mapping[str, int] = SIZES,
    dtype: str = "float32",
    device: str = "cpu",
) -> Path:
    """Write a random-weight decoder and its tokenizer to `out_dir` (atomically). `sizes` (keys of SIZES)
    scale it up, e.g. to a ~1B Llama for the GPU proof (bench/gpu_proof.py), created on `device`."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = decoder_tokenizer()
    config = _config(
        arch, len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, sizes
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    log.info("built tiny %s decoder (%d parameters) in %s", arch, sum(p.numel() for p in model.parameters()), out_dir)
    return Path(out_dir)


def resolve_tiny(name: str) -> str:
    """Directory of a `tiny:<arch>` model, building it on first use."""
    arch = name[len(TINY_PREFIX) :]
    target = cache_root() / f"tiny-{arch}-seed{TINY_SEED}"
    if not (target / "config.json").is_file():
        # build privately, then rename: parallel jobs never delete or see a half-built model
        scratch = target.parent / f".{target.name}.{os.getpid()}"
        build_tiny_decoder(scratch, arch)
        try:
            os.rename(scratch, target)
        except OSError:
            shutil.rmtree(scratch, ignore_errors=True)
            if not (target / "config.json").is_file():
                raise
    return str(target)
