"""``python -m tui [PATH] [--engine URL --token-file F] [--run RUN]``: the TUI of the campaign at PATH."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.errors import TunedeckError
from engine.store.campaign import CAMPAIGN_FILE, Campaign
from tui.client import EngineTarget, default_token_file, read_token


def build_parser() -> argparse.ArgumentParser:
    """The TUI's arguments."""
    parser = argparse.ArgumentParser(prog="tunedeck", description="The tunedeck cockpit (a Textual TUI).")
    parser.add_argument(
        "path",
        nargs="?",
        default=".",
        metavar="PATH",
        help="campaign folder, or a folder of campaigns to pick from (default: here)",
    )
    parser.add_argument("--engine", metavar="URL", help="an engine served over TCP, e.g. http://127.0.0.1:8765")
    parser.add_argument("--token-file", type=Path, metavar="F", help="its bearer token (default: PATH/.tunedeck/token)")
    parser.add_argument("--run", metavar="RUN", help="open on the Monitor of this run")
    return parser


def target_from_args(args: argparse.Namespace) -> EngineTarget:
    """Where the engine is: the campaign's socket, or ``--engine`` with its token."""
    if args.engine:
        root = Path(args.path).resolve()
        token_file = args.token_file or default_token_file(root)
        if token_file is None:
            raise TunedeckError("--engine needs --token-file F (the engine's .tunedeck/token)")
        return EngineTarget(campaign=root, url=args.engine.rstrip("/"), token=read_token(token_file), autostart=False)
    campaign = Campaign.open(args.path)  # a clear error when PATH holds no campaign.toml
    return EngineTarget(campaign=campaign.root)


def pick_campaign(path: str) -> str | None:
    """PATH itself when it is a campaign; else the one campaign inside it, or the one a person picks."""
    folder = Path(path)
    if (folder / CAMPAIGN_FILE).is_file():
        return path
    from tui.picker import CampaignPicker, find_campaigns  # textual loads only when there is a list to show

    campaigns = find_campaigns(folder)
    if not campaigns:
        print(f"tunedeck: no campaign.toml in {path}, nor in a folder inside it", file=sys.stderr)
        sys.exit(2)
    if len(campaigns) == 1:
        return str(campaigns[0])
    chosen = CampaignPicker(folder.resolve(), campaigns).run()
    return str(chosen) if chosen is not None else None


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and run the app; problems are one line on stderr, exit status 2."""
    args = build_parser().parse_args(argv)
    if not args.engine:
        chosen = pick_campaign(args.path)
        if chosen is None:
            return  # the person left the picker
        args.path = chosen
    try:
        target = target_from_args(args)
    except TunedeckError as exc:
        where = f" ({exc.path})" if exc.path else ""
        print(f"tunedeck: {exc}{where}", file=sys.stderr)
        sys.exit(2)
    from tui.app import TunedeckApp  # textual loads only once the arguments are good

    TunedeckApp(target, open_run=args.run).run()


if __name__ == "__main__":
    main()
