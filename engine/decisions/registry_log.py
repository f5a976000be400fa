"""registry.jsonl, the truth of production: its lines read and checked, replayed, and appended.

Replaying the log gives production and the promotes not yet undone: a promote pushes what it
replaced, a revert pops the latest push and puts it back. Before the first line, production is
the first line's ``from_*`` (for a campaign whose production.json was written by hand before it had
a log, that pointer); with no line at all it is production.json itself.

A torn last line (a writer killed mid-write) is skipped by readers. The next writer, holding the
registry lock so that no write can be in flight, cuts it off before appending, keeping its bytes
in ``registry.jsonl.torn``: left in place and closed with a newline, it would be a bad line in the
middle of the log, which readers refuse (a hand edit gone wrong is not something to guess past).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from engine.api import ProductionPointer, RegistryEntry
from engine.api.registry import ArtifactKind
from engine.errors import ConfigError
from engine.store.jsonl import dumps_line, iter_jsonl, open_for_append
from engine.store.safe_paths import refuse_symlinks

MAX_LINE_CHARS = 64_000  # a line holds a reason (<= 1000 characters) and the gate's reasons


@dataclass
class Replayed:
    """What the log implies: production now, and the promotes not yet undone (latest last)."""

    entries: list[RegistryEntry]
    production: ProductionPointer | None
    undoable: list[tuple[int, ProductionPointer | None]] = field(default_factory=list)  # (seq, pointer it replaced)

    @property
    def next_seq(self) -> int:
        """The seq of the next line."""
        return (self.entries[-1].seq + 1) if self.entries else 1

    @property
    def before_last(self) -> ProductionPointer | None:
        """Production before the last line (what production.json holds when that line's replace never ran)."""
        last = self.entries[-1]
        return pointer_of(last.from_run, last.from_artifact, last.from_sha256, None)


def kind_of(artifact: str | None) -> ArtifactKind | None:
    """``merged`` / ``adapter`` from an artifact path's last folder, else None (a pointer written by hand)."""
    name = Path(artifact).name if artifact else None
    return "merged" if name == "merged" else "adapter" if name == "adapter" else None


def pointer_of(run: str | None, artifact: str | None, sha256: str | None, time: str | None) -> ProductionPointer | None:
    """A production pointer, or None when there is no run."""
    if run is None:
        return None
    return ProductionPointer(run=run, artifact=artifact, kind=kind_of(artifact), sha256=sha256, promoted_at=time)


def read_entries(path: Path) -> list[RegistryEntry]:
    """Every line of registry.jsonl as an entry; one error naming file, line and field for a bad one."""
    refuse_symlinks(path)
    if not path.exists():
        return []
    entries = []
    for line in iter_jsonl(path, strict=True, max_line_chars=MAX_LINE_CHARS):
        try:
            entries.append(RegistryEntry.model_validate(line.record))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or None
            raise ConfigError(
                f"not a registry line ({error['msg']}); fix or remove the line by hand", path=path, line=line.lineno,
                field=where,
            ) from None  # fmt: skip
    return entries


def replay(path: Path, start: ProductionPointer | None) -> Replayed:
    """The log replayed; ``start`` (production.json as it is) counts only while the log is empty."""
    entries = read_entries(path)
    if not entries:
        return Replayed(entries, start)
    first = entries[0]
    production = pointer_of(first.from_run, first.from_artifact, first.from_sha256, None)
    undoable: list[tuple[int, ProductionPointer | None]] = []
    for number, entry in enumerate(entries, start=1):
        if entry.action == "promote":
            undoable.append((entry.seq, production))
        elif not undoable:
            raise ConfigError(
                f"entry {number} (seq {entry.seq}) is a revert with no promote before it left to undo",
                path=path, field="action",
            )  # fmt: skip
        else:
            undoable.pop()
        production = pointer_of(entry.to_run, entry.to_artifact, entry.to_sha256, entry.time)
    return Replayed(entries, production, undoable)


def cut_torn_tail(path: Path) -> int:
    """Cut off a last line without its newline (kept in ``<path>.torn``); the bytes cut. Hold the lock."""
    refuse_symlinks(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return 0
    try:
        size = os.fstat(fd).st_size
        if not size or os.pread(fd, 1, size - 1) == b"\n":
            return 0
        data = os.pread(fd, size, 0)
        keep = data.rfind(b"\n") + 1
        torn = refuse_symlinks(path.with_name(path.name + ".torn"))
        with open(torn, "ab") as evidence:
            evidence.write(data[keep:] + b"\n")
        os.ftruncate(fd, keep)
        os.fsync(fd)
        return size - keep
    finally:
        os.close(fd)


def append_entry(path: Path, entry: RegistryEntry) -> None:
    """Append one entry as one whole line with one write, flushed and synced before production.json changes."""
    with open_for_append(path) as handle:
        handle.write(dumps_line(entry.model_dump(mode="json")))
        handle.flush()
        os.fsync(handle.fileno())
