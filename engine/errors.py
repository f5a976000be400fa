"""Errors a user can cause, each rendered as one line that names file, line and field."""

from __future__ import annotations

from pathlib import Path

# Exit status for bad input, shared by the CLI and every worker process.
EXIT_BAD_INPUT = 2


class TunedeckError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class ConfigError(TunedeckError):
    """campaign.toml or run.toml is malformed or invalid."""


class DatasetError(TunedeckError):
    """A training dataset file is missing or has a bad line."""


class RunNameError(TunedeckError):
    """A run name that could escape the campaign folder or is otherwise unusable."""


class NotFoundError(TunedeckError):
    """A campaign, run or checkpoint the user named does not exist."""


class ImportFormatError(TunedeckError):
    """A file handed to an importer is not in the format it claims to be."""


class BenchQueryError(TunedeckError):
    """A named DuckDB query over the bench rows failed; the message names the query."""

    def __init__(self, query: str, reason: str) -> None:
        super().__init__(f"query {query} failed: {reason}")
        self.query = query


class ConflictError(TunedeckError):
    """A request the current state does not allow: a run busy training, a job already queued (HTTP 409)."""
