"""Exact McNemar test: is a pass-rate change more than the discordant rows' coin flips?"""

from __future__ import annotations

import math


def mcnemar_exact(lost: int, gained: int) -> float:
    """Two-sided exact McNemar p-value for ``lost`` (pass -> fail) and ``gained`` (fail -> pass) rows.

    Under the null hypothesis each discordant row is equally likely to go either way, so the
    smaller count follows Binomial(n, 1/2); p = 2 P(X <= min), capped at 1. No discordant rows
    means no evidence of a change: p = 1. Summed in log space from the tail inwards, so a
    million discordant rows cost a few thousand terms, not a million big integers.
    """
    if lost < 0 or gained < 0:
        raise ValueError("counts must be non-negative")
    n = lost + gained
    if n == 0:
        return 1.0
    k = min(lost, gained)
    if 2 * k >= n:
        return 1.0
    log_half_n = n * math.log(0.5)

    def log_term(i: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n

    # Terms grow with i up to n/2, so the largest is at i = k; walk down until they vanish.
    top = log_term(k)
    total = 0.0
    for i in range(k, -1, -1):
        ratio = math.exp(log_term(i) - top)
        total += ratio
        if ratio < 1e-17 * total:
            break
    return min(1.0, 2.0 * math.exp(top) * total)
