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

from engine.api import JobRequest, JobStatus, MergeSummary, RunStatus, WatchReport
from engine.bench.store import resolve_ref
from engine.cli.client import EngineClient
from engine.cli.common import Outcome, Say, add_checkpoint_option, campaign_of
from engine.errors import ConfigError, TunedeckError
from engine.runs.jobs import job_dir, read_jobs
from engine.runs.launch import check_extend, prepare_run, train_command
from engine.runs.run_state import run_status
from engine.runs.watch import watch_report
from engine.store.campaign import Campaign
from engine.store.config import RunConfig, load_toml
from engine.store.jsonl import write_text_atomic
from engine.store.names import validate_run_name


class JobFailed(TunedeckError):
    """A queued job ended without its result."""


def _run_worker_foreground(command: list[str]) -> int:
    """Run a worker with this terminal's output; its exit status becomes ours."""
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130


def _run_name_for(toml_path: Path, config: RunConfig, campaign: Campaign) -> str:
    """The run a run.toml describes: its runs/<run>/ folder, else its ``name``, else the file's stem."""
    if toml_path.parent.parent == campaign.runs_dir:
        name = toml_path.parent.name
    else:
        name = config.name or (toml_path.stem if toml_path.name != "run.toml" else toml_path.parent.name)
    return validate_run_name(name, source=str(toml_path), field="name")


def cmd_run(args: argparse.Namespace, say: Say) -> Outcome:
    """Validate a run.toml end to end, place it in runs/<run>/, and queue it (or train in the foreground)."""
    campaign = campaign_of(args)
    source = Path(args.run_toml).resolve()
    config = load_toml(source, RunConfig)
    name = _run_name_for(source, config, campaign)
    paths = campaign.run(name)
    text = source.read_text(encoding="utf-8")
    placed = source == paths.run_toml.resolve()
    # A run that failed before it trained (a bad setting, a missing file) takes its fixed run.toml.
    retry = paths.run_toml.exists() and not paths.metrics.exists() and run_status(name, paths).state == "failed"
    if not placed and not retry and paths.run_toml.exists() and paths.run_toml.read_text(encoding="utf-8") != text:
        raise ConfigError(f"run {name!r} already exists with a different run.toml", path=paths.run_toml)
    if paths.metrics.exists():
        raise ConfigError(f"run {name!r} has already trained; use 'tunedeck resume {name}'", path=paths.metrics)
    # Everything is checked before anything is written: a bad run changes nothing on disk.
    prepare_run(campaign, name, config=config, source=source)
    paths.root.mkdir(parents=True, exist_ok=True)
    if not placed:
        write_text_atomic(paths.run_toml, text)
    if args.foreground:
        return Outcome(code=_run_worker_foreground(train_command(paths.root, gpus=config.train.gpus)))
    return _submit(campaign, name, resume=False)


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
    """The state of one run (one JSON object) or of every run (a JSON list), read from the files.

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
    lines = [_status_line(s) for s in statuses] + (["jobs:"] + [_job_line(j) for j in pending] if pending else [])
    waiting = pending or any(s.state == "queued" for s in statuses)
    warnings = []
    if waiting:
        with EngineClient(campaign) as client:
            if client.health() is None:
                warnings.append("no engine is running for this campaign: queued work waits (tunedeck engine start)")
    return Outcome(statuses, "\n".join(lines) if lines else "no runs yet", warnings=warnings)


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
    run.add_argument("run_toml", metavar="RUN_TOML")
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
