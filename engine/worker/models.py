"""Loading base models, tokenizers and adapters the way a real model folder is loaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from engine.errors import ConfigError
from engine.store.config import RunConfig


def has_cuda() -> bool:
    """Whether a CUDA device is usable (False on CPU-only torch builds)."""
    return bool(torch.cuda.is_available())


def resolve_precision(config: RunConfig, source: Path | None = None) -> str:
    """'bf16', 'fp16' or 'fp32': 'auto' means bf16 on a GPU that supports it, fp32 otherwise."""
    wanted = config.train.precision
    if wanted == "auto":
        return "bf16" if has_cuda() and torch.cuda.is_bf16_supported() else "fp32"
    if wanted in ("bf16", "fp16") and not has_cuda():
        raise ConfigError(
            f"{wanted} needs a CUDA GPU; this machine has none (use 'auto')",
            path=source,
            field="train.precision",
        )
    if wanted == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("this GPU does not support bf16 (use 'fp16' or 'auto')", path=source, field="train.precision")
    return wanted


def load_tokenizer(model_dir: Path) -> Any:
    """The model folder's tokenizer, right-padded for training, with a pad token."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # padding_side is not restored on reload in transformers 5.x: set it here every time.
    tokenizer.padding_side = "right"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(model_dir: Path, config: RunConfig, precision: str, source: Path | None = None) -> Any:
    """The base model in the run's precision; 4-bit (QLoRA) when the run asks and CUDA allows."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]
    kwargs: dict[str, Any] = {"dtype": dtype}
    if config.train.load_in_4bit:
        if not has_cuda() or importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError(
                "4-bit QLoRA needs a CUDA GPU and bitsandbytes (pip install 'tunedeck[gpu]'); "
                f"here: cuda={'yes' if has_cuda() else 'no'}, "
                f"bitsandbytes={'yes' if importlib.util.find_spec('bitsandbytes') else 'no'}",
                path=source,
                field="train.load_in_4bit",
            )
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=dtype if dtype != torch.float32 else torch.bfloat16,
            bnb_4bit_use_double_quant=True,
        )
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    if config.train.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.train.activation_checkpointing)
    return model


def attach_lora(model: Any, config: RunConfig, source: Path | None = None) -> Any:
    """Wrap ``model`` in a fresh LoRA adapter shaped by the run's [lora] table."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,  # type: ignore[arg-type]  # peft annotates int; floats work
        lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules,
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        raise ConfigError(f"{exc}".splitlines()[0], path=source, field="lora.target_modules") from None
