"""Code that runs inside worker processes: the only part of tunedeck that imports torch.

``python -m engine.worker RUN_DIR`` trains a run; ``python -m engine.worker.merge RUN_DIR``
merges one. Neither the CLI nor the service imports these modules: they spawn them.

Importing any worker module runs this file first, so the environment below is in place
before transformers or huggingface_hub is imported anywhere in the process.
"""

import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
# TRL's experimental trainers (ORPO, CPO) warn on import.
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
# Deprecation notices from the libraries are for us, not for the person watching a run.
warnings.filterwarnings("ignore", category=FutureWarning)
