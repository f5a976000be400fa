"""``python -m engine.service CAMPAIGN_DIR [--tcp PORT]``: the engine service in the foreground."""

import argparse
import sys
from pathlib import Path

from engine.errors import EXIT_BAD_INPUT, TunedeckError
from engine.service.serve import run_forever

parser = argparse.ArgumentParser(prog="python -m engine.service")
parser.add_argument("campaign", type=Path)
parser.add_argument("--tcp", type=int, metavar="PORT", help="also listen on 127.0.0.1:PORT (bearer token)")
args = parser.parse_args()
try:
    run_forever(args.campaign, tcp_port=args.tcp)
except TunedeckError as exc:
    print(f"tunedeck: {exc}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)
except KeyboardInterrupt:
    pass
