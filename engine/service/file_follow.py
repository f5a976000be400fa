"""Reading a growing JSONL file once: whole new lines since the last read, and a signal when it was replaced.

The engine keeps per-run indexes (engine.service.metric_index, engine.service.run_summary) that
must consider every line on disk without re-reading a million lines per request. A
``FileFollower`` remembers how far it read (the byte offset just after the last whole line), the
file's inode, and the last bytes before that offset. On each ``read_new`` it stats the file:

- same inode, grown: only the new whole lines are read (a torn last line waits for its newline);
- same inode and size, same mtime: nothing is read;
- gone, shrunk, a new inode, or the bytes before the offset changed (rewritten in place): the
  caller is told to start over (``restart`` is True) and gets every line from the beginning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TAIL_CHECK = 64  # bytes before the offset compared on every growth: a rewrite in place is noticed


@dataclass
class NewLines:
    """What ``FileFollower.read_new`` found: whole lines, and whether the caller must forget what it had."""

    lines: list[bytes]
    restart: bool


@dataclass
class FileFollower:
    """Whole lines appended to ``path`` since the last call (see the module's docstring)."""

    path: Path
    offset: int = 0
    inode: int | None = None
    size: int = 0
    mtime_ns: int = 0
    tail: bytes = field(default=b"", repr=False)

    def read_new(self) -> NewLines:
        try:
            stat = os.stat(self.path)
        except OSError:
            restart = self.offset > 0 or self.inode is not None
            self._forget()
            return NewLines([], restart)
        unchanged = (stat.st_ino, stat.st_size, stat.st_mtime_ns) == (self.inode, self.size, self.mtime_ns)
        if unchanged:
            return NewLines([], False)
        restart = self.inode is not None and (stat.st_ino != self.inode or stat.st_size < self.offset)
        if restart:
            self._forget()
        try:
            with open(self.path, "rb") as handle:
                start = max(0, self.offset - len(self.tail))
                handle.seek(start)
                chunk = handle.read()
        except OSError:
            return NewLines([], False)
        if self.offset and chunk[: self.offset - start] != self.tail:
            # Same inode, but the bytes before our offset are not the ones we read: rewritten in place.
            self._forget()
            return self._read_all(stat, restart=True)
        chunk = chunk[self.offset - start :]
        return NewLines(self._take_whole_lines(chunk, stat), restart)

    def _read_all(self, stat: os.stat_result, *, restart: bool) -> NewLines:
        try:
            chunk = self.path.read_bytes()
        except OSError:
            return NewLines([], restart)
        return NewLines(self._take_whole_lines(chunk, stat), restart)

    def _take_whole_lines(self, chunk: bytes, stat: os.stat_result) -> list[bytes]:
        end = chunk.rfind(b"\n")
        self.inode, self.mtime_ns = stat.st_ino, stat.st_mtime_ns
        # The size is only recorded once every byte of it is consumed, so a torn tail is read again.
        self.size = stat.st_size if end == len(chunk) - 1 else -1
        if end < 0:
            return []
        whole = chunk[: end + 1]
        self.offset += len(whole)
        self.tail = (self.tail + whole)[-TAIL_CHECK:]
        return whole.splitlines()

    def _forget(self) -> None:
        self.offset, self.inode, self.size, self.mtime_ns, self.tail = 0, None, 0, 0, b""
