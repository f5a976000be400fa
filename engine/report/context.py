"""What every section of the report reads: the campaign, its runs in order, production, the bench answers.

Gathered once, before any section is written. A part that cannot be read (an invalid run.toml,
a production.json that is not JSON, a bench table that fails) does not stop the report: the
section that needs it says so in one line, and the line is also a warning for stderr.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.api import ProductionPointer, ReportText
from engine.decisions.registry import file_pointer
from engine.errors import TunedeckError
from engine.report.bench_data import BenchData, gather
from engine.report.runs_order import ReportRun, ordered_runs
from engine.report.tables import text
from engine.store.campaign import Campaign


@dataclass
class ReportContext:
    """The campaign as the report reads it; ``warnings`` collects every note a section made."""

    campaign: Campaign
    runs: list[ReportRun]
    production: ProductionPointer | None
    production_problem: str | None
    bench: BenchData
    warnings: list[str] = field(default_factory=list)

    def note(self, section: str, message: str) -> ReportText:
        """A one-line note for a section (in italics), also kept as a warning."""
        line = " ".join(message.split())
        self.warnings.append(f"report: {section}: {line}")
        return text(f"_{line}_")

    def run(self, name: str) -> ReportRun | None:
        """The report's run of that name (a bench ref's run: ``parse_ref(ref).run``)."""
        return next((run for run in self.runs if run.name == name), None)

    @property
    def production_run(self) -> str | None:
        """The run in production, or None."""
        return self.production.run if self.production is not None else None


def load_context(campaign: Campaign) -> ReportContext:
    """Read the campaign once for every section."""
    runs = ordered_runs(campaign)
    try:
        production, problem = file_pointer(campaign), None
    except TunedeckError as exc:
        production, problem = None, f"production.json could not be read: {exc}"
    bench = gather(campaign, runs, production.run if production is not None else None)
    context = ReportContext(campaign, runs, production, problem, bench)
    context.warnings += [f"bench: {line}" for line in bench.warnings]
    return context
