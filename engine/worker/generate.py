"""Greedy generation and exact-match scoring with a model folder (plus an optional adapter)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from engine.store.datasets import Row
from engine.worker.models import has_cuda, load_tokenizer


def load_for_inference(model_dir: Path, adapter_dir: Path | None = None) -> tuple[Any, Any]:
    """A model ready to generate (adapter-on-base when ``adapter_dir`` is given) and its tokenizer."""
    tokenizer = load_tokenizer(
        adapter_dir if adapter_dir and (adapter_dir / "tokenizer_config.json").exists() else model_dir
    )
    tokenizer.padding_side = "left"  # generation continues from the last real token
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    model.to("cuda" if has_cuda() else "cpu").eval()
    return model, tokenizer


def prompt_text(tokenizer: Any, row: Row) -> str:
    """The text a row's completion should follow (chat rows rendered with the model's template)."""
    if row.messages is None:
        assert row.prompt is not None
        return row.prompt
    messages = [{"role": role, "content": content} for role, content in row.messages[:-1]]
    return str(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))


def expected_text(row: Row) -> str:
    """The reference completion of a row."""
    return row.messages[-1][1] if row.messages is not None else str(row.completion)


@torch.no_grad()
def greedy_completions(
    model: Any, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int = 32, batch_size: int = 64
) -> list[str]:
    """Greedy-decode each prompt; returns only the generated text, special tokens removed."""
    out: list[str] = []
    device = next(model.parameters()).device
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(
            list(prompts[start : start + batch_size]),
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        ).to(device)
        generated = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = generated[:, batch["input_ids"].shape[1] :]
        out.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    return out


def exact_match(model: Any, tokenizer: Any, rows: Sequence[Row], *, max_new_tokens: int = 32) -> float:
    """Fraction of rows whose greedy completion equals the reference after stripping whitespace."""
    if not rows:
        return 0.0
    completions = greedy_completions(
        model, tokenizer, [prompt_text(tokenizer, r) for r in rows], max_new_tokens=max_new_tokens
    )
    hits = sum(c.strip() == expected_text(r).strip() for c, r in zip(completions, rows, strict=True))
    return hits / len(rows)
