"""Code that runs inside worker processes: the only part of tunedeck that imports torch.

``python -m engine.worker RUN_DIR`` trains a run; ``python -m engine.worker.merge RUN_DIR``
merges one. Neither the CLI nor the service imports these modules: they spawn them.
"""
