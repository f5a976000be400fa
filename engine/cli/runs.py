"""``tunedeck run | resume | stop | status | watch | merge``: one run's life, through the engine.

``run`` and ``resume`` hand the run to the engine (started in the background when none answers)
unless ``--foreground`` trains in this terminal, whose exit status is then the command's.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path
from typing import Any

from engine.api import CampaignStatus, JobRequest, JobStatus, MergeSummary, RunCost, RunStatus, WatchReport
from engine.bench.store import resolve_ref
from engine.cli.client import EngineClient
from engine.cli.common import Outcome, Say, add_checkpoint_option, campaign_of
from engine.cli.decide import cmd_from_decision
from engine.errors import ConfigError, TunedeckError
from engine.runs.costs import campaign_costs
from engine.runs.jobs import job_dir, read_jobs
from engine.runs.launch import check_extend, prepare_run, train_command
from engine.runs.placement import place_run
from engine.runs.run_state import run_status
from engine.runs.watch import watch_report
from engine.store.campaign import Campaign


class JobFailed(TunedeckError):
    """A queued job ended without its result."""


def _run_worker_foreground(command: list[str]) -> int:
    """Run a worker with this terminal's output; its exit status becomes ours."""
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130


def cmd_run(args: argparse.Namespace, say: Say) -> Outcome:
    """Validate a run.toml end to end, place it in runs/<run>/, and queue it (or train in the foreground)."""
    if args.from_decision:
        if args.run_toml:
            raise ConfigError("give RUN_TOML or --from-decision RUN NEW_RUN, not both", field="--from-decision")
        return cmd_from_decision(args, *args.from_decision)
    if not args.run_toml:
        raise ConfigError("give a RUN_TOML (or --from-decision RUN NEW_RUN)", field="RUN_TOML")
    campaign = campaign_of(args)
    prepared = place_run(campaign, Path(args.run_toml))
    if args.foreground:
        command = train_command(prepared.paths.root, gpus=prepared.config.train.gpus)
        return Outcome(code=_run_worker_foreground(command))
    return _submit(campaign, prepared.name, resume=False)


def cmd_resume(args: argparse.Namespace, say: Say) -> Outcome:
    """Continue a run from its newest complete checkpoint."""
    campaign = campaign_of(args)
    prepared = prepare_run(campaign, args.run)
    if args.foreground:
        if run_status(args.run, prepared.paths).state == "finished":
            # The engine checks this for queued resumes; in the foreground it is ours to check.
            check_extend(args.run, prepared.paths, prepared.config.train.max_steps, extend=args.extend)
        command = train_command(prepared.paths.root, resume=True, gpus=prepared.config.train.gpus)
        return Outcome(code=_run_worker_foreground(command))
    return _submit(campaign, args.run, resume=True, extend=args.extend)


def _submit(campaign: Campaign, run: str, *, resume: bool, extend: bool = False) -> Outcome:
    """Hand a run to the engine (started in the background if none answers)."""
    with EngineClient(campaign) as client:
        client.ensure_running()
        status = client.start(run, resume=resume, extend=extend)
    return Outcome(status, f"{run}: {status.state} (follow it with: tunedeck status {run})")


def _status_line(status: RunStatus) -> str:
    total = f"/{status.max_steps}" if status.max_steps else ""
    pid = f"  pid {status.pid}" if status.pid else ""
    line = f"{status.run:<24} {status.state:<9} step {status.step}{total}{pid}"
    if status.reason:
        line += f"\n{'':<24} {status.state}: {status.reason}"
    if status.state == "failed":
        hint = (
            f"fix runs/{status.run}/run.toml (or its data), then: tunedeck run runs/{status.run}/run.toml"
            if status.step == 0
            else f"fix the cause, then continue from its last checkpoint: tunedeck resume {status.run}"
        )
        line += f"\n{'':<24} {hint}"
    return line


def _job_line(job: JobStatus) -> str:
    pid = f"  pid {job.pid}" if job.pid else ""
    return f"  {job.kind} of {job.run:<15} {job.state:<9} job {job.id}{pid}"


def cmd_status(args: argparse.Namespace, say: Say) -> Outcome:
    """The state of one run, or of every run with the pending jobs and the declared costs summed, from the files.

    No engine is started for it: a run's state is derived from its files, the same way the
    engine derives it, so asking never changes anything.
    """
    campaign = campaign_of(args)
    if args.run:
        campaign.load_run(args.run)
        status = run_status(args.run, campaign.run(args.run))
        return Outcome(status, _status_line(status))
    statuses = [run_status(name, campaign.run(name)) for name in campaign.run_names()]
    pending = [job for job in read_jobs(campaign) if job.state in ("queued", "running", "stopping")]
    costs, total, warnings = campaign_costs(campaign)
    lines = [_status_line(s) for s in statuses] + (["jobs:"] + [_job_line(j) for j in pending] if pending else [])
    if costs:
        lines.append(_cost_line("cost", total, len(costs)))
    waiting = pending or any(s.state == "queued" for s in statuses)
    if waiting:
        with EngineClient(campaign) as client:
            if client.health() is None:
                warnings.append("no engine is running for this campaign: queued work waits (tunedeck engine start)")
    answer = CampaignStatus(runs=statuses, jobs=pending, costs=costs, cost_total=total)
    return Outcome(answer, "\n".join(lines) if lines else "no runs yet", warnings=warnings)


def _cost_line(label: str, cost: RunCost, runs: int) -> str:
    parts = [f"${cost.total_usd:,.2f}" if cost.total_usd is not None else "no dollars declared"]
    if cost.gpu_hours is not None:
        parts.append(f"{cost.gpu_hours:,.1f} GPU h")
    if cost.generation_s is not None or cost.judging_s is not None:
        parts.append(f"bench {(cost.generation_s or 0) + (cost.judging_s or 0):,.0f} s")
    return f"{label}: {', '.join(parts)} over {runs} run(s) with a [cost] or a measured bench"


def cmd_stop(args: argparse.Namespace, say: Say) -> Outcome:
    """Ask a run to checkpoint and stop, and wait until it has (exit 1 if it has not in time)."""
    campaign = campaign_of(args)
    campaign.load_run(args.run)
    with EngineClient(campaign) as client:
        client.ensure_running()
        status = client.stop(args.run, reason=args.reason)
        deadline = time.monotonic() + args.timeout
        while not args.no_wait and status.state in ("running", "stopping") and time.monotonic() < deadline:
            time.sleep(0.2)
            status = client.status(args.run)
    stopped = args.no_wait or status.state not in ("running", "stopping")
    if stopped:
        return Outcome(status, _status_line(status))
    late = f"{args.run} has not stopped within {args.timeout:g} s (state {status.state}); it will stop at its next step"
    return Outcome(status, _status_line(status), code=1, warnings=[late])


def _watch_text(report: WatchReport, run: str, rules: int) -> str:
    if not rules:
        return "no watch rules in campaign.toml"
    if not report.alerts:
        return f"{run}: no watch rule fired ({rules} rules)"
    lines = []
    for alert in report.model_dump(mode="json")["alerts"]:
        lines.append(
            f"{alert['action'].upper():<5} {alert['rule']}: {alert['metric']} = {alert['value']} at step "
            f"{alert['first_step']} (held on {alert['count']} logged values)"
        )
    return "\n".join(lines)


def cmd_watch(args: argparse.Namespace, say: Say) -> Outcome:
    """The alerts the campaign's watch rules raise on a run's recorded metrics."""
    campaign = campaign_of(args)
    report = watch_report(campaign, args.run)
    return Outcome(report, _watch_text(report, args.run, len(campaign.config.watch)))


def cmd_merge(args: argparse.Namespace, say: Say) -> Outcome:
    """Merge a run's adapter (or the one a checkpoint saved) into its base model, in a worker process."""
    campaign = campaign_of(args)
    campaign.load_run(args.run)
    step = resolve_ref(args.run, args.checkpoint).step
    if step == 0:
        raise ConfigError("0 is the base model alone: there is no adapter to merge", field="--checkpoint")
    # A merge loads the model: it is a job in the engine's queue like training (one GPU job at a time).
    with EngineClient(campaign) as client:
        client.ensure_running()
        job = client.run_job(JobRequest(kind="merge", run=args.run, checkpoint=step), say)
    if job.state != "finished" or job.result is None:
        raise JobFailed(f"merge {job.state}: {job.error or 'no summary'}", path=job_dir(campaign, job.id))
    summary = MergeSummary.model_validate(job.result)
    return Outcome(
        summary,
        f"merged {args.run} into {summary.merged} (max |logit diff| vs adapter-on-base {summary.max_logit_diff:.2e})",
    )


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register run, resume, stop, status, watch and merge on the main parser's subparsers."""
    run = sub.add_parser("run", parents=[common], help="train the run a run.toml describes")
    run.add_argument("run_toml", metavar="RUN_TOML", nargs="?")
    run.add_argument(
        "--from-decision", nargs=2, metavar=("RUN", "NEW_RUN"),
        help="write runs/NEW_RUN/run.toml from RUN's latest decision walk (it does not start it)",
    )  # fmt: skip
    run.add_argument("--foreground", action="store_true", help="train in this terminal instead of the engine")
    run.set_defaults(handler=cmd_run)

    resume = sub.add_parser("resume", parents=[common], help="resume a run from its newest complete checkpoint")
    resume.add_argument("run", metavar="RUN")
    resume.add_argument("--foreground", action="store_true", help="train in this terminal instead of the engine")
    resume.add_argument(
        "--extend", action="store_true", help="train a finished run further (raise [train] max_steps first)"
    )
    resume.set_defaults(handler=cmd_resume)

    stop = sub.add_parser("stop", parents=[common], help="checkpoint and stop a run")
    stop.add_argument("run", metavar="RUN")
    stop.add_argument("--reason", help="recorded in events.jsonl")
    stop.add_argument("--no-wait", action="store_true", help="return once the stop is requested")
    stop.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the stop (default 300)")
    stop.set_defaults(handler=cmd_stop)

    status = sub.add_parser("status", parents=[common], help="state of the runs (or of one run)")
    status.add_argument("run", nargs="?", metavar="RUN")
    status.set_defaults(handler=cmd_status)

    watch = sub.add_parser("watch", parents=[common], help="alerts of the campaign's watch rules on a run")
    watch.add_argument("run", metavar="RUN")
    watch.set_defaults(handler=cmd_watch)


def add_merge_command(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register merge (after engine, where ``tunedeck --help`` has always listed it)."""
    merge = sub.add_parser("merge", parents=[common], help="merge a run's adapter into its base model")
    merge.add_argument("run", metavar="RUN")
    add_checkpoint_option(merge)
    merge.set_defaults(handler=cmd_merge)
