"""``tunedeck engine serve | start | stop | status``: the background service that owns the runs."""

from __future__ import annotations

import argparse
from typing import Any

from engine.api import EngineStatus
from engine.cli.client import EngineClient
from engine.cli.common import Outcome, Say, campaign_of


def cmd_engine(args: argparse.Namespace, say: Say) -> Outcome:
    """engine serve | start | stop | status."""
    campaign = campaign_of(args)
    if args.action == "serve":
        from engine.service.serve import run_forever

        run_forever(campaign.root, tcp_port=args.tcp)
        return Outcome()
    with EngineClient(campaign) as client:
        socket = str(client.paths.socket)
        if args.action == "start":
            health = client.ensure_running()
            gpu = client.gpu()
            note = "" if gpu.available else f"\nGPU stats unavailable: {gpu.reason}"
            return Outcome(
                EngineStatus(running=True, pid=health.pid, socket=socket),
                f"engine running (pid {health.pid}) on {socket}{note}",
            )
        if args.action == "stop":
            pid = client.stop_engine()
            return Outcome(
                EngineStatus(running=False, pid=pid, socket=socket),
                f"engine stopped (pid {pid}); running workers go on" if pid else "no engine was running",
            )
        answer = client.health()
        if answer is None:
            return Outcome(
                EngineStatus(running=False, pid=None, socket=socket),
                f"no engine is running for this campaign ({socket})",
            )
        return Outcome(
            EngineStatus(running=True, pid=answer.pid, socket=socket, gpu=client.gpu()),
            f"engine running (pid {answer.pid}) on {socket}",
        )


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``engine`` on the main parser's subparsers."""
    engine = sub.add_parser("engine", parents=[common], help="the background service that owns the runs")
    engine.add_argument("action", choices=["serve", "start", "stop", "status"])
    engine.add_argument("--tcp", type=int, metavar="PORT", help="serve: also listen on 127.0.0.1:PORT with a token")
    engine.set_defaults(handler=cmd_engine)
