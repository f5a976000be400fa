"""Write sessions/v4_1's tiny datasets: small synthetic versions of the handoff's four task types.

The V4.1 data (``datasets/pairs/``, ~1,480 commerce prompts) is not kept here; these rows let the
tiny model (campaign.toml ``[models] tiny``) run the same recipe on a CPU in minutes. Each row names
its task in ``task`` (extraction, sql_qa, insights, push) and carries the JSON object the answer
must hold in ``fields``; the targets write decimals the PT-BR way (``"nota": 3,5``), which the
``json_fields`` reward reads as 3.5. Deterministic; run from the repository root:

    .venv/bin/python sessions/v4_1/tools/make_tiny.py [--out sessions/v4_1]

It writes ``datasets/tiny/sft.jsonl`` (prompt/completion, the warm-up), ``grpo.jsonl`` (prompt,
fields, task) and ``eval.jsonl`` (held out: no prompt of it is in the other two).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.demo.tiny_datasets import write_tiny_datasets

SESSION = Path(__file__).resolve().parent.parent
SFT_ROWS, GRPO_ROWS, EVAL_PER_TASK = 800, 400, 8
SFT_SEED, GRPO_SEED, EVAL_SEED = 11, 12, 13

TONE = {"ruim": "neg", "bom": "pos", "ok": "neu"}  # extraction: the review word -> its sentiment
TREND = {"subiu": "alta", "caiu": "queda"}  # insights: the sales verb -> the trend
PRODUCTS = ("cafe", "pao", "leite", "suco", "arroz")  # push: the product on offer
# The share of each task's warm-up targets written as free text, not JSON: the warmed model answers in
# JSON only some of the time, and the json_fields reward (0 for what is not JSON) has something to teach.
PROSE_SHARE = {"extraction": 0.7, "sql_qa": 0.6, "insights": 0.6, "push": 0.55}


def pt_decimal(rng: random.Random) -> str:
    """A decimal written the PT-BR way, e.g. ``3,5``."""
    return f"{rng.randint(1, 4)},{rng.randint(0, 9)}"


def as_number(pt: str) -> float:
    """``3,5`` -> 3.5 (what the json_fields reward compares with)."""
    return float(pt.replace(",", "."))


def extraction(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    """A review's score and sentiment, as JSON."""
    word, nota = rng.choice(list(TONE)), pt_decimal(rng)
    answer = f'{{"nota": {nota}, "tom": "{TONE[word]}"}}'
    return f"extraia: {word} nota {nota}\n", answer, {"nota": as_number(nota), "tom": TONE[word]}


def sql_qa(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    """One value looked up in a three-column row, as JSON."""
    values = {key: pt_decimal(rng) for key in "abc"}
    key = rng.choice("abc")
    table = " ".join(f"{k}={v}" for k, v in values.items())
    return f"sql: {key}? {table}\n", f'{{"valor": {values[key]}}}', {"valor": as_number(values[key])}


def insights(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    """A sales trend and its percentage, as JSON."""
    verb, pct = rng.choice(list(TREND)), rng.randint(2, 40)
    answer = f'{{"tend": "{TREND[verb]}", "pct": {pct}}}'
    return f"insight: vendas {verb} {pct}\n", answer, {"tend": TREND[verb], "pct": pct}


def push(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    """A push notification's product and discount, as JSON."""
    product, off = rng.choice(PRODUCTS), rng.randint(5, 50)
    return f"push: {product} {off}\n", f'{{"item": "{product}", "off": {off}}}', {"item": product, "off": off}


TASKS: dict[str, Callable[[random.Random], tuple[str, str, dict[str, Any]]]] = {
    "extraction": extraction,
    "sql_qa": sql_qa,
    "insights": insights,
    "push": push,
}


def task_rows(n: int, seed: int, *, exclude: set[str] | None = None, unique: bool = False) -> list[dict[str, Any]]:
    """``n`` rows cycling through the four tasks, none of whose prompts is in ``exclude`` (nor twice, ``unique``)."""
    rng = random.Random(seed)
    names = list(TASKS)
    rows: list[dict[str, Any]] = []
    refused = set(exclude or ())
    while len(rows) < n:
        task = names[len(rows) % len(names)]
        prompt, completion, fields = TASKS[task](rng)
        if prompt in refused:
            continue
        if unique:
            refused.add(prompt)
        rows.append({"task": task, "prompt": prompt, "completion": completion, "fields": fields})
    return rows


def free_text(answer: str) -> str:
    """The JSON answer as the free text a model not yet taught the format writes: ``nota 3,5, tom neg``."""
    return answer[1:-1].replace('"', "").replace(": ", " ")


def warm_up_rows(rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """SFT rows: the JSON answer, or (a task's PROSE_SHARE of the time) the same answer as free text."""
    rng = random.Random(seed)
    out = []
    for index, row in enumerate(rows):
        prose = rng.random() < PROSE_SHARE[row["task"]]
        completion = free_text(row["completion"]) if prose else row["completion"]
        out.append({"task_id": f"{row['task']}/{index}", "prompt": row["prompt"], "completion": completion})
    return out


def datasets() -> dict[str, list[dict[str, Any]]]:
    """The three files, by name: the held-out rows first, so neither training set holds one of them."""
    held_out = task_rows(EVAL_PER_TASK * len(TASKS), EVAL_SEED, unique=True)
    excluded = {row["prompt"] for row in held_out}
    sft = task_rows(SFT_ROWS, SFT_SEED, exclude=excluded)
    grpo = task_rows(GRPO_ROWS, GRPO_SEED, exclude=excluded)
    return {
        "sft.jsonl": warm_up_rows(sft, SFT_SEED),
        "grpo.jsonl": [{"prompt": r["prompt"], "fields": r["fields"], "task": r["task"]} for r in grpo],
        "eval.jsonl": [{"prompt": r["prompt"], "fields": r["fields"], "task": r["task"]} for r in held_out],
    }


def write(out: Path) -> list[Path]:
    """Write every file under ``out/datasets/tiny/``; returns their paths."""
    return write_tiny_datasets(out, datasets())


def main() -> None:
    """``make_tiny.py [--out DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SESSION, help="the campaign folder (default: sessions/v4_1)")
    for path in write(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
