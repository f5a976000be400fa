"""``python -m engine.worker.merge RUN_DIR [--checkpoint STEP]``: fold a run's LoRA into its base.

Writes runs/<run>/merged/ (model, tokenizer, manifest.json) through a temporary folder and a
rename, so a crash never leaves a half-merged model that looks whole. The manifest records
what went in (base, adapter, checkpoint), file hashes, and the measured max |logit difference|
between the merged model and adapter-on-base on a probe batch.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from engine.api import MergeSummary
from engine.errors import NotFoundError
from engine.store.atomic import replace_folder
from engine.store.campaign import Campaign, RunPaths, record_event
from engine.store.checkpoints import complete_checkpoints, newest_complete_checkpoint
from engine.store.config import RunConfig
from engine.store.datasets import PreferenceRow, PromptRow, Row, load_method_rows
from engine.store.locks import ExclusiveLock
from engine.store.merged import MANIFEST, file_hashes
from engine.worker import runtime
from engine.worker.generate import expected_text, prompt_text
from engine.worker.models import load_tokenizer

_FALLBACK_PROBES = ["The quick brown fox jumps over the lazy dog.", "def add(a, b):\n    return a + b\n"]


def choose_adapter(paths: RunPaths, checkpoint: int | None) -> tuple[Path, int | None]:
    """The adapter to merge: a named checkpoint, else adapter/, else the newest complete checkpoint."""
    found = complete_checkpoints(paths.checkpoints)
    if checkpoint is not None:
        if checkpoint not in found:
            have = ", ".join(str(s) for s in found) or "none"
            raise NotFoundError(
                f"no complete checkpoint at step {checkpoint} (complete: {have})", path=paths.checkpoints
            )
        return found[checkpoint], checkpoint
    if (paths.adapter / "adapter_config.json").is_file():
        return paths.adapter, None
    newest = newest_complete_checkpoint(paths.checkpoints)
    if newest is None:
        raise NotFoundError("the run has no adapter or complete checkpoint to merge yet", path=paths.root)
    return newest, int(newest.name.split("-")[1])


def probe_texts(campaign: Campaign, dataset: str | None, tokenizer: Any, n: int = 8, method: str = "sft") -> list[str]:
    """A few rows of the run's own data (prompt + completion, or + chosen), so the probe covers what was trained."""
    if dataset is not None:
        path = campaign.resolve(dataset)
        if path.is_file():
            return [_probe_text(tokenizer, row) for row in load_method_rows(path, method)[:n]]
    return list(_FALLBACK_PROBES)


def _probe_text(tokenizer: Any, row: Row | PreferenceRow | PromptRow) -> str:
    if isinstance(row, Row):
        return prompt_text(tokenizer, row) + expected_text(row)
    if row.messages is None:
        prompt = str(row.prompt)
    else:
        messages = [{"role": role, "content": content} for role, content in row.messages]
        prompt = str(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    return prompt + row.chosen if isinstance(row, PreferenceRow) else prompt


@torch.no_grad()
def probe_logits(model: Any, tokenizer: Any, texts: list[str]) -> torch.Tensor:
    """Float32 logits of the probe batch at real (non-padding) positions."""
    tokenizer.padding_side = "right"
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    batch = batch.to(next(model.parameters()).device)
    logits = model(**batch).logits.float()
    return logits[batch["attention_mask"].bool()]


def _write_merged(staging: Path, merged: Any, tokenizer: Any) -> None:
    merged.save_pretrained(staging)
    tokenizer.save_pretrained(staging)


def merge(run_dir: Path, checkpoint: int | None) -> dict[str, Any]:
    """Merge the run's adapter into its base; returns the manifest."""
    run_dir = run_dir.resolve()
    campaign = Campaign.open(run_dir.parent.parent)
    config = campaign.load_run(run_dir.name)
    paths = campaign.run(run_dir.name)
    # One merge of a run at a time: a second is refused at once, before it loads anything.
    with ExclusiveLock(paths.root / ".merge.lock", what=f"another merge of run {run_dir.name!r} is running"):
        return _merge(campaign, config, paths, checkpoint)


def _merge(campaign: Campaign, config: RunConfig, paths: RunPaths, checkpoint: int | None) -> dict[str, Any]:
    from peft import PeftModel

    run_dir = paths.root
    base = campaign.base_model(config, source=paths.run_toml)
    adapter, step = choose_adapter(paths, checkpoint)
    runtime.quiet_transformers()

    tokenizer = load_tokenizer(adapter if (adapter / "tokenizer_config.json").exists() else base)
    model: Any = AutoModelForCausalLM.from_pretrained(base, dtype="auto")
    model = PeftModel.from_pretrained(model, adapter).eval()
    texts = probe_texts(campaign, config.dataset, tokenizer, method=config.method.name)
    with_adapter = probe_logits(model, tokenizer, texts)
    merged = model.merge_and_unload()
    max_diff = float((probe_logits(merged, tokenizer, texts) - with_adapter).abs().max())

    # A staging folder of this merge's own: two merges of one run never write into each other's.
    staging = Path(tempfile.mkdtemp(prefix=".merged.", suffix=".partial", dir=paths.root))
    try:
        _write_merged(staging, merged, tokenizer)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest = {
        "run": run_dir.name,
        "base": str(base),
        "adapter": str(adapter),
        "checkpoint": step,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dtype": str(next(merged.parameters()).dtype).removeprefix("torch."),
        "max_logit_diff": max_diff,
        "probe": {"texts": len(texts), "positions": int(with_adapter.shape[0])},
        "files": file_hashes(staging),
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    replace_folder(staging, paths.merged)
    record_event(paths.events, "merged", path=str(paths.merged), checkpoint=step, max_logit_diff=max_diff)
    return {**manifest, "merged": str(paths.merged)}


def main(argv: list[str]) -> int:
    """Parse arguments, merge, and print the manifest (without file hashes) as JSON."""
    parser = argparse.ArgumentParser(prog="python -m engine.worker.merge")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--checkpoint", type=int, help="merge this checkpoint's adapter instead of the final one")
    args = parser.parse_args(argv)
    manifest = merge(args.run_dir, args.checkpoint)
    summary = MergeSummary(**{k: v for k, v in manifest.items() if k != "files"})
    print(json.dumps(summary.model_dump(mode="json")))
    return 0


if __name__ == "__main__":
    runtime.run_main(lambda: main(sys.argv[1:]))
