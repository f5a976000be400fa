"""Import an HF ``trainer_state.json`` (Trainer or TRL) into a run's metrics.jsonl.

``log_history`` holds train logs, eval logs that share a step with a train log, and a final
summary. Each entry becomes one metric record keyed by its step; records are merged with a
run's existing metrics by (step, metric), so importing the same file twice changes nothing.
Pure Python on purpose: the CLI and the service call this without torch.
"""

from __future__ import annotations

import contextlib
import json
import math
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.api import TrainerStateImport
from engine.errors import ConflictError, ImportFormatError
from engine.store.campaign import Campaign, RunPaths, record_event
from engine.store.jsonl import write_jsonl_atomic, write_text_atomic
from engine.store.locks import LockHeld, run_writer_lock
from engine.store.metrics import NON_METRIC_KEYS, merge_by_step, read_metrics
from engine.store.names import validate_run_name
from engine.store.numbers import is_integer, is_number

STATE_FILE = "trainer_state.json"
# A long run's log_history is a few MB; a file past this is not a trainer_state.json.
MAX_STATE_BYTES = 1024**3

# Skip kinds, each rendered as "<n> <noun phrase>" in TrainerStateImport.reasons.
_NOT_OBJECT = ("entry that is not an object", "entries that are not objects")
_NO_STEP = ("entry without a step", "entries without a step")
_BAD_STEP = ("entry whose step is not a whole number >= 0", "entries whose step is not a whole number >= 0")
_NO_VALUES = ("entry with no numeric values", "entries with no numeric values")


@dataclass(frozen=True)
class TrainerState:
    """A parsed trainer_state.json: its metric records and what was left out."""

    path: Path
    records: list[dict[str, Any]]
    skips: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Informational only: files in the wild disagree with their own log_history.
    max_steps: int | None = None

    @property
    def skipped(self) -> int:
        return sum(self.skips.values())

    def reasons(self) -> list[str]:
        """One line per kind of skip, e.g. ``"3 entries without a step"``."""
        return [f"{n} {plural if n != 1 else singular}" for (singular, plural), n in self.skips.items()]


def _step_of(value: Any) -> int | None:
    """A usable step: a whole number >= 0 (an integral float such as ``10.0`` is accepted)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if is_integer(value) and value >= 0:
        return value
    return None


def _load_json(path: Path) -> Any:
    """The parsed file; every way it can fail becomes one ``ImportFormatError`` line."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # /dev/zero, a FIFO: reading would never end
            raise ImportFormatError("not a regular file", path=path)
        if info.st_size > MAX_STATE_BYTES:
            raise ImportFormatError(
                f"{info.st_size:,} bytes, over the {MAX_STATE_BYTES:,} a trainer_state.json can sensibly hold",
                path=path,
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImportFormatError("file not found", path=path) from None
    except OSError as exc:
        raise ImportFormatError(f"cannot read ({exc.strerror})", path=path) from None
    try:
        # json.loads keeps bare NaN / Infinity / -Infinity as floats, which is what we want.
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"not valid JSON ({exc.msg}, column {exc.colno})", path=path, line=exc.lineno) from None
    except UnicodeDecodeError:
        raise ImportFormatError("not UTF-8 text", path=path) from None
    except ValueError as exc:  # e.g. an integer too long to convert
        raise ImportFormatError(f"not valid JSON ({exc})", path=path) from None


def parse_trainer_state(path: Path) -> TrainerState:
    """Read and validate a trainer_state.json (or a checkpoint folder holding one)."""
    path = Path(path)
    if path.is_dir():  # a checkpoint folder (checkpoint-500/) holds the file: accept it too
        path = path / STATE_FILE
    state = _load_json(path)
    if not isinstance(state, dict):
        raise ImportFormatError(f"expected a JSON object at the top level, got {_kind(state)}", path=path)
    if "log_history" not in state:
        raise ImportFormatError("missing: is this an HF trainer_state.json?", path=path, field="log_history")
    history = state["log_history"]
    if not isinstance(history, list):
        raise ImportFormatError(f"expected a list, got {_kind(history)}", path=path, field="log_history")

    records: list[dict[str, Any]] = []
    skips: Counter[tuple[str, str]] = Counter()
    for entry in history:
        if not isinstance(entry, dict):
            skips[_NOT_OBJECT] += 1
            continue
        if "step" not in entry:
            skips[_NO_STEP] += 1
            continue
        step = _step_of(entry["step"])
        if step is None:
            skips[_BAD_STEP] += 1
            continue
        # Only numbers are kept (bools excluded): metrics.jsonl feeds plots, watch rules and
        # SQL aggregates that compare numbers. Strings, lists, nulls and nested objects are
        # dropped silently; HF only logs them by accident, and they are not counted as skips.
        values = {key: value for key, value in entry.items() if key not in NON_METRIC_KEYS and is_number(value)}
        if not values:
            skips[_NO_VALUES] += 1
            continue
        records.append({"step": step, **values})
    max_steps = _step_of(state.get("max_steps"))
    return TrainerState(path=path, records=records, skips=skips, max_steps=max_steps or None)


def read_trainer_state(path: Path) -> list[dict[str, Any]]:
    """Parse a trainer_state.json into metric records ``{"step": int, <metric>: value}`` (not merged)."""
    return parse_trainer_state(path).records


def import_trainer_state(campaign: Campaign, path: Path, run: str) -> TrainerStateImport:
    """Merge a trainer_state.json's metrics into ``runs/<run>/metrics.jsonl``, creating the run if needed.

    Everything is read and validated before anything is written, so bad input changes
    nothing on disk. metrics.jsonl is replaced atomically, so a run whose worker is still
    appending to it is refused (the worker holds the run's writer lock while it trains).
    """
    validate_run_name(run)
    state = parse_trainer_state(path)
    paths = campaign.run(run)
    with _no_live_writer(paths, run):
        return _import(state, paths, run)


@contextlib.contextmanager
def _no_live_writer(paths: RunPaths, run: str) -> Iterator[None]:
    """Hold the run's writer lock, or refuse: a worker appending to metrics.jsonl holds it."""
    lock = run_writer_lock(paths.root)
    try:
        lock.acquire()
    except LockHeld:
        raise ConflictError(
            f"run {run!r} is training (its worker writes metrics.jsonl): importing now would lose its "
            f"logs; stop it first (tunedeck stop {run}) or import into a new run",
            path=paths.metrics,
        ) from None
    try:
        yield
    finally:
        lock.release()


def _import(state: TrainerState, paths: RunPaths, run: str) -> TrainerStateImport:
    existing = read_metrics(paths.metrics) if paths.metrics.is_file() else []
    imported = merge_by_step(state.records)

    created = not paths.run_toml.is_file()
    if created:
        source = json.dumps(str(state.path.resolve()), ensure_ascii=False)  # a valid TOML basic string
        write_text_atomic(paths.run_toml, f'name = "{run}"\nimported_from = {source}\n')
    # Existing first, imported last: merge_by_step lets the later value win per (step, metric).
    write_jsonl_atomic(paths.metrics, merge_by_step([*existing, *imported]))

    max_step = max((r["step"] for r in imported), default=0)
    metrics = sorted({key for r in imported for key in r if key not in NON_METRIC_KEYS})
    extra: dict[str, Any] = {"max_steps": state.max_steps} if state.max_steps is not None else {}
    record_event(
        paths.events,
        "imported",
        source=str(state.path.resolve()),
        records=len(imported),
        steps=max_step,
        **extra,
    )
    return TrainerStateImport(
        run=run,
        records=len(imported),
        steps=max_step,
        metrics=metrics,
        skipped=state.skipped,
        reasons=state.reasons(),
        created_run=created,
    )


def _kind(value: Any) -> str:
    """A JSON type name for error messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
