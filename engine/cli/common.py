"""What every command module of the CLI shares: the outcome a handler returns, the campaign, ``--checkpoint``.

Handlers never print. Each returns an ``Outcome`` and ``main()`` (engine/cli/main.py) alone writes
it: with ``--json`` the payload as one JSON object on stdout, else the human text; warnings go
to stderr either way. Long commands may stream progress lines through the ``say`` callback
main hands them (stderr with ``--json``, stdout otherwise).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from engine.store.campaign import Campaign

Say = Callable[[str], None]
Payload = BaseModel | Sequence[BaseModel] | dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What a command did: the ``--json`` payload, the human text, the exit status, and warnings.

    ``text`` may be a function, for a text that is costly to build (a 160k-row diff) and only
    built when it is printed. Each warning is one line for stderr, printed after ``tunedeck: ``.
    """

    payload: Payload | None = None
    text: str | Callable[[], str] = ""
    code: int = 0
    warnings: Sequence[str] = ()


Handler = Callable[[argparse.Namespace, Say], Outcome]

CHECKPOINT_HELP = "the adapter saved at step STEP, i.e. the model RUN@STEP (0: the base model alone)"


def add_checkpoint_option(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint STEP``, the same on every command that takes it (bench run, gate, merge)."""
    parser.add_argument("--checkpoint", type=int, metavar="STEP", help=CHECKPOINT_HELP)


def campaign_of(args: argparse.Namespace) -> Campaign:
    """The campaign named by ``--campaign`` (default: the current directory)."""
    return Campaign.open(args.campaign)


def text_table(header: list[str], rows: Iterable[list[str]]) -> str:
    """Plain aligned columns, the CLI's one table (the TUI draws the real ones)."""
    rows = [header, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )
