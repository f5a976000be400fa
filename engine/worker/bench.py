"""``python -P -m engine.worker.bench RUN_DIR --suite FILE --out FILE``: generate a suite's completions.

The torch half of ``tunedeck bench run``: loads the run's model (see ``engine.bench.model_choice``),
generates each suite row's completion ``--samples`` times and writes one JSONL line per
(row, sample)::

    {"task_id": ..., "bench": ..., "sample": 0, "completion": ..., "latency_ms": ...}

Scoring happens in the parent, never here: model-written code must not run in a process
that holds the model (nor in the service). One sample is greedy; several are sampled at
``--temperature``, each seeded (``--seed`` + sample), so a rerun gives the same completions.
The output appears whole (temporary file + rename) or not at all.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from engine.bench.model_choice import choose_model
from engine.bench.suite import SuiteRow, load_suite
from engine.errors import ConfigError
from engine.store.campaign import Campaign
from engine.store.jsonl import write_jsonl_atomic
from engine.worker import runtime
from engine.worker.generate import load_for_inference

DEFAULT_MAX_NEW_TOKENS = 64
BATCH_SIZE = 32


def render_prompt(tokenizer: Any, row: SuiteRow) -> str:
    """The text generation continues: the prompt, or the chat rendered with the model's template."""
    if row.messages is None:
        assert row.prompt is not None
        return row.prompt
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            "this row is a chat (messages) but the model's tokenizer has no chat template; use 'prompt'",
            field=f"{row.bench}/{row.task_id}",
        )
    messages = [{"role": role, "content": content} for role, content in row.messages]
    return str(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every token that ends an answer: the tokenizer's end token and the generation config's.

    Passing only the tokenizer's would drop the others a model ships with (instruct models
    often end a turn with one token and a document with another).
    """
    ids: list[int] = []
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in [tokenizer.eos_token_id, *(configured if isinstance(configured, list) else [configured])]:
        if isinstance(value, int) and value not in ids:
            ids.append(value)
    return ids


@torch.no_grad()
def generate_batch(
    model: Any, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int, temperature: float | None
) -> list[str]:
    """Completions of one batch: greedy when ``temperature`` is None, sampled otherwise."""
    device = next(model.parameters()).device
    batch = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    sampling: dict[str, Any] = (
        {"do_sample": False} if temperature is None else {"do_sample": True, "temperature": temperature}
    )
    generated = model.generate(
        **batch,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=stop_token_ids(model, tokenizer),
        **sampling,
    )
    return list(tokenizer.batch_decode(generated[:, batch["input_ids"].shape[1] :], skip_special_tokens=True))


def generate_suite(
    model: Any,
    tokenizer: Any,
    rows: Sequence[SuiteRow],
    *,
    samples: int,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    batch_size: int = BATCH_SIZE,
) -> list[dict[str, Any]]:
    """One record per (row, sample), rows in suite order within each sample."""
    prompts = [render_prompt(tokenizer, row) for row in rows]
    # Rows with the same token budget share batches; suite order is kept inside a group.
    groups: dict[int, list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(row.max_new_tokens or max_new_tokens, []).append(index)
    records: list[dict[str, Any]] = []
    for sample in range(samples):
        if samples > 1:
            torch.manual_seed(seed + sample)  # the same suite, seed and batching reproduce exactly
        out: dict[int, tuple[str, float]] = {}
        for budget, indices in groups.items():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                began = time.perf_counter()
                texts = generate_batch(
                    model,
                    tokenizer,
                    [prompts[i] for i in chunk],
                    max_new_tokens=budget,
                    temperature=temperature if samples > 1 else None,
                )
                # Rows are generated in batches, so a row's latency is its batch's time shared
                # equally: comparable between runs of one suite, not a single-request latency.
                latency = (time.perf_counter() - began) * 1000.0 / len(chunk)
                for i, text in zip(chunk, texts, strict=True):
                    out[i] = (text, round(latency, 3))
        for index, row in enumerate(rows):
            text, latency = out[index]
            records.append(
                {
                    "task_id": row.task_id,
                    "bench": row.bench,
                    "sample": sample,
                    "completion": text,
                    "latency_ms": latency,
                }
            )
    return records


def main(argv: list[str]) -> int:
    """Load the run's model, generate the suite and write the completions file."""
    parser = argparse.ArgumentParser(prog="python -m engine.worker.bench")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--suite", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--checkpoint", type=int, help="0: the base model alone; N: checkpoint-N's adapter")
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    args = parser.parse_args(argv)
    if args.samples < 1 or args.max_new_tokens < 1 or args.batch_size < 1 or args.temperature <= 0:
        raise ConfigError("--samples, --max-new-tokens, --batch-size and --temperature must be positive")

    started = time.monotonic()
    run_dir = args.run_dir.resolve()
    campaign = Campaign.open(run_dir.parent.parent)
    choice = choose_model(campaign, run_dir.name, args.checkpoint)
    rows = load_suite(args.suite)
    runtime.quiet_transformers()
    model, tokenizer = load_for_inference(choice.model_dir, choice.adapter)
    records = generate_suite(
        model,
        tokenizer,
        rows,
        samples=args.samples,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    write_jsonl_atomic(args.out, records)
    summary = {"rows": len(records), "model": choice.label, "seconds": round(time.monotonic() - started, 3)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    runtime.run_main(lambda: main(sys.argv[1:]))
