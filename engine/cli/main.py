"""The ``tunedeck`` command line.

Every command takes ``--campaign DIR`` (default: the current directory). A problem the user
can fix is one line on stderr naming file, line and field, with exit status 2; no Python
traceback reaches a user (set TUNEDECK_DEBUG=1 to see one for an internal error).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.cli.bench import add_commands as add_bench_commands
from engine.cli.client import EngineClient
from engine.cli.common import campaign_of, emit
from engine.errors import EXIT_BAD_INPUT, ConfigError, TunedeckError
from engine.runs.launch import merge_command, prepare_run, train_command
from engine.runs.watch import evaluate
from engine.store.campaign import Campaign
from engine.store.config import RunConfig, load_toml
from engine.store.jsonl import write_text_atomic
from engine.store.metrics import read_metrics
from engine.store.names import validate_run_name


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


def cmd_run(args: argparse.Namespace) -> int:
    """Validate a run.toml end to end, place it in runs/<run>/, and train in the foreground."""
    campaign = campaign_of(args)
    source = Path(args.run_toml).resolve()
    config = load_toml(source, RunConfig)
    name = _run_name_for(source, config, campaign)
    paths = campaign.run(name)
    text = source.read_text(encoding="utf-8")
    placed = source == paths.run_toml.resolve()
    if not placed and paths.run_toml.exists() and paths.run_toml.read_text(encoding="utf-8") != text:
        raise ConfigError(f"run {name!r} already exists with a different run.toml", path=paths.run_toml)
    if paths.metrics.exists():
        raise ConfigError(f"run {name!r} has already trained; use 'tunedeck resume {name}'", path=paths.metrics)
    # Everything is checked before anything is written: a bad run changes nothing on disk.
    prepare_run(campaign, name, config=config, source=source)
    paths.root.mkdir(parents=True, exist_ok=True)
    if not placed:
        write_text_atomic(paths.run_toml, text)
    if args.foreground:
        return _run_worker_foreground(train_command(paths.root, gpus=config.train.gpus))
    return _submit(args, campaign, name, resume=False)


def cmd_resume(args: argparse.Namespace) -> int:
    """Continue a run from its newest complete checkpoint."""
    campaign = campaign_of(args)
    prepared = prepare_run(campaign, args.run)
    if args.foreground:
        return _run_worker_foreground(train_command(prepared.paths.root, resume=True, gpus=prepared.config.train.gpus))
    return _submit(args, campaign, args.run, resume=True)


def _submit(args: argparse.Namespace, campaign: Campaign, run: str, *, resume: bool) -> int:
    """Hand a run to the engine (started in the background if none answers)."""
    client = EngineClient(campaign)
    try:
        client.ensure_running()
        status = client.start(run, resume=resume)
    finally:
        client.close()
    emit(args, status, f"{run}: {status['state']} (follow it with: tunedeck status {run})")
    return 0


def _status_line(status: dict[str, Any]) -> str:
    total = f"/{status['max_steps']}" if status.get("max_steps") else ""
    pid = f"  pid {status['pid']}" if status.get("pid") else ""
    return f"{status['run']:<24} {status['state']:<9} step {status['step']}{total}{pid}"


def cmd_status(args: argparse.Namespace) -> int:
    """The state of one run or of every run, as the engine sees it."""
    campaign = campaign_of(args)
    if args.run:
        campaign.load_run(args.run)
    client = EngineClient(campaign)
    try:
        client.ensure_running()
        status = client.status(args.run)
    finally:
        client.close()
    if args.json:
        print(json.dumps(status))
    else:
        for item in status if isinstance(status, list) else [status]:
            print(_status_line(item))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Ask a run to checkpoint and stop, and wait until it has."""
    campaign = campaign_of(args)
    campaign.load_run(args.run)
    client = EngineClient(campaign)
    try:
        client.ensure_running()
        status = client.stop(args.run, reason=args.reason)
        deadline = time.monotonic() + args.timeout
        while not args.no_wait and status["state"] in ("running", "stopping") and time.monotonic() < deadline:
            time.sleep(0.2)
            status = client.status(args.run)
    finally:
        client.close()
    emit(args, status, _status_line(status))
    return 0 if args.no_wait or status["state"] not in ("running", "stopping") else 1


def cmd_watch(args: argparse.Namespace) -> int:
    """The alerts the campaign's watch rules raise on a run's recorded metrics."""
    campaign = campaign_of(args)
    campaign.load_run(args.run)
    alerts = evaluate(list(campaign.config.watch), read_metrics(campaign.run(args.run).metrics))
    payload = {"alerts": [a.to_json() for a in alerts]}
    if args.json:
        print(json.dumps(payload))
    elif not campaign.config.watch:
        print("no watch rules in campaign.toml")
    elif not alerts:
        print(f"{args.run}: no watch rule fired ({len(campaign.config.watch)} rules)")
    else:
        for alert in payload["alerts"]:
            print(
                f"{alert['action'].upper():<5} {alert['rule']}: {alert['metric']} = {alert['value']} at step "
                f"{alert['first_step']} (held on {alert['count']} logged values)"
            )
    return 0


def cmd_engine(args: argparse.Namespace) -> int:
    """engine serve | start | stop | status."""
    campaign = campaign_of(args)
    if args.action == "serve":
        from engine.service.serve import run_forever

        run_forever(campaign.root, tcp_port=args.tcp)
        return 0
    client = EngineClient(campaign)
    try:
        if args.action == "start":
            health = client.ensure_running()
            gpu = client.gpu()
            note = "" if gpu["available"] else f"\nGPU stats unavailable: {gpu['reason']}"
            emit(
                args,
                {"running": True, "pid": health["pid"], "socket": str(client.paths.socket)},
                f"engine running (pid {health['pid']}) on {client.paths.socket}{note}",
            )
        elif args.action == "stop":
            pid = client.stop_engine()
            emit(
                args,
                {"running": False, "pid": pid, "socket": str(client.paths.socket)},
                f"engine stopped (pid {pid}); running workers go on" if pid else "no engine was running",
            )
        else:
            answer = client.health()
            payload: dict[str, Any] = {
                "running": answer is not None,
                "pid": answer["pid"] if answer else None,
                "socket": str(client.paths.socket),
            }
            if answer is not None:
                payload["gpu"] = client.gpu()
            human = (
                f"engine running (pid {payload['pid']}) on {payload['socket']}"
                if answer
                else f"no engine is running for this campaign ({payload['socket']})"
            )
            emit(args, payload, human)
    finally:
        client.close()
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge a run's adapter (or a checkpoint's) into its base model, in a worker process."""
    campaign = campaign_of(args)
    campaign.load_run(args.run)
    command = merge_command(campaign.run(args.run).root, checkpoint=args.checkpoint)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        return done.returncode
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    emit(
        args,
        summary,
        f"merged {args.run} into {summary['merged']} (max |logit diff| vs adapter-on-base "
        f"{summary['max_logit_diff']:.2e})",
    )
    return 0


def cmd_import_trainer_state(args: argparse.Namespace) -> int:
    """Turn an HF trainer_state.json into a run's metrics."""
    from engine.store.trainer_state import import_trainer_state

    campaign = campaign_of(args)
    summary = import_trainer_state(campaign, Path(args.path), args.run)
    payload = {
        "run": summary.run,
        "records": summary.records,
        "steps": summary.steps,
        "metrics": summary.metrics,
        "skipped": summary.skipped,
        "reasons": summary.reasons,
        "created_run": summary.created_run,
    }
    skipped = f"; skipped {summary.skipped} ({'; '.join(summary.reasons)})" if summary.skipped else ""
    emit(
        args,
        payload,
        f"imported {summary.records} steps ({len(summary.metrics)} metrics) into {summary.run}{skipped}",
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the tiny model and run the demo campaign end to end."""
    from engine.demo.campaign import run_demo

    def say(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    if not args.headless:
        say("the TUI is not built yet: running the demo headless")
    summary = run_demo(Path(args.dir), say)
    if args.json:
        print(json.dumps(summary))
    else:
        say(
            f"done in {summary['seconds']} s: exact match {summary['eval']['before']:.2f} -> "
            f"{summary['eval']['after']:.2f}; campaign in {summary['campaign']}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every tunedeck command."""
    parser = argparse.ArgumentParser(prog="tunedeck", description="A terminal cockpit for fine-tuning campaigns.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--campaign", default=".", metavar="DIR", help="campaign folder (default: current directory)")
    common.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="build a tiny offline model and run a campaign end to end")
    demo.add_argument("--headless", action="store_true", help="do not open the TUI")
    demo.add_argument("--json", action="store_true", help="print the result as one JSON object")
    demo.add_argument("--dir", default="tunedeck-demo", help="folder for the demo campaign")
    demo.set_defaults(handler=cmd_demo)

    run = sub.add_parser("run", parents=[common], help="train the run a run.toml describes")
    run.add_argument("run_toml", metavar="RUN_TOML")
    run.add_argument("--foreground", action="store_true", help="train in this terminal instead of the engine")
    run.set_defaults(handler=cmd_run)

    resume = sub.add_parser("resume", parents=[common], help="resume a run from its newest complete checkpoint")
    resume.add_argument("run", metavar="RUN")
    resume.add_argument("--foreground", action="store_true", help="train in this terminal instead of the engine")
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

    engine = sub.add_parser("engine", parents=[common], help="the background service that owns the runs")
    engine.add_argument("action", choices=["serve", "start", "stop", "status"])
    engine.add_argument("--tcp", type=int, metavar="PORT", help="serve: also listen on 127.0.0.1:PORT with a token")
    engine.set_defaults(handler=cmd_engine)

    merge = sub.add_parser("merge", parents=[common], help="merge a run's adapter into its base model")
    merge.add_argument("run", metavar="RUN")
    merge.add_argument("--checkpoint", type=int, metavar="STEP", help="merge this checkpoint instead")
    merge.set_defaults(handler=cmd_merge)

    importer = sub.add_parser("import", help="bring another tool's files into the campaign")
    kinds = importer.add_subparsers(dest="kind", metavar="KIND", required=True)
    trainer_state = kinds.add_parser("trainer-state", parents=[common], help="an HF trainer_state.json")
    trainer_state.add_argument("path", metavar="PATH")
    trainer_state.add_argument("--run", required=True, metavar="RUN")
    trainer_state.set_defaults(handler=cmd_import_trainer_state)

    add_bench_commands(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``tunedeck`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        sys.exit(0)
    try:
        code = args.handler(args)
    except TunedeckError as exc:
        print(f"tunedeck: {exc}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:  # a bug of ours: one line, details on request
        if os.environ.get("TUNEDECK_DEBUG"):
            traceback.print_exc()
        print(
            f"tunedeck: internal error: {type(exc).__name__}: {exc} (TUNEDECK_DEBUG=1 shows details)",
            file=sys.stderr,
        )
        code = 1
    sys.exit(code)
