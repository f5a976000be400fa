"""``python -m engine.worker RUN_DIR [--resume]``: the training worker."""

import sys

from engine.worker import runtime
from engine.worker.train import main

runtime.run_main(lambda: main(sys.argv[1:]), hard_exit=runtime.in_torchrun())
