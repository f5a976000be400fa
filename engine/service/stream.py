"""Live streams over the run files: whole new lines from byte offsets, resumable by cursor.

A cursor is the byte offset reached in each file, so a client that reconnects with its
Last-Event-ID resumes exactly where it was — across service restarts too, because the
offsets are positions in the files, not counters in memory. Every client reads the files
itself at its own pace; the service only wakes clients up (a bounded queue of size 1 per
client), so a slow client can neither slow the run nor make the service buffer data.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.store.campaign import RunPaths

# The files a run stream follows, in the order their new lines are sent, with their SSE names.
STREAM_FILES = (("metric", "metrics.jsonl"), ("system", "system.jsonl"), ("event", "events.jsonl"))
_ALERT_MARK = b'"event":"alert"'
MAX_READ = 1 << 20  # bytes per file per read, so one huge backlog cannot starve other clients
MAX_TAIL = 1 << 16  # bytes read back from a file's end to find its last whole line


@dataclass(frozen=True)
class Line:
    """One whole line read from a run file, with the cursor just after it."""

    kind: str
    text: str
    cursor: tuple[int, ...]


def parse_run_cursor(text: str | None) -> tuple[int, ...]:
    """``"1024.0.300"`` -> offsets per stream file; anything unreadable means from the start."""
    zero = (0,) * len(STREAM_FILES)
    if not text:
        return zero
    try:
        offsets = tuple(int(part) for part in text.split("."))
    except ValueError:
        return zero
    return offsets if len(offsets) == len(STREAM_FILES) and min(offsets) >= 0 else zero


def format_run_cursor(offsets: tuple[int, ...]) -> str:
    return ".".join(str(o) for o in offsets)


def parse_campaign_cursor(text: str | None) -> dict[str, tuple[int, ...]]:
    """``"r1:10.0.5|r2:0.0.80"`` -> offsets by run (runs not named start from zero)."""
    cursors: dict[str, tuple[int, ...]] = {}
    for part in (text or "").split("|"):
        run, _, offsets = part.partition(":")
        if run and offsets:
            cursors[run] = parse_run_cursor(offsets)
    return cursors


def format_campaign_cursor(cursors: dict[str, tuple[int, ...]]) -> str:
    return "|".join(f"{run}:{format_run_cursor(o)}" for run, o in sorted(cursors.items()) if any(o))


def read_whole_lines(path: Path, offset: int) -> tuple[list[bytes], int]:
    """Complete lines of ``path`` after ``offset`` (a torn tail waits for its newline)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            chunk = handle.read(MAX_READ)
    except FileNotFoundError:
        return [], offset
    end = chunk.rfind(b"\n")
    if end < 0:
        return [], offset
    return chunk[: end + 1].splitlines(), offset + end + 1


def end_cursor(paths: RunPaths) -> tuple[int, ...]:
    """The cursor just after the last whole line of each stream file: "only what comes from now on"."""
    offsets = []
    for _, filename in STREAM_FILES:
        path = paths.root / filename
        try:
            with open(path, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - MAX_TAIL))
                tail = handle.read()
        except OSError:
            offsets.append(0)
            continue
        # A line being written now (no newline yet) is sent whole once it ends, not skipped as a fragment.
        offsets.append(size - len(tail) + tail.rfind(b"\n") + 1)
    return tuple(offsets)


def read_new_lines(paths: RunPaths, cursor: tuple[int, ...]) -> Iterator[Line]:
    """Every whole line written to the run's stream files since ``cursor``."""
    offsets = list(cursor)
    for index, (kind, filename) in enumerate(STREAM_FILES):
        path = paths.root / filename
        try:
            if os.path.getsize(path) < offsets[index]:
                offsets[index] = 0  # the file was replaced (an import rewrote it): start over
        except OSError:
            continue
        lines, _ = read_whole_lines(path, offsets[index])
        for raw in lines:
            offsets[index] += len(raw) + 1
            stripped = raw.strip()
            # A fragment left by a killed writer (closed by the next writer's newline) is no event:
            # it is skipped here as every reader skips it, and the campaign stream's wrapper stays JSON.
            if not (stripped.startswith(b"{") and stripped.endswith(b"}")):
                continue
            name = "alert" if kind == "event" and _ALERT_MARK in raw else kind
            yield Line(name, raw.decode("utf-8", errors="replace"), tuple(offsets))


class WakeHub:
    """Wakes every subscribed stream when a run file may have grown."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def subscribe(self) -> asyncio.Queue[None]:
        self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[None]) -> None:
        self._queues.discard(queue)

    def wake(self) -> None:
        """Wake every stream; from another thread it is handed to the loop (asyncio queues are not thread-safe)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                loop.call_soon_threadsafe(self._wake)
                return
        self._wake()

    def _wake(self) -> None:
        for queue in list(self._queues):
            if queue.empty():  # one pending wake-up is enough: the client reads everything new
                queue.put_nowait(None)

    @property
    def subscribers(self) -> int:
        return len(self._queues)
