"""The campaign on disk: configs, datasets, JSONL files, metrics, names, checkpoints, production pointer."""
