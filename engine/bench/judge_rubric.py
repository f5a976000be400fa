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

# The rubric goes with every request, so its size is paid for on every row.
MAX_RUBRIC_BYTES = 256 << 10
_FIELD = "judge.rubric"

FORMAT = """Reply with one JSON object and nothing else:
{{{fields}, "overall_score": <0-10>, "critical_failures": [<short strings>]}}
Every component must be a number."""


@dataclass(frozen=True)
class Rubric:
    """The judge's system message and its SHA-256 (hex)."""

    system: str
    sha256: str


def _rubric_text(campaign_root: Path, rubric: str) -> str:
    """The rubric file's text: a UTF-8 file inside the campaign (a symlink out of it is refused)."""
    path = campaign_root / rubric
    if not path.exists():
        raise NotFoundError("the [judge] rubric file does not exist", path=path)
    real = path.resolve()
    if campaign_root.resolve() not in real.parents:
        raise ConfigError(f"leads outside the campaign folder (-> {real}): refused", path=path, field=_FIELD)
    if not path.is_file():
        raise ConfigError("not a file (the rubric is one text file)", path=path, field=_FIELD)
    if path.stat().st_size > MAX_RUBRIC_BYTES:
        raise ConfigError(f"over {MAX_RUBRIC_BYTES:,} bytes: it is sent with every request", path=path, field=_FIELD)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=path, field=_FIELD) from None
    if not text:
        raise ConfigError("the rubric file is empty", path=path, field=_FIELD)
    return text


def load_rubric(campaign_root: Path, config: JudgeConfig) -> Rubric:
    """The system message for ``config`` (its rubric file, or the default) and its hash."""
    text = DEFAULT_RUBRIC if config.rubric is None else _rubric_text(campaign_root, config.rubric)
    fields = ", ".join(f'"{name}": <0-10>' for name in sorted(config.weights))
    system = f"{text}\n\nComponents: {', '.join(sorted(config.weights))}.\n{FORMAT.format(fields=fields)}"
    return Rubric(system=system, sha256=hashlib.sha256(system.encode()).hexdigest())


def judge_messages(rubric: Rubric, row: SuiteRow, answer: str) -> list[dict[str, str]]:
    """The chat sent to the judge: the rubric, then the suite prompt (and category) and the answer."""
    category = f"Category: {row.category}\n\n" if row.category else ""
    user = f"{category}## Prompt\n{row.prompt_text}\n\n## Answer\n{answer}"
    return [{"role": "system", "content": rubric.system}, {"role": "user", "content": user}]
