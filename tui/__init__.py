"""tunedeck's Textual app: a thin client of the engine service (HTTP + SSE over a Unix socket).

It never imports torch, transformers, peft, duckdb or pynvml; import-linter enforces that.
"""
