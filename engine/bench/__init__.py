"""Bench results: canonical rows on disk, importers of other tools' files, DuckDB queries over them,
the row-by-row diff, the gate and the dataset harvest. Nothing here imports torch."""
