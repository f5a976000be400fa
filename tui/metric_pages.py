"""Which metrics the Monitor's grid shows: every logged name, grouped, filtered, cut into pages.

Order: the overview first (loss, grad_norm, learning_rate and the eval metric, as the Monitor has
always opened), then the other training metrics by name, then the other eval metrics by name (eval
ones together), then bookkeeping (epoch, runtimes, throughputs, flops). A filter is a glob when it
holds ``*``, ``?`` or ``[`` (``eval/*``, ``rewards/*``) and a case-insensitive substring otherwise
(``reward``, ``completions/``). Pure logic: no widget, no engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

TRAIN_PINNED = ("loss", "grad_norm", "learning_rate")
EVAL_PREFERRED = ("eval_loss", "eval/loss")
EVAL_PREFIXES = ("eval_", "eval/")
BOOKKEEPING = ("epoch", "total_flos", "step_time")
BOOKKEEPING_SUFFIXES = ("runtime", "per_second")
# Grid layouts (rows, columns) the g / G keys step through; the default is the 2 x 2 overview.
LAYOUTS = ((1, 1), (1, 2), (2, 2), (2, 3), (3, 3), (3, 4))
DEFAULT_LAYOUT = 2
SMOOTHING = (0.0, 0.6, 0.8, 0.9, 0.95, 0.99)  # EMA weights the s / S keys step through (0: off)
MIN_CHART_WIDTH, MIN_CHART_HEIGHT = 34, 9  # below this a chart's axes eat its plot: fewer per page


def is_eval(name: str) -> bool:
    """An evaluation metric (HF's ``eval_*``, TRL's ``eval/<task>``)."""
    return name.startswith(EVAL_PREFIXES)


def is_bookkeeping(name: str) -> bool:
    """Figures about the run rather than the model (epoch, runtimes, throughputs)."""
    base = name.rsplit("/", 1)[-1]
    return base in BOOKKEEPING or base.endswith(BOOKKEEPING_SUFFIXES)


def pick_eval_metric(names: list[str]) -> str | None:
    """The eval metric of the overview: eval_loss when logged, else the first eval one in name order."""
    for name in EVAL_PREFERRED:
        if name in names:
            return name
    evals = sorted(n for n in names if is_eval(n) and not is_bookkeeping(n))
    return evals[0] if evals else None


def order_metrics(names: list[str]) -> list[str]:
    """Every name once: the overview, then train, then eval, then bookkeeping (each by name)."""
    known = set(names)
    overview = [n for n in TRAIN_PINNED if n in known]
    eval_pick = pick_eval_metric(names)
    if eval_pick is not None:
        overview.append(eval_pick)
    rest = sorted(known - set(overview))
    train = [n for n in rest if not is_eval(n) and not is_bookkeeping(n)]
    evals = [n for n in rest if is_eval(n) and not is_bookkeeping(n)]
    books = [n for n in rest if is_bookkeeping(n)]
    return overview + train + evals + books


def matches(name: str, pattern: str) -> bool:
    """Whether ``name`` passes the filter: a glob with * ? [, else a case-insensitive substring."""
    pattern = pattern.strip()
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatchcase(name.lower(), pattern.lower())
    return pattern.lower() in name.lower()


def fit_layout(rows: int, cols: int, width: int, height: int) -> tuple[int, int]:
    """The layout asked for, with fewer rows or columns where the charts would be too small to read."""
    fit_rows = max(1, height // MIN_CHART_HEIGHT)
    fit_cols = max(1, width // MIN_CHART_WIDTH)
    return min(rows, fit_rows), min(cols, fit_cols)


@dataclass
class MetricPages:
    """The names known, the filter, the page size and the page shown."""

    names: set[str] = field(default_factory=lambda: set(TRAIN_PINNED))
    pattern: str = ""
    size: int = 4
    page: int = 0
    _ordered: list[str] | None = field(default=None, repr=False)

    def set_names(self, names: set[str]) -> None:
        """Replace the known names (a run's metric-names answer)."""
        self.names, self._ordered = set(names), None

    def add_names(self, names: set[str]) -> bool:
        """Names seen in live lines; True when one is new."""
        new = names - self.names
        if new:
            self.names |= new
            self._ordered = None
        return bool(new)

    def set_filter(self, pattern: str) -> None:
        """A new filter, from its first page."""
        self.pattern, self.page, self._ordered = pattern, 0, None

    @property
    def shown(self) -> list[str]:
        """Every name that passes the filter, in grid order."""
        if self._ordered is None:
            self._ordered = [n for n in order_metrics(sorted(self.names)) if matches(n, self.pattern)]
        return self._ordered

    @property
    def count(self) -> int:
        """Pages of the filtered names (at least one, even when empty)."""
        return max(1, math.ceil(len(self.shown) / max(1, self.size)))

    def current(self) -> list[str]:
        """The names on the page shown."""
        self.page = min(self.page, self.count - 1)
        return self.shown[self.page * self.size : (self.page + 1) * self.size]

    def turn(self, direction: int) -> None:
        """Next (1) or previous (-1) page, wrapping around."""
        self.page = (self.page + direction) % self.count

    def resize(self, size: int) -> None:
        """A new page size; the page shown keeps its first metric in view."""
        first = self.page * self.size
        self.size = max(1, size)
        self.page = first // self.size
