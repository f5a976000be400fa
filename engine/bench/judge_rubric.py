"""The rubric a judge scores with, the request it is sent in, and the rubric's hash.

The rubric is ``[judge] rubric`` (a file inside the campaign) or tunedeck's default. Whatever it
says, tunedeck appends the answer format — one JSON object with a number per component named
in ``[judge] weights`` — so the parser and the rubric always agree. The hash of the whole system
message is recorded with every score: two scores are comparable only under the same rubric.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from engine.bench.suite import SuiteRow
from engine.errors import ConfigError, NotFoundError
from engine.store.config import JudgeConfig

DEFAULT_RUBRIC = """You are a strict, consistent evaluator of a language model's answers.
Score the answer to the prompt on each component from 0 (absent) to 10 (excellent), judging
only what the answer says. List as critical failures only answers that break the task outright
(a refusal, a broken persona, a factual error that inverts the answer)."""

FORMAT = """Reply with one JSON object and nothing else:
{{{fields}, "overall_score": <0-10>, "critical_failures": [<short strings>]}}
Every component must be a number."""


@dataclass(frozen=True)
class Rubric:
    """The judge's system message and its SHA-256 (hex)."""

    system: str
    sha256: str


def load_rubric(campaign_root: Path, config: JudgeConfig) -> Rubric:
    """The system message for ``config`` (its rubric file, or the default) and its hash."""
    if config.rubric is None:
        text = DEFAULT_RUBRIC
    else:
        path = campaign_root / config.rubric
        if not path.is_file():
            raise NotFoundError("the [judge] rubric file does not exist", path=path)
        text = path.read_text(encoding="utf-8").strip()
        if not text:
            raise ConfigError("the rubric file is empty", path=path, field="judge.rubric")
    fields = ", ".join(f'"{name}": <0-10>' for name in sorted(config.weights))
    system = f"{text}\n\nComponents: {', '.join(sorted(config.weights))}.\n{FORMAT.format(fields=fields)}"
    return Rubric(system=system, sha256=hashlib.sha256(system.encode()).hexdigest())


def judge_messages(rubric: Rubric, row: SuiteRow, answer: str) -> list[dict[str, str]]:
    """The chat sent to the judge: the rubric, then the suite prompt (and category) and the answer."""
    category = f"Category: {row.category}\n\n" if row.category else ""
    user = f"{category}## Prompt\n{row.prompt_text}\n\n## Answer\n{answer}"
    return [{"role": "system", "content": rubric.system}, {"role": "user", "content": user}]
