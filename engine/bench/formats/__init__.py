"""Importers of other tools' result files, one module per format, and the detector that picks one.

Every importer has the same signature (``Parser``): it streams the file, adds canonical rows
to the ``Sink`` (grouped by bench) and records a one-line reason for each line it skips.
Writing the rows is ``engine.bench.importer``'s job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from engine.bench.formats import evalplus, human_eval, judged, lm_eval, tunedeck
from engine.bench.formats.common import Sink


class Parser(Protocol):
    def __call__(self, path: Path, sink: Sink, *, run: str, bench: str | None) -> None: ...


PARSERS: dict[str, Parser] = {
    tunedeck.NAME: tunedeck.parse,
    lm_eval.NAME: lm_eval.parse,
    evalplus.NAME: evalplus.parse,
    human_eval.NAME: human_eval.parse,
    judged.NAME: judged.parse,
}
# The --format choices.
FORMATS: tuple[str, ...] = tuple(PARSERS)
FORMAT_CHOICES: tuple[str, ...] = ("auto", *FORMATS)

__all__ = ["FORMATS", "FORMAT_CHOICES", "PARSERS", "Parser", "Sink"]
