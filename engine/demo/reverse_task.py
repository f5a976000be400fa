"""The demo's task: reverse a sequence of letters, which the tiny model learns on a CPU in seconds."""

from __future__ import annotations

import random
from typing import Any

LETTERS = "abcdefgh"
# The demo campaign's datasets: sizes and seeds (the held-out suite avoids every prompt in them).
TRAIN_ROWS, HELDOUT_ROWS = 2000, 200
TRAIN_SEED, HELDOUT_SEED = 1, 2


def reverse_rows(n: int, seed: int, *, min_len: int = 3, max_len: int = 5) -> list[dict[str, Any]]:
    """Rows of the 'reverse a sequence of letters' task: prompt/completion with a task id."""
    rng = random.Random(seed)
    rows = []
    for index in range(n):
        letters = [rng.choice(LETTERS) for _ in range(rng.randint(min_len, max_len))]
        rows.append(
            {
                "task_id": f"reverse/{seed}-{index}",
                "prompt": f"reverse: {' '.join(letters)}\n",
                "completion": " ".join(reversed(letters)),
            }
        )
    return rows


def tokenizer_corpus() -> list[str]:
    """Text the tiny tokenizer is trained on: the task's alphabet plus general ASCII prose."""
    words = [
        "reverse",
        "sort",
        "copy",
        "count",
        "the",
        "answer",
        "is",
        "def",
        "return",
        "assert",
        "user",
        "assistant",
        "system",
        "true",
        "false",
        "none",
        "pass",
        "fail",
        "json",
    ]
    lines = [" ".join(words), "".join(chr(c) for c in range(32, 127))]
    rng = random.Random(0)
    for _ in range(2000):
        letters = [rng.choice(LETTERS) for _ in range(rng.randint(1, 8))]
        lines.append(f"reverse: {' '.join(letters)}\n{' '.join(reversed(letters))}")
    return lines
