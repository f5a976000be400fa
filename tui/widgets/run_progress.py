"""A run's progress: a bar, the step, steps per second and the time left."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


def format_duration(seconds: float) -> str:
    """``1h02m``, ``3m05s``, ``42s``."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def progress_text(run: str, state: str, step: int, max_steps: int | None, rate: float | None) -> str:
    """``bd6.8d2 running  step 420/1000  3.2 steps/s  ETA 3m01s``."""
    text = f"{run} {state}  step {step}" + (f"/{max_steps}" if max_steps else "")
    if rate:
        text += f"  {rate:.2f} steps/s"
        if max_steps and step < max_steps and state in ("running", "queued"):
            text += f"  ETA {format_duration((max_steps - step) / rate)}"
    return text


class RunProgress(Horizontal):
    """The bar and its line of figures."""

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=None, show_eta=False, id="progress-bar")
        yield Label("no run selected", id="progress-text")

    def show(self, run: str, state: str, step: int, max_steps: int | None, rate: float | None) -> None:
        """Update bar and figures."""
        self.query_one(ProgressBar).update(total=max_steps or None, progress=step)
        self.query_one(Label).update(progress_text(run, state, step, max_steps, rate))
