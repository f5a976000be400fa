"""Which importer a results file needs, told from its content (``--format auto``).

The first JSON object decides: an object with an ``"eval"`` object is EvalPlus; a line with
``doc_id`` and ``resps``/``filtered_resps``/``metrics`` is lm-eval; ``task_id`` + ``passed`` +
``result`` is human-eval; ``task_id`` + ``passed`` is tunedeck's own rows; a prompt id with a
judge's verdict (``judge``, ``judgment``, ...) is a judged results file (Foundry style). Files that are
results of these tools but carry no per-task verdicts (lm-eval's aggregate ``results_*.json``,
generated samples not yet evaluated) are refused with what to pass instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.bench.formats.common import open_text
from engine.bench.formats.judged import ID_KEYS, VERDICT_KEYS
from engine.errors import ImportFormatError

# How many non-blank lines to read looking for one JSON object (the first may be torn).
_PROBE_LINES = 50
EXPECTED = (
    "expected lm-eval samples_*.jsonl (--log_samples), an EvalPlus *eval_results.json, "
    "a human-eval *_results.jsonl, judged results (an id and a judge verdict per line) or tunedeck bench rows"
)
_LM_EVAL_AGGREGATE = frozenset({"configs", "versions", "n-shot", "config", "higher_is_better", "group_subtasks"})


@dataclass(frozen=True)
class Sniff:
    """What a file looks like: a format name, or ``problem`` saying why it cannot be imported.

    ``refused`` marks files we recognise and refuse whatever ``--format`` says (no per-row
    data); an unrecognised file that holds JSON objects may still be read with an explicit
    ``--format``, whose importer then says line by line what is missing.
    """

    format: str | None
    problem: ImportFormatError | None = None
    refused: bool = False


def classify(obj: dict[str, Any]) -> str | None:
    """The format one JSON object belongs to, or None."""
    if isinstance(obj.get("eval"), dict):
        return "evalplus"
    if "doc_id" in obj and ("resps" in obj or "filtered_resps" in obj or "metrics" in obj):
        return "lm-eval"
    if "task_id" in obj and "passed" in obj:
        return "human-eval" if "result" in obj else "tunedeck"
    if any(key in obj for key in ID_KEYS) and any(obj.get(key) is not None for key in VERDICT_KEYS):
        return "judged"
    return None


def _refusal(obj: dict[str, Any], path: Path, line: int | None) -> ImportFormatError | None:
    """Files from these tools that have no per-task verdicts, with what to import instead."""
    if isinstance(obj.get("results"), dict) and _LM_EVAL_AGGREGATE & obj.keys():
        return ImportFormatError(
            "this is lm-evaluation-harness's aggregate results file, which has no per-row data: "
            "import the samples_<task>_<date>.jsonl next to it (written when lm_eval runs with --log_samples)",
            path=path,
        )
    if "task_id" in obj and ("completion" in obj or "solution" in obj):
        return ImportFormatError(
            "generated samples with no verdicts (no 'passed' field): evaluate them first "
            "(human-eval's evaluate_functional_correctness or evalplus.evaluate) and import the results file",
            path=path,
            line=line,
        )
    return None


def _whole_document(path: Path) -> Any:
    """A pretty-printed JSON document (lm-eval's results_*.json, some EvalPlus wrappers)."""
    with open_text(path) as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError:
            return None


def _judge(obj: dict[str, Any], path: Path, line: int | None) -> Sniff:
    found = classify(obj)
    if found is not None:
        return Sniff(found)
    refusal = _refusal(obj, path, line)
    if refusal is not None:
        return Sniff(None, refusal, refused=True)
    keys = ", ".join(list(obj)[:8]) or "none"
    return Sniff(None, ImportFormatError(f"{EXPECTED}; found an object with keys {keys}", path=path, line=line))


def sniff(path: Path) -> Sniff:
    """Look at the first JSON object of ``path`` (a few lines at most, or a pretty-printed document)."""
    first_line: str | None = None
    with open_text(path) as handle:
        seen = 0
        for lineno, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text:
                continue
            seen += 1
            if first_line is None:
                first_line = text
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                if seen == 1 and text in ("{", "["):
                    break  # a pretty-printed document: parse it whole below
                if seen >= _PROBE_LINES:
                    break
                continue
            if isinstance(obj, dict):
                return _judge(obj, path, lineno)
            if seen >= _PROBE_LINES:
                break
    if first_line is None:
        return Sniff(None, ImportFormatError(f"empty file; {EXPECTED}", path=path), refused=True)
    if first_line in ("{", "["):
        doc = _whole_document(path)
        if isinstance(doc, dict):
            return _judge(doc, path, None)
    return Sniff(None, ImportFormatError(f"no JSON object found; {EXPECTED}", path=path), refused=True)


# An explicit --format may read content detected as another format only here: human-eval
# lines are tunedeck rows with an extra "result" field.
_COMPATIBLE = {("tunedeck", "human-eval")}


def resolve(path: Path, fmt: str, formats: tuple[str, ...]) -> str:
    """The format to import ``path`` with: detected for ``auto``, else ``fmt`` if it fits."""
    if fmt != "auto" and fmt not in formats:
        choices = ", ".join(("auto", *formats))
        raise ImportFormatError(f"unknown format {fmt!r} (expected one of {choices})", field="--format")
    found = sniff(path)
    if found.problem is not None and (fmt == "auto" or found.refused):
        raise found.problem
    if fmt == "auto":
        assert found.format is not None
        return found.format
    if found.format is not None and found.format != fmt and (fmt, found.format) not in _COMPATIBLE:
        raise ImportFormatError(
            f"--format {fmt} does not fit: this looks like a {found.format} file "
            f"(pass --format {found.format}, or auto)",
            path=path,
        )
    return fmt
