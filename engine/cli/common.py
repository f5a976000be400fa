"""What every command module of the CLI shares: opening the campaign and printing a result."""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.store.campaign import Campaign


def campaign_of(args: argparse.Namespace) -> Campaign:
    """The campaign named by ``--campaign`` (default: the current directory)."""
    return Campaign.open(args.campaign)


def emit(args: argparse.Namespace, payload: dict[str, Any], human: str) -> None:
    """One JSON object with ``--json``, else the human text."""
    print(json.dumps(payload) if getattr(args, "json", False) else human)
