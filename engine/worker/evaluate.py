"""``python -m engine.worker.evaluate MODEL_DIR ROWS_JSONL [--adapter DIR]``: held-out exact match.

Prints one JSON object: ``{"exact_match": float, "n": int}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.errors import NotFoundError
from engine.store.datasets import load_rows
from engine.worker import runtime
from engine.worker.generate import exact_match, load_for_inference


def main(argv: list[str]) -> int:
    """Score greedy completions of a model folder on a JSONL of rows."""
    parser = argparse.ArgumentParser(prog="python -m engine.worker.evaluate")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("rows", type=Path)
    parser.add_argument("--adapter", type=Path)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args(argv)
    if not (args.model_dir / "config.json").is_file():
        raise NotFoundError("not a model folder (no config.json)", path=args.model_dir)
    runtime.quiet_transformers()
    rows = load_rows(args.rows, field="rows")[: args.limit]
    model, tokenizer = load_for_inference(args.model_dir, args.adapter)
    score = exact_match(model, tokenizer, rows, max_new_tokens=args.max_new_tokens)
    print(json.dumps({"exact_match": score, "n": len(rows)}))
    return 0


if __name__ == "__main__":
    runtime.run_main(lambda: main(sys.argv[1:]))
