"""``GET /runs/summary``: every row of the Runs table in one answer, cheap to ask every few seconds.

Per run: state, step, max_steps, pid and reason exactly as ``run_status`` derives them; then the
facts a full read of a file would give, kept per run in the engine process and brought up to date
from each file's last byte offset (engine.service.file_follow), so after the first request only
what was appended is read (a replaced file is read again):

- ``last_loss``: ``loss`` of the newest line of metrics.jsonl that logs one (file order, as
  ``last_step`` takes the newest line's step); only such lines are parsed;
- ``best_eval``: when the run logs ``eval_loss``, its lowest value; otherwise the first ``eval/*``
  or ``eval_*`` metric the file logs (HF's timings ``eval_runtime``, ``eval_samples_per_second``
  and ``eval_steps_per_second`` excepted), its highest value. Values are merged by (step, metric)
  (a later line of the same step wins), only finite ones count, and a tie goes to the earliest
  step; None when there is no such metric or no finite value;
- ``alerts``: ``alert`` events in events.jsonl.

Bench facts (pass rate per bench of the run's own ref, first-sample verdicts; the gate's verdict
when campaign.toml has a [gate] and the run has results) come from one opening of the bench cache
(engine.bench.answers.run_bench_facts); ``production`` from production.json; ``job`` is the kind
of the run's running (else first queued) merge or bench job.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from typing import Any

from engine.api import EvalBest, RunSummary
from engine.bench.answers import run_bench_facts
from engine.runs.jobs import read_jobs
from engine.runs.run_state import run_status
from engine.service.file_follow import FileFollower
from engine.store.campaign import Campaign
from engine.store.numbers import is_integer, is_number
from engine.store.production import read_production

EVAL_TIMINGS = frozenset({"eval_runtime", "eval_samples_per_second", "eval_steps_per_second"})
_LOSS_MARK = b'"loss"'
_EVAL_MARK = b'"eval'
_ALERT_MARK = b"alert"


@dataclass
class RunFacts:
    """What the Runs table needs from a run's metrics and events, following both files."""

    metrics: FileFollower
    events: FileFollower
    last_loss_line: bytes | None = None
    evals: dict[str, dict[int, float]] = field(default_factory=dict)  # metric -> step -> value, in first-logged order
    alerts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self) -> None:
        found = self.metrics.read_new()
        if found.restart:
            self.last_loss_line, self.evals = None, {}
        for line in found.lines:
            if _LOSS_MARK in line:
                self.last_loss_line = line  # parsed only when asked: one line, not every line
            if _EVAL_MARK in line:
                self._add_eval(line)
        found = self.events.read_new()
        if found.restart:
            self.alerts = 0
        for line in found.lines:
            if _ALERT_MARK in line and _event(line) == "alert":
                self.alerts += 1

    def _add_eval(self, line: bytes) -> None:
        record = _object(line)
        step = record.get("step")
        if not is_integer(step):
            return
        for key, value in record.items():
            if (key.startswith(("eval_", "eval/"))) and key not in EVAL_TIMINGS and is_number(value):
                self.evals.setdefault(key, {})[step] = float(value)

    def last_loss(self) -> float | None:
        if self.last_loss_line is None:
            return None
        value = _object(self.last_loss_line).get("loss")
        return float(value) if is_number(value) else None

    def best_eval(self) -> EvalBest | None:
        metric = "eval_loss" if "eval_loss" in self.evals else next(iter(self.evals), None)
        if metric is None:
            return None
        finite = [(value, step) for step, value in sorted(self.evals[metric].items()) if math.isfinite(value)]
        if not finite:
            return None
        lowest = metric.endswith("loss")  # eval_loss, or a loss logged as eval/loss
        value, step = min(finite, key=lambda p: p[0]) if lowest else max(finite, key=lambda p: p[0])
        return EvalBest(metric=metric, value=value, step=step)


def _object(line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _event(line: bytes) -> Any:
    return _object(line).get("event")


class RunSummaries:
    """The engine's per-run facts for ``GET /runs/summary`` (one ``RunFacts`` per run)."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self._facts: dict[str, RunFacts] = {}
        self._lock = threading.Lock()

    def _run_facts(self, run: str) -> RunFacts:
        with self._lock:
            facts = self._facts.get(run)
            if facts is None:
                paths = self.campaign.run(run)
                facts = self._facts[run] = RunFacts(FileFollower(paths.metrics), FileFollower(paths.events))
        with facts.lock:
            facts.refresh()
        return facts

    def summaries(self) -> list[RunSummary]:
        """One ``RunSummary`` per run of the campaign, in the campaign's order."""
        names = self.campaign.run_names()
        with self._lock:
            for gone in set(self._facts) - set(names):
                del self._facts[gone]
        bench = run_bench_facts(self.campaign, names)
        pointer = read_production(self.campaign)
        production = pointer["run"] if pointer else None
        jobs: dict[str, str] = {}
        for job in read_jobs(self.campaign):  # oldest first: a running job wins over a queued one
            if job.state in ("running", "stopping") or (job.state == "queued" and job.run not in jobs):
                jobs[job.run] = job.kind
        out = []
        for name in names:
            status = run_status(name, self.campaign.run(name))
            facts = self._run_facts(name)
            rates, gate = bench.get(name, ({}, None))
            out.append(
                RunSummary(
                    **status.model_dump(),
                    last_loss=facts.last_loss(),
                    best_eval=facts.best_eval(),
                    pass_rates=rates,
                    gate=gate,
                    alerts=facts.alerts,
                    production=name == production,
                    job=jobs.get(name),
                )
            )
        return out
