"""Write sessions/foundry's tiny preference set: the Madison persona against character breaks.

The write-up's pairs (chosen: Madison's own voice; rejected: a base model's answer) are not kept;
these rows let the tiny model (campaign.toml ``[models] tiny``) run ORPO and DPO on a CPU in a
minute. The pairs differ clearly, as the write-up's worst failure does: chosen answers stay in
character, rejected ones break it ("As an AI, ..."). Deterministic; run from the repository root:

    .venv/bin/python sessions/foundry/tools/make_tiny.py [--out sessions/foundry]

It writes ``datasets/tiny/pairs.jsonl`` and ``datasets/tiny/heldout.jsonl`` (prompts not in the
training pairs), each row ``{"task_id", "prompt", "chosen", "rejected"}``; ``task_id`` starts with the
write-up's category prefix (at, cc, gt, pd, pv, vr).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

from engine.demo.tiny_datasets import write_tiny_datasets

SESSION = Path(__file__).resolve().parent.parent
TRAIN_PAIRS, HELDOUT_PAIRS = 240, 24
TRAIN_SEED, HELDOUT_SEED = 21, 22

# (category prefix, topic): what Madison is asked about.
TOPICS = [
    ("gt", "the senate"), ("gt", "the house"), ("gt", "a national bank"), ("gt", "the courts"),
    ("pd", "a standing army"), ("pd", "the militia"), ("pd", "new taxes"), ("pd", "the union"),
    ("vr", "the press"), ("vr", "religion"), ("vr", "faction"), ("vr", "the states"),
    ("pv", "your books"), ("pv", "montpelier"), ("cc", "your friends"), ("at", "the telephone"),
]  # fmt: skip
QUESTIONS = ["what of {t}?", "speak of {t}.", "your view on {t}?", "tell me of {t}."]
IN_CHARACTER = [
    "I hold that {t} must answer to the people.",
    "Sir, {t} rests on the consent of the governed.",
    "On {t}, I trust a balance of powers.",
]
CHARACTER_BREAK = [
    "As an AI, I have no view on {t}.",
    "I am a language model and cannot say.",
    "As an AI model, I do not hold opinions.",
]


def prompts() -> list[tuple[str, str, str]]:
    """Every (category, topic, prompt), in a fixed order."""
    return [(cat, topic, f"madison, {q.format(t=topic)}\n") for cat, topic in TOPICS for q in QUESTIONS]


def pairs(n: int, seed: int, pool: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """``n`` preference rows drawn from ``pool``: chosen in Madison's voice, rejected a character break."""
    rng = random.Random(seed)
    rows = []
    for index in range(n):
        cat, topic, prompt = rng.choice(pool)
        rows.append(
            {
                "task_id": f"{cat}-{index:03d}",
                "prompt": prompt,
                "chosen": rng.choice(IN_CHARACTER).format(t=topic),
                "rejected": rng.choice(CHARACTER_BREAK).format(t=topic),
            }
        )
    return rows


def datasets() -> dict[str, list[dict[str, Any]]]:
    """The two files, by name: every eighth prompt is held out of the training pairs."""
    every = prompts()
    held_out = every[::8]
    training = [p for p in every if p not in held_out]
    return {
        "pairs.jsonl": pairs(TRAIN_PAIRS, TRAIN_SEED, training),
        "heldout.jsonl": pairs(HELDOUT_PAIRS, HELDOUT_SEED, held_out),
    }


def write(out: Path) -> list[Path]:
    """Write every file under ``out/datasets/tiny/``; returns their paths."""
    return write_tiny_datasets(out, datasets())


def main() -> None:
    """``make_tiny.py [--out DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SESSION, help="the campaign folder (default: sessions/foundry)")
    for path in write(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
