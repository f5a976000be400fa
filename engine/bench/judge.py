"""``tunedeck bench judge RUN --suite SUITE``: generate with a run's model, then have an LLM judge it.

Generation is ``bench run``'s (the same worker, through the engine's queue from the CLI). Then
every answer is judged ``--repeats`` times over HTTP (``engine.bench.judge_client``), at most
``[judge] concurrency`` requests at once. Each judgement is appended to a log in the run's
``.judge/`` folder the moment it comes back, and the completions are kept there too: a
judging that is interrupted (Ctrl-C, a crash, a killed terminal) resumes where it stopped
without paying again for what was judged. The folder goes once the bench rows are written.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.api.bench import BenchJudgeSummary, BenchTotals
from engine.bench.db import refresh_cache
from engine.bench.judge_client import STOP_STATUSES, JudgeClient, JudgeRequestError
from engine.bench.judge_parse import SCALE, VerdictError, parse_verdict, weighted_overall
from engine.bench.judge_rows import judged_row, load_judge_suite
from engine.bench.judge_rubric import Rubric, judge_messages, load_rubric
from engine.bench.model_choice import choose_model
from engine.bench.run import LOG_NAME, MAX_SAMPLES, Generate, _completions, _generate
from engine.bench.store import ModelRef, bench_file, replace_benches, resolve_ref
from engine.bench.suite import SuiteRow
from engine.errors import ConfigError, TunedeckError
from engine.store.campaign import CAMPAIGN_FILE, Campaign, record_event
from engine.store.config import JudgeConfig
from engine.store.jsonl import JsonlWriter, iter_jsonl, write_jsonl_atomic
from engine.store.locks import ExclusiveLock

MAX_REPEATS = 20
STATE_DIR = ".judge"


class JudgeStopped(TunedeckError):
    """The judge could not be used; nothing was written and what it did judge is kept for a resume."""


# (judgements done, judgements in all), about each time one comes back.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Task:
    """One judgement to make: an answer of a row, judged for the ``repeat``-th time."""

    row: SuiteRow
    answer: int
    repeat: int
    completion: str
    latency_ms: Any

    @property
    def key(self) -> str:
        return f"{self.row.bench}\t{self.row.task_id}\t{self.answer}\t{self.repeat}"


def judge_settings(campaign: Campaign, env: Mapping[str, str]) -> tuple[JudgeConfig, str | None]:
    """The campaign's judge and its API key, or one ``ConfigError`` saying what is missing."""
    where = campaign.root / CAMPAIGN_FILE
    config = campaign.config.judge
    if config is None:
        raise ConfigError("no [judge] section: declare weights, base_url and model", path=where, field="judge")
    for name in ("base_url", "model"):
        if getattr(config, name) is None:
            raise ConfigError(
                "missing: bench judge needs the judge's address and model", path=where, field=f"judge.{name}"
            )
    if config.api_key_env is None:
        return config, None
    key = env.get(config.api_key_env)
    if not key:
        raise ConfigError(
            f"the environment variable {config.api_key_env} (the judge's API key) is not set",
            path=where,
            field="judge.api_key_env",
        )
    return config, key


def _cost(config: JudgeConfig, tokens_in: int, tokens_out: int) -> float | None:
    if config.price_input_per_mtok is None or config.price_output_per_mtok is None:
        return None
    return round((tokens_in * config.price_input_per_mtok + tokens_out * config.price_output_per_mtok) / 1e6, 8)


async def judge_one(client: JudgeClient, rubric: Rubric, task: Task) -> dict[str, Any]:
    """One judgement: scored, or a judge error after one re-judge with a larger ``max_tokens``.

    ``paid`` is False when no answer came back at all (a resume tries those again).
    """
    config = client.config
    components = sorted(config.weights)
    messages = judge_messages(rubric, task.row, task.completion)
    spent = {"tokens_in": 0, "tokens_out": 0, "judge_requests": 0, "judge_latency_ms": 0.0}
    budgets = (config.max_tokens, config.rejudge_max_tokens or 2 * config.max_tokens)
    why = ""
    for attempt, budget in enumerate(budgets):
        try:
            reply = await client.complete(messages, max_tokens=budget)
        except JudgeRequestError as exc:
            spent["judge_requests"] += exc.tries
            return {**spent, "error": str(exc), "paid": attempt > 0, "rejudged": attempt > 0, "status": exc.status}
        spent["tokens_in"] += reply.tokens_in
        spent["tokens_out"] += reply.tokens_out
        spent["judge_requests"] += reply.tries
        spent["judge_latency_ms"] = round(spent["judge_latency_ms"] + reply.latency_ms, 3)
        cut = reply.finish_reason == "length"
        try:
            # An answer cut at max_tokens is not repaired: closing its braces could keep half a number.
            verdict = parse_verdict(reply.text, components, repair=not cut, scale=SCALE)
        except VerdictError as exc:
            why = f"{exc}" + (f" (cut at max_tokens={budget})" if cut else "")
            continue
        return {
            **spent,
            "error": None,
            "paid": True,
            "rejudged": attempt > 0,
            "scores": verdict.scores,
            "score": weighted_overall(verdict.scores, config.weights),
            "judge_overall": verdict.judge_overall,
            "critical_failures": verdict.critical_failures,
        }
    return {**spent, "error": f"{why}; judged again with max_tokens={budgets[1]}", "paid": True, "rejudged": True}


def _digest(rubric: Rubric, config: JudgeConfig, task: Task) -> str:
    """What makes a logged judgement reusable: same rubric, judge, settings and answer."""
    text = "\0".join([rubric.sha256, str(config.model), str(config.base_url), f"{config.temperature}", task.completion])
    return hashlib.sha256(text.encode()).hexdigest()


def _logged(log: Path, digests: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Judgements an interrupted run already paid for that still apply (torn last line skipped)."""
    if not log.is_file():
        return {}
    done: dict[str, dict[str, Any]] = {}
    for line in iter_jsonl(log, strict=False):
        record = line.record
        key = record.get("key")
        if isinstance(key, str) and digests.get(key) == record.get("digest") and record.get("paid"):
            done[key] = {**record, "resumed": True}
    return done


async def judge_tasks(
    config: JudgeConfig,
    api_key: str | None,
    rubric: Rubric,
    tasks: list[Task],
    log: Path,
    *,
    progress: Progress | None = None,
) -> tuple[dict[str, dict[str, Any]], int]:
    """Every task's judgement (the logged ones reused) and how many were reused."""
    digests = {task.key: _digest(rubric, config, task) for task in tasks}
    results = _logged(log, digests)
    reused = len(results)
    todo = [task for task in tasks if task.key not in results]
    if progress is not None:
        progress(len(results), len(tasks))
    with JsonlWriter(log) as writer:
        async with JudgeClient(config, api_key) as client:

            async def one(task: Task) -> tuple[Task, dict[str, Any]]:
                return task, await judge_one(client, rubric, task)

            pending = [asyncio.ensure_future(one(task)) for task in todo]
            try:
                for finished in asyncio.as_completed(pending):
                    task, judgement = await finished
                    record = {"key": task.key, "digest": digests[task.key], **judgement}
                    if judgement["paid"]:
                        writer.write(record)  # flushed now: a kill after this line costs nothing
                    elif judgement.get("status") in STOP_STATUSES:
                        raise _stopped(judgement, sum(bool(r.get("paid")) for r in results.values()))
                    results[task.key] = record
                    if progress is not None:
                        progress(len(results), len(tasks))
            finally:  # stopped early: nothing more is sent, and what is in flight is waited for
                client.stop_sending()
                for outcome in await asyncio.gather(*pending, return_exceptions=True):
                    if isinstance(outcome, tuple) and outcome[1]["paid"] and outcome[0].key not in results:
                        task, judgement = outcome
                        # Answered (and billed) after the stop: kept, so a resume does not pay for it again.
                        writer.write({"key": task.key, "digest": digests[task.key], **judgement})
    return results, reused


def _stopped(judgement: dict[str, Any], kept: int) -> JudgeStopped:
    """Why judging stopped at an answer that every other request would get too."""
    field = "judge." + STOP_STATUSES[judgement["status"]]
    said = f"the judge answered {judgement['error']}; stopped: every request would get the same"
    return JudgeStopped(f"{said}. Nothing written; {kept} judgements kept for a resume", field=field)


def _state_dir(campaign: Campaign, ref: ModelRef, suite: Path, samples: int) -> Path:
    digest = hashlib.sha256(suite.read_bytes() + f"\0{ref}\0{samples}".encode()).hexdigest()[:16]
    return campaign.run(ref.run).root / STATE_DIR / f"{ref}-{digest}"


def _completions_for(
    campaign: Campaign,
    ref: ModelRef,
    rows: list[SuiteRow],
    records: list[dict[str, Any]],
    state: Path,
    *,
    samples: int,
    generate: Generate | None,
) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The answers to judge: kept from an interrupted run, else generated now (and kept)."""
    kept = state / "completions.jsonl"
    if kept.is_file():
        return _completions(kept, rows, samples)
    suite = state / "suite.jsonl"
    write_jsonl_atomic(suite, records)  # every row with a scorer the worker's loader accepts
    if generate is not None:
        produced = generate(ref, suite, samples)
    else:
        produced = state / "generated.jsonl"
        _generate(campaign, ref, suite, produced, samples=samples, log=campaign.run(ref.run).root / LOG_NAME)
    found = _completions(produced, rows, samples)
    write_jsonl_atomic(kept, found.values())
    return found


def _one_judging(state: Path, ref: ModelRef) -> ExclusiveLock:
    """Held while judging into ``state``: a second judging of the same answers would pay for each one again."""
    state.mkdir(parents=True, exist_ok=True)
    return ExclusiveLock(state / "lock", what=f"another bench judge of {ref} with this suite is running")


def _refuse_unanswered(campaign: Campaign, results: dict[str, dict[str, Any]]) -> None:
    """No answer at all (the judge down, unreachable): writing only errors would replace the bench rows."""
    if results and not any(r.get("paid") for r in results.values()):
        first = next(iter(results.values()))["error"]
        raise JudgeStopped(
            f"the judge answered none of {len(results)} requests ({first}); nothing written: run again when it answers",
            path=campaign.root / CAMPAIGN_FILE,
            field="judge.base_url",
        )


def _check_counts(samples: int, repeats: int) -> None:
    if not 1 <= samples <= MAX_SAMPLES:
        raise ConfigError(f"must be between 1 and {MAX_SAMPLES}, got {samples}", field="samples")
    if not 1 <= repeats <= MAX_REPEATS:
        raise ConfigError(f"must be between 1 and {MAX_REPEATS}, got {repeats}", field="repeats")


def judge_suite(
    campaign: Campaign,
    ref: str,
    suite: Path,
    *,
    samples: int = 1,
    repeats: int = 1,
    checkpoint: int | None = None,
    say: Callable[[str], None] | None = None,
    generate: Generate | None = None,
    progress: Progress | None = None,
    env: Mapping[str, str] | None = None,
) -> BenchJudgeSummary:
    """Generate ``suite`` with the model ``ref`` names, judge every answer, write judged bench rows.

    Everything a user can get wrong (the [judge] settings, the key's variable, the rubric, the
    suite, the model) is checked before any process starts or any request is sent.
    """
    started = time.monotonic()
    tell = say or (lambda _message: None)
    config, api_key = judge_settings(campaign, os.environ if env is None else env)
    _check_counts(samples, repeats)
    model_ref = resolve_ref(ref, checkpoint)
    suite = Path(suite).resolve()
    rows, records = load_judge_suite(suite)
    rubric = load_rubric(campaign.root, config)
    choice = choose_model(campaign, model_ref.run, model_ref.step)
    state = _state_dir(campaign, model_ref, suite, samples)
    with _one_judging(state, model_ref):
        tell(f"generating {len(rows)} rows x {samples} with {model_ref.run}'s {choice.label} model")
        completions = _completions_for(campaign, model_ref, rows, records, state, samples=samples, generate=generate)
        generated = time.monotonic()
        tasks = []
        for answer in range(samples):
            for row in rows:
                found = completions[(row.bench, row.task_id, answer)]
                completion, latency = str(found.get("completion", "")), found.get("latency_ms")
                tasks += [Task(row, answer, repeat, completion, latency) for repeat in range(repeats)]
        tell(f"judging {len(tasks)} answers with {config.model} at {config.base_url} ({config.concurrency} at once)")
        log = state / "judged.jsonl"
        try:
            results, reused = asyncio.run(judge_tasks(config, api_key, rubric, tasks, log, progress=progress))
        except JudgeStopped as exc:
            raise JudgeStopped(exc.message, path=campaign.root / CAMPAIGN_FILE, field=exc.field) from None
        _refuse_unanswered(campaign, results)
        judged = time.monotonic()
        summary = _write(campaign, model_ref, tasks, results, config=config, rubric=rubric, repeats=repeats)
        record_event(
            campaign.run(model_ref.run).events, "bench_judge", ref=str(model_ref), suite=str(suite), model=choice.label,
            samples=samples, repeats=repeats, judge_model=config.model, rubric_sha256=rubric.sha256,
            judged=summary["judged"], errors=summary["errors"], tokens_in=summary["tokens_in"],
            tokens_out=summary["tokens_out"], cost_usd=summary["cost_usd"],
            generation_s=round(generated - started, 3), judging_s=round(judged - generated, 3),
        )  # fmt: skip
        unanswered = sum(1 for r in results.values() if r.get("error") and not r.get("paid"))
        if unanswered:
            # Kept: running the same command again sends only these (the answers and the paid
            # judgements are reused); a judge that answered unreadably is not asked again.
            tell(f"{unanswered} requests got no answer: the same command judges only those again")
        else:
            shutil.rmtree(state, ignore_errors=True)
    return BenchJudgeSummary(
        run=str(model_ref), rows=len(tasks), resumed=reused, **summary,
        generation_s=round(generated - started, 3), judging_s=round(judged - generated, 3),
        seconds=round(time.monotonic() - started, 3), model=choice.label, judge_model=str(config.model),
        rubric_sha256=rubric.sha256, samples=samples, repeats=repeats,
    )  # fmt: skip


def _write(
    campaign: Campaign,
    ref: ModelRef,
    tasks: list[Task],
    results: dict[str, dict[str, Any]],
    *,
    config: JudgeConfig,
    rubric: Rubric,
    repeats: int,
) -> dict[str, Any]:
    """Write the judged rows, one bench file per bench; the totals of the summary."""
    by_bench: dict[str, list[dict[str, Any]]] = {}
    totals: dict[str, dict[str, int]] = {}
    spent = {"tokens_in": 0, "tokens_out": 0, "requests": 0}
    for task in tasks:
        result = results[task.key]
        judgement = {
            **result,
            "answer": task.answer,
            "repeat": task.repeat,
            "judge_model": config.model,
            "rubric_sha256": rubric.sha256,
            "cost_usd": _cost(config, result["tokens_in"], result["tokens_out"]),
        }
        sample = task.answer * repeats + task.repeat
        row = judged_row(
            str(ref), task.row, sample=sample, completion=task.completion, latency_ms=task.latency_ms,
            judgement=judgement,
        )  # fmt: skip
        by_bench.setdefault(task.row.bench, []).append(row)
        counts = totals.setdefault(task.row.bench, {"total": 0, "passed": 0})
        if sample == 0:
            counts["total"] += 1
            counts["passed"] += int(row["passed"])
        spent["tokens_in"] += result["tokens_in"]
        spent["tokens_out"] += result["tokens_out"]
    replace_benches(campaign, ref, by_bench)
    refresh_cache(campaign, [bench_file(campaign, ref, bench) for bench in by_bench])
    fresh = [r for r in results.values() if not r.get("resumed")]
    return {
        "judged": sum(r["error"] is None for r in results.values()),
        "errors": sum(r["error"] is not None for r in results.values()),
        "rejudged": sum(bool(r.get("rejudged")) for r in results.values()),
        "requests": sum(r["judge_requests"] for r in fresh),
        "benches": {bench: BenchTotals(**counts) for bench, counts in totals.items()},
        "tokens_in": spent["tokens_in"],
        "tokens_out": spent["tokens_out"],
        "cost_usd": _cost(config, spent["tokens_in"], spent["tokens_out"]),
    }
