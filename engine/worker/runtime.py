"""Process plumbing shared by every worker: quiet libraries and one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Callable

from engine.errors import EXIT_BAD_INPUT, TunedeckError


def quiet_transformers() -> None:
    """Silence progress bars and info logs; tunedeck reports through its own files."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def run_main(main: Callable[[], int]) -> None:
    """Run a worker's main: a user error is one line on stderr and exit status 2."""
    try:
        code = main()
    except TunedeckError as exc:
        print(f"tunedeck: {exc}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    sys.exit(code)
