"""Process plumbing shared by every worker: quiet libraries and one-line errors."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

from engine.errors import EXIT_BAD_INPUT, TunedeckError


def quiet_transformers() -> None:
    """Silence progress bars and info logs; tunedeck reports through its own files."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def run_main(main: Callable[[], int], *, hard_exit: bool = False) -> None:
    """Run a worker's main: a user error is one line on stderr and exit status 2.

    ``hard_exit`` (a rank of a torchrun job) leaves through ``os._exit`` once stdout and stderr
    are flushed, skipping the interpreter's teardown: a rank exiting with gloo's threads alive has
    them destroyed by C++ static destructors, which now and then abort it ("terminate called
    without an active exception", exit -6) and fail the whole job after it trained correctly.
    Leaving the process group first cannot be done safely instead: a barrier there waits forever
    for a rank that SIGTERM ended early. Everything a worker writes is closed (and fsynced) by then.
    """
    try:
        code = main()
    except TunedeckError as exc:
        print(f"tunedeck: {exc}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    except SystemExit as exc:
        if not hard_exit:
            raise
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        if not hard_exit:
            raise
        traceback.print_exc()
        code = 1
    if hard_exit:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def in_torchrun() -> bool:
    """Whether this process is one rank of a torchrun job (torchrun sets WORLD_SIZE for each)."""
    return "WORLD_SIZE" in os.environ
