"""A user's reward module, as a campaign would keep it: TRL's reward-function signature."""

from typing import Any


def extraction(completions: list[str], answer: list[str], **kwargs: Any) -> list[float]:
    """1 for a completion that starts with the expected answer's first word, else 0."""
    return [1.0 if c.split()[:1] == a.split()[:1] else 0.0 for c, a in zip(completions, answer, strict=True)]
