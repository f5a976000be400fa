"""The fact kinds a tree.toml may declare under ``[facts.<name>]``: each one a table of data.

Every fact takes ``kind``, an optional ``run`` (default: the run being decided) and an optional
``label`` (how reasons name it). What each kind reads is in its class docstring; how it is
evaluated is engine.decisions.facts. A fact's value type (``VALUE``) says which operators a
condition may apply to it, so a tree comparing a yes/no fact with ``>=`` is refused on load.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.store.names import validate_run_name

ValueType = Literal["number", "bool", "text", "mapping", "any"]
DiffClass = Literal["kept", "lost", "gained", "still_failing"]


def _run_names(names: list[str]) -> list[str]:
    for name in names:
        validate_run_name(name)
    return names


class FactSpec(BaseModel):
    """What every fact shares; subclasses add their parameters."""

    # strict: `step = "600"` is a mistake to name, not a number to guess.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    VALUE: ClassVar[ValueType] = "number"
    kind: str
    run: str | None = Field(None, description="The run to read (default: the run being decided).")
    label: str | None = Field(None, min_length=1, description="How reasons name this fact.")

    @field_validator("run")
    @classmethod
    def _safe_run(cls, value: str | None) -> str | None:
        return None if value is None else validate_run_name(value)

    def describe(self, run: str | None = None) -> str:
        """The fact in words (naming ``run`` where the words need it)."""
        return self.kind

    def value_type(self) -> ValueType:
        """The type of value the fact has, which decides the operators a condition may apply."""
        return self.VALUE

    def label_for(self, run: str, decided: str) -> str:
        """The tree's label, else the description (naming the run when it is not the decided one)."""
        if self.label:
            return self.label
        words = self.describe(run)
        return words if run in words or run == decided else f"{words} of {run}"

    def params(self) -> dict[str, Any]:
        """The parameters as written in the tree (for the TUI), without kind and label."""
        return self.model_dump(by_alias=True, exclude={"kind", "label"}, exclude_none=True)


class _Metric(FactSpec):
    metric: str = Field(min_length=1, description="The metric exactly as logged, e.g. 'eval/mean_reward'.")


class MetricAt(_Metric):
    """The metric's value at ``step``: the nearest logged value at or before it."""

    kind: Literal["metric_at"]
    step: int = Field(ge=0)

    def describe(self, run: str | None = None) -> str:
        return f"{self.metric} at step {self.step}"


class MetricLast(_Metric):
    """The metric's last logged value."""

    kind: Literal["metric_last"]

    def describe(self, run: str | None = None) -> str:
        return f"last {self.metric}"


class MetricMax(_Metric):
    """The highest logged value of the metric."""

    kind: Literal["metric_max"]

    def describe(self, run: str | None = None) -> str:
        return f"max {self.metric}"


class MetricMin(_Metric):
    """The lowest logged value of the metric."""

    kind: Literal["metric_min"]

    def describe(self, run: str | None = None) -> str:
        return f"min {self.metric}"


class MetricStepOfMax(_Metric):
    """The step at which the metric was highest (the first such step)."""

    kind: Literal["metric_step_of_max"]

    def describe(self, run: str | None = None) -> str:
        return f"step of max {self.metric}"


class PlateauFact(_Metric):
    """Whether the metric plateaued: the watch rule's plateau, exactly (engine/runs/watch.py)."""

    VALUE: ClassVar[ValueType] = "bool"
    kind: Literal["plateau"]
    window: int = Field(gt=0)
    min_delta: float = Field(gt=0)
    before_step: int | None = Field(None, ge=0)
    after_step: int | None = Field(None, ge=0)

    def describe(self, run: str | None = None) -> str:
        before = f" before step {self.before_step}" if self.before_step is not None else ""
        return f"{self.metric} moved less than {self.min_delta:g} over {self.window} steps{before}"


class EvalReward(FactSpec):
    """A per-task eval reward, ``eval/<task>``: at ``step`` (nearest at or before), else the last."""

    kind: Literal["eval_reward"]
    task: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    step: int | None = Field(None, ge=0)

    @property
    def metric(self) -> str:
        return f"eval/{self.task}"

    def describe(self, run: str | None = None) -> str:
        return f"{self.metric} at step {self.step}" if self.step is not None else f"last {self.metric}"


class LowestOf(FactSpec):
    """Which of several metrics is lowest (at ``step``, else their last values): its name."""

    VALUE: ClassVar[ValueType] = "text"
    kind: Literal["lowest_of"]
    metrics: list[str] = Field(min_length=2)
    step: int | None = Field(None, ge=0)

    def describe(self, run: str | None = None) -> str:
        at = f" at step {self.step}" if self.step is not None else ""
        return f"lowest of {', '.join(self.metrics)}{at}"


class PassRate(FactSpec):
    """A bench's pass rate (first samples; ``tunedeck bench show``)."""

    kind: Literal["pass_rate"]
    bench: str = Field(min_length=1)

    def describe(self, run: str | None = None) -> str:
        return f"{self.bench} pass rate"


class PassRateDelta(FactSpec):
    """A bench's pass-rate delta against production or a named run (``tunedeck bench diff``)."""

    kind: Literal["pass_rate_delta"]
    bench: str = Field(min_length=1)
    against: str = "production"

    def describe(self, run: str | None = None) -> str:
        return f"{self.bench} pass-rate delta against {self.against}"


class DiffCount(FactSpec):
    """How many rows of one diff class (KEPT, LOST, ...) against production or a named run."""

    model_config = ConfigDict(populate_by_name=True)
    kind: Literal["diff_count"]
    row_class: DiffClass = Field(alias="class")
    against: str = "production"
    exclude_flaky: bool = Field(False, description="leave out rows whose samples disagree")

    def describe(self, run: str | None = None) -> str:
        flaky = " that are not flaky" if self.exclude_flaky else ""
        return f"{self.row_class.replace('_', ' ').upper()} rows{flaky} against {self.against}"


class RowsLost(FactSpec):
    """Whether any of the named rows (task ids, or ``bench:task_id``) was LOST against the baseline."""

    VALUE: ClassVar[ValueType] = "bool"
    kind: Literal["rows_lost"]
    rows: list[str] = Field(min_length=1)
    against: str = "production"

    def describe(self, run: str | None = None) -> str:
        return f"any of {', '.join(self.rows)} lost against {self.against}"


class FlakyRows(FactSpec):
    """How many of the run's rows are flaky (their repeated samples disagree)."""

    kind: Literal["flaky_rows"]

    def describe(self, run: str | None = None) -> str:
        return f"flaky rows of {run}" if run else "flaky rows"


class GateFact(FactSpec):
    """Whether the run passes campaign.toml's [gate] (``tunedeck gate``)."""

    VALUE: ClassVar[ValueType] = "bool"
    kind: Literal["gate"]

    def describe(self, run: str | None = None) -> str:
        return f"{run} passes the gate" if run else "passes the gate"


class AnchorsPassed(FactSpec):
    """Gate anchors a run passes; with ``runs``, a table run -> count (compare them with ``all_equal``)."""

    kind: Literal["anchors_passed"]
    runs: list[str] | None = Field(None, min_length=1)

    @field_validator("runs")
    @classmethod
    def _safe_runs(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _run_names(value)

    def value_type(self) -> ValueType:
        return "mapping" if self.runs else "number"

    def describe(self, run: str | None = None) -> str:
        if self.runs:
            return f"anchors passed by {', '.join(self.runs)}"
        return f"anchors {run} passes" if run else "anchors passed"


class AnchorsPeak(FactSpec):
    """Per lever, the best anchor count among its runs: ``levers = {name = [runs]}``."""

    VALUE: ClassVar[ValueType] = "mapping"
    kind: Literal["anchors_peak"]
    levers: dict[str, list[str]] = Field(min_length=1)

    @field_validator("levers")
    @classmethod
    def _runs(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for lever, runs in value.items():
            if not runs:
                raise ValueError(f"{lever}: name at least one run")
            _run_names(runs)
        return value

    def describe(self, run: str | None = None) -> str:
        return "peak anchor count per lever"


class ConfigValue(FactSpec):
    """A value of the run's config: a dotted key into run.toml (defaults filled in, as the run trained)."""

    VALUE: ClassVar[ValueType] = "any"
    kind: Literal["config"]
    key: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")

    def describe(self, run: str | None = None) -> str:
        return f"run.toml {self.key}"


FACT_KINDS: dict[str, type[FactSpec]] = {
    cls.model_fields["kind"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in (
        MetricAt, MetricLast, MetricMax, MetricMin, MetricStepOfMax, PlateauFact, EvalReward, LowestOf,
        PassRate, PassRateDelta, DiffCount, RowsLost, FlakyRows, GateFact, AnchorsPassed, AnchorsPeak, ConfigValue,
    )
}  # fmt: skip
