"""What a decision walk shows: the path taken (node by node, with the fact each one read) and its outcome."""

from __future__ import annotations

import json

from rich.text import Text
from textual.widgets import DataTable, Static

from engine.api import DecisionWalk, FactResult, Recommendation

PATH_COLUMNS = ("node", "kind", "what it read or asked", "value", "way")
FACT_COLUMNS = ("fact", "value", "from")


def show_value(value: object) -> str:
    """A fact's JSON value as a person reads it (lists and tables compact, floats short)."""
    if value is None:
        return "unknown"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "))


class WalkPath(DataTable[str | Text]):
    """One row per node of the walk's path: a condition with its test, an ask with its answer, the leaf."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        for column in PATH_COLUMNS:
            self.add_column(column, key=column)

    def show(self, walk: DecisionWalk) -> None:
        """Replace the rows with ``walk``'s steps."""
        self.clear()
        for index, step in enumerate(walk.steps):
            way = f"{step.branch} → {step.next}" if step.branch and step.next else (step.branch or "stopped here")
            value = show_value(step.value) if step.kind == "condition" else ""
            style = "bold green" if step.kind == "leaf" else "yellow" if step.branch is None else ""
            self.add_row(Text(step.node, style=style), step.kind, step.text, value, way, key=str(index))


class FactsTable(DataTable[str | Text]):
    """Every fact the walk evaluated: its value, or why it is unknown (a missing fact is never guessed)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        for column in FACT_COLUMNS:
            self.add_column(column, key=column)

    def show(self, facts: dict[str, FactResult]) -> None:
        """Replace the rows with ``facts``."""
        self.clear()
        for name, fact in facts.items():
            value = Text(show_value(fact.value), style="" if fact.known else "bold red")
            self.add_row(fact.label or name, value, fact.detail or "", key=name)


def patch_lines(recommendation: Recommendation) -> list[str]:
    """The config patch as run.toml lines: ``lora.r = 16``, then the keys the next run removes."""
    lines: list[str] = []

    def walk(prefix: str, table: dict[str, object]) -> None:
        for key, value in table.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(name, value)
            else:
                lines.append(f"{name} = {json.dumps(value)}")

    walk("", dict(recommendation.config_patch))
    lines += [f"{key}  (removed)" for key in recommendation.config_unset]
    return lines


class WalkOutcome(Static):
    """The recommendation (title, reasons, patch), or the question the walk waits on, or why it stopped."""

    def show(self, walk: DecisionWalk) -> None:
        """Describe how ``walk`` ended."""
        text = Text()
        if walk.recommendation is not None:
            rec = walk.recommendation
            text.append(f"Recommendation {rec.id}: ", style="bold green")
            text.append(f"{rec.title}\n")
            for reason in rec.reasons:
                text.append(f"  • {reason}\n")
            lines = patch_lines(rec)
            if lines:
                text.append("config patch for the next run (c creates it):\n", style="bold")
                text.append("".join(f"  {line}\n" for line in lines))
        elif walk.questions:
            for question in walk.questions:
                text.append(f"Question ({question.key}): ", style="bold yellow")
                text.append(f"{question.question}\n  choices: {', '.join(question.choices)}   (a answers)\n")
        else:
            text.append("No recommendation: ", style="bold red")
            text.append(walk.stopped or "the walk stopped on an unknown fact")
        if walk.answers:
            text.append("\nanswers: " + ", ".join(f"{k}={v}" for k, v in walk.answers.items()), style="dim")
        if walk.walk:
            text.append(f"\nsaved as runs/{walk.run}/decisions/{walk.walk}.json", style="dim")
        self.update(text)
