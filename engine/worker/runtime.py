"""Process setup shared by every worker: offline, quiet, and one-line errors."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable

from engine.errors import EXIT_BAD_INPUT, TunedeckError

# Set before transformers is imported anywhere in the process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Deprecation notices from the libraries are for us, not for the person watching a run.
warnings.filterwarnings("ignore", category=FutureWarning)


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
