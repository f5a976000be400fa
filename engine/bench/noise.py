"""Eval noise, stated: bootstrap intervals over judged prompts and their repeated evaluations.

The Foundry write-up saw single prompts swing 3-8 points between two judgings, so effects under
~0.5 were invisible — and nothing said so. Here a mean comes with a 95% interval from a two-level
bootstrap: prompts are resampled, then each drawn prompt's evaluations (``--samples`` answers,
``--repeats`` judgements) are resampled, so both the choice of prompts and the judge's own
wobble widen it. A delta whose interval holds 0 is *inside the noise*.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ROUNDS = 2000
LEVEL = 0.95
SEED = 0  # fixed: the same rows always give the same interval


@dataclass(frozen=True)
class Spread:
    """A mean over prompts (each prompt's evaluations averaged first) and its interval."""

    mean: float | None
    low: float | None
    high: float | None
    evaluations: int
    spread: float | None  # mean within-prompt standard deviation; None with one evaluation each


def _matrix(prompts: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Evaluations padded into one array (prompts x most evaluations) and each prompt's count.

    Each prompt's deviations from its mean are widened by sqrt(k / (k - 1)): resampling k values
    with replacement otherwise understates their variance by (k - 1) / k, a third with 3 repeats.
    """
    counts = np.array([len(values) for values in prompts])
    padded = np.zeros((len(prompts), int(counts.max())))
    for index, values in enumerate(prompts):
        row = np.asarray(values, dtype=float)
        if len(row) > 1:
            row = row.mean() + (row - row.mean()) * math.sqrt(len(row) / (len(row) - 1))
        padded[index, : len(row)] = row
    return padded, counts


def bootstrap_means(prompts: Sequence[Sequence[float]], *, rounds: int = ROUNDS, seed: int = SEED) -> np.ndarray:
    """``rounds`` bootstrap replicates of the mean of prompt means (two-level resampling)."""
    padded, counts = _matrix(prompts)
    rng = np.random.default_rng(seed)
    n = len(prompts)
    # Fewer rounds for a very large bench, so the replicates stay within ~20 M cells of memory.
    rounds = min(rounds, max(200, 20_000_000 // (n * int(counts.max()))))
    drawn = rng.integers(0, n, size=(rounds, n))
    # Each drawn prompt contributes the mean of its evaluations resampled with replacement.
    k = counts[drawn]
    picks = (rng.random((rounds, n, int(counts.max()))) * k[..., None]).astype(int)
    values = padded[drawn[..., None], picks]
    mask = np.arange(int(counts.max()))[None, None, :] < k[..., None]
    prompt_means = (values * mask).sum(axis=2) / k
    return np.asarray(prompt_means.mean(axis=1))


def _interval(replicates: np.ndarray) -> tuple[float, float]:
    tail = (1.0 - LEVEL) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return round(float(low), 4), round(float(high), 4)


def describe(prompts: Sequence[Sequence[float]]) -> Spread:
    """The mean of prompt means, its 95% interval (None under two prompts) and the within-prompt spread."""
    prompts = [list(values) for values in prompts if values]
    if not prompts:
        return Spread(None, None, None, 0, None)
    mean = round(sum(sum(v) / len(v) for v in prompts) / len(prompts), 4)
    repeated = [v for v in prompts if len(v) > 1]
    spread = round(sum(_std(v) for v in repeated) / len(repeated), 4) if repeated else None
    evaluations = sum(len(v) for v in prompts)
    if len(prompts) < 2:
        return Spread(mean, None, None, evaluations, spread)
    low, high = _interval(bootstrap_means(prompts))
    return Spread(mean, low, high, evaluations, spread)


def _std(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def delta_interval(
    candidate: Sequence[Sequence[float]], baseline: Sequence[Sequence[float]]
) -> tuple[float, float] | None:
    """95% interval of candidate mean - baseline mean (each side bootstrapped on its own)."""
    candidate = [list(v) for v in candidate if v]
    baseline = [list(v) for v in baseline if v]
    if len(candidate) < 2 or len(baseline) < 2:
        return None
    diff = bootstrap_means(candidate, seed=SEED) - bootstrap_means(baseline, seed=SEED + 1)
    return _interval(diff)
