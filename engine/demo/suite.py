"""The demo campaign's bench suite: the reverse-letters task, held out from its training data.

Two benches, so the demo shows both scorers a tiny model can earn: ``reverse`` (``expected``,
exact match) and ``reverse-tests`` (``tests``, Python asserts run in the sandbox). No
``json_fields`` rows: a 2-layer model trained only to reverse letters never writes JSON, and a
bench nobody can pass teaches nothing (score.py's unit tests cover that scorer).

Every prompt is checked against the demo's training and held-out datasets, so a pass means
the model generalised rather than remembered.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from engine.demo.reverse_task import HELDOUT_ROWS, HELDOUT_SEED, TRAIN_ROWS, TRAIN_SEED, reverse_rows
from engine.store.jsonl import write_jsonl_atomic

SUITE_SEED = 4242  # differs from the demo's dataset seeds (1: train, 2: held out)
EXPECTED_BENCH = "reverse"
TESTS_BENCH = "reverse-tests"
DEFAULT_ROWS = 40
MAX_NEW_TOKENS = 16  # answers are at most 9 characters; an untrained model babbles until the cap


def demo_dataset_prompts() -> set[str]:
    """Prompts of the demo's training and held-out datasets (rebuilt exactly as the demo builds them)."""
    rows = reverse_rows(TRAIN_ROWS, seed=TRAIN_SEED) + reverse_rows(HELDOUT_ROWS, seed=HELDOUT_SEED)
    return {row["prompt"] for row in rows}


def build_demo_suite(
    n: int = DEFAULT_ROWS, *, seed: int = SUITE_SEED, exclude_prompts: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """``n`` suite rows of fresh prompts: about 60% ``expected`` rows, the rest ``tests`` rows.

    ``exclude_prompts`` defaults to the demo's own datasets; pass a campaign's training prompts
    to hold the suite out from those instead.
    """
    excluded = demo_dataset_prompts() if exclude_prompts is None else set(exclude_prompts)
    fresh: list[dict[str, Any]] = []
    seen: set[str] = set()
    batch = 0
    while len(fresh) < n:
        for row in reverse_rows(4 * n, seed=seed + batch):
            if row["prompt"] not in excluded and row["prompt"] not in seen:
                seen.add(row["prompt"])
                fresh.append(row)
        batch += 1
    n_expected = (n * 3 + 4) // 5
    suite: list[dict[str, Any]] = []
    for index, row in enumerate(fresh[:n]):
        answer = row["completion"]
        if index < n_expected:
            suite.append(
                {
                    "bench": EXPECTED_BENCH,
                    "task_id": f"reverse/{index}",
                    "prompt": row["prompt"],
                    "expected": answer,
                    "max_new_tokens": MAX_NEW_TOKENS,
                }
            )
            continue
        if index % 2:
            tests = f"assert completion.strip() == {answer!r}, completion"
        else:
            # A property test: it reads the prompt instead of quoting the answer.
            tests = "letters = prompt.split()[1:]\nassert completion.split() == letters[::-1], (completion, letters)"
        suite.append(
            {
                "bench": TESTS_BENCH,
                "task_id": f"reverse-tests/{index}",
                "prompt": row["prompt"],
                "tests": tests,
                "timeout_s": 5,
                "max_new_tokens": MAX_NEW_TOKENS,
            }
        )
    return suite


def write_demo_suite(path: Path, n: int = DEFAULT_ROWS, *, exclude_prompts: Collection[str] | None = None) -> Path:
    """Write the demo suite as JSONL at ``path`` (atomically) and return the path."""
    write_jsonl_atomic(path, build_demo_suite(n, exclude_prompts=exclude_prompts))
    return path
