"""DuckDB over the bench files: a table rebuilt from ``bench/<ref>/<bench>.jsonl``.

The JSONL files are the truth. This module keeps a cache of them in
``<campaign>/.tunedeck/bench.duckdb`` so a diff over a million rows answers in milliseconds
instead of re-parsing 100 MB of JSON: on every open, each file's size and mtime are compared
with what the cache last loaded, and only changed files are re-read (a whole-file replace, as
``store.write_bench`` does, shows up as a new inode and mtime). When the cache cannot be used — another
process holds its lock, or it was written by an incompatible version — the rows are read from
the files into memory instead: slower, never wrong. A writer of bench files (``bench import``,
``bench run``) calls ``refresh_cache`` with the files it just wrote, so the first reader after it
finds them loaded instead of re-reading them; when it cannot, the next reader does as before.

The queries themselves live in ``queries/*.sql`` and see ``bench_rows`` and the ``task_verdicts``
view. Nothing outside this module touches the connection: callers run a query by name
(``query``, ``records``, ``materialise``) and a ``duckdb.Error`` comes back as ``BenchQueryError``
naming the query. The only SQL written here is the cache's own definition: its tables, the
loader that mirrors the files into them, and the bookkeeping of which files it has seen.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

import queries
from engine.bench.rows import JUDGE_ERROR, check_row
from engine.bench.store import bench_files, bench_root
from engine.errors import BenchQueryError, TunedeckError
from engine.store.campaign import Campaign, ensure_private_dir
from engine.store.jsonl import scan_jsonl

log = logging.getLogger(__name__)

# Bumped whenever the table's shape changes: an older cache is then rebuilt from the files.
SCHEMA_VERSION = 5  # 4: verdicts' latency sums in sample order (deterministic); 5: judge errors no verdict
CACHE_FILE = "bench.duckdb"

# What tells a file changed: (size, mtime_ns, inode). A replace by rename always gets a new inode.
Signature = tuple[int, int, int]

# Explicit columns: DuckDB's inference would otherwise drop a key that first appears after its
# sample (ENGINE_NOTES "DuckDB 2.0"), and a bench with no judged rows would type `scores` as NULL.
ROW_COLUMNS = {
    "bench": "VARCHAR",
    "task_id": "VARCHAR",
    "passed": "BOOLEAN",
    "error": "VARCHAR",
    "score": "DOUBLE",
    "scores": "JSON",
    "sample": "INTEGER",
    "latency_ms": "DOUBLE",
    "category": "VARCHAR",
}

_CREATE = """
CREATE TABLE IF NOT EXISTS bench_rows (
    run VARCHAR, bench VARCHAR, task_id VARCHAR, passed BOOLEAN, error VARCHAR, score DOUBLE,
    scores JSON, sample INTEGER, latency_ms DOUBLE, category VARCHAR, source VARCHAR
);
CREATE TABLE IF NOT EXISTS bench_sources (source VARCHAR PRIMARY KEY, size BIGINT, mtime_ns BIGINT, inode BIGINT);
CREATE TABLE IF NOT EXISTS bench_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS verdicts (
    run VARCHAR, bench VARCHAR, task_id VARCHAR, passed BOOLEAN, error VARCHAR, samples BIGINT,
    samples_passed BIGINT, flaky BOOLEAN, latency_ms DOUBLE
);
"""


@dataclass
class BenchDB:
    """A DuckDB connection whose ``bench_rows`` table mirrors the campaign's bench files."""

    campaign: Campaign
    con: duckdb.DuckDBPyConnection
    cached: bool
    warnings: list[str] = field(default_factory=list)
    # How many files the last sync() (the one open() runs) reloaded: 0 when the cache was current.
    synced: int = 0

    @classmethod
    def open(cls, campaign: Campaign, *, cache: bool = True) -> BenchDB:
        """Connect (to the cache when possible) and bring ``bench_rows`` up to date with the files."""
        try:
            if cache:
                con = _connect_cache(campaign)
                if con is not None:
                    db = cls(campaign, con, cached=True)
                    db.sync()
                    return db
            db = cls(campaign, duckdb.connect(":memory:"), cached=False)
            db.sync()
        except duckdb.Error as exc:
            # Whatever DuckDB says while loading the files (a full disk, a broken cache) is one line.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BenchQueryError("load (bench files -> cache)", first) from None
        return db

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the cache's tables, sorted: what a rebuild from the same files must reproduce."""
        return {
            table: self.con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            for table in ("bench_rows", "bench_sources", "verdicts")
        }

    def __post_init__(self) -> None:
        self.con.execute(_CREATE)
        # Views are per connection (TEMP), so an old cache never holds a stale definition.
        # One verdict per task, kept up to date by sync(): queries never re-aggregate bench_rows.
        self.con.execute("CREATE OR REPLACE TEMP VIEW task_verdicts AS SELECT * FROM verdicts")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> BenchDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- keeping the table in step with the files ----------------------------------------

    def sync(self, only: Collection[Path] | None = None) -> int:
        """Reload files that changed since the table last saw them; returns how many were reloaded.

        ``only`` limits the sync to those files (the ones a writer just replaced): one that is gone
        has its rows dropped, and every other file is left to the next full sync. There, a file
        DuckDB cannot read is left out rather than loaded line by line (its old rows dropped, its
        signature not recorded), so the next full sync loads it and names its bad lines.
        """
        root = bench_root(self.campaign)
        wanted = None if only is None else {_source(path, root) for path in only}
        on_disk: dict[str, tuple[Signature, Path]] = {}
        for path in bench_files(self.campaign):
            source = path.relative_to(root).as_posix()
            if wanted is not None and source not in wanted:
                continue
            # Signatures are taken before the files are read: a file replaced in between then
            # looks changed to the next sync, never the other way round.
            stat = path.stat()
            on_disk[source] = ((stat.st_size, stat.st_mtime_ns, stat.st_ino), path)
        known: dict[str, Signature] = {
            source: (size, mtime, inode)
            for source, size, mtime, inode in self.con.execute(
                "SELECT source, size, mtime_ns, inode FROM bench_sources"
            ).fetchall()
            if wanted is None or source in wanted
        }
        stale = [source for source, sig in known.items() if source not in on_disk or on_disk[source][0] != sig]
        fresh = [source for source, (sig, _) in on_disk.items() if known.get(source) != sig]
        self.synced = 0
        if not stale and not fresh:
            return 0
        paths = [on_disk[source][1] for source in fresh]
        try:
            self._replace(stale, fresh, on_disk, good=paths, bad=[])
        except duckdb.InvalidInputException:
            # A file edited by hand with a bad line. Find which files DuckDB cannot read (outside
            # any transaction: a failed statement aborts the one it is in), then load those in
            # Python, reporting each bad line and keeping the good ones.
            bad = [path for path in paths if not self._readable(path)]
            good = [path for path in paths if path not in bad]
            if wanted is not None:
                fresh = [source for source in fresh if on_disk[source][1] not in bad]
                bad = []
            self._replace(stale, fresh, on_disk, good=good, bad=bad)
        self.synced = len(fresh)
        return len(fresh)

    def _replace(
        self,
        stale: list[str],
        fresh: list[str],
        on_disk: dict[str, tuple[Signature, Path]],
        *,
        good: list[Path],
        bad: list[Path],
    ) -> None:
        """In one transaction: drop the rows of changed or removed files, load the new ones."""
        root = bench_root(self.campaign)
        self.con.execute("BEGIN TRANSACTION")
        try:
            if stale:
                self.con.execute("DELETE FROM bench_rows WHERE list_contains($s, source)", {"s": stale})
                self.con.execute("DELETE FROM bench_sources WHERE list_contains($s, source)", {"s": stale})
            if good:
                self.con.execute(_insert_sql(), {"files": [str(p) for p in good], "root": str(root) + "/"})
            for path in bad:
                self._load_tolerant(path, root)
            if fresh:
                self.con.executemany(
                    "INSERT INTO bench_sources VALUES (?, ?, ?, ?)",
                    [[source, *on_disk[source][0]] for source in fresh],
                )
            runs = sorted({source.split("/", 1)[0] for source in (*stale, *fresh)})
            self.con.execute("DELETE FROM verdicts WHERE list_contains($r, run)", {"r": runs})
            self.con.execute(
                f"INSERT INTO verdicts SELECT * FROM ({queries.load('task_verdicts')}) WHERE list_contains($r, run)",
                {"r": runs, "judge_error": JUDGE_ERROR},
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def _readable(self, path: Path) -> bool:
        """Whether DuckDB's JSON reader accepts every line of ``path``, every column cast included.

        ``count(*)`` alone would not read the columns, so a value that does not fit its type
        (``"sample": 3000000000`` in an INTEGER) would pass here and fail the whole insert.
        """
        every_column = ", ".join(f"count({name})" for name in ROW_COLUMNS)
        try:
            self.con.execute(f"SELECT {every_column} FROM {_read_json('$files')}", {"files": [str(path)]}).fetchall()
        except duckdb.Error:
            return False
        return True

    def _load_tolerant(self, path: Path, root: Path) -> None:
        ref, source = path.parent.name, path.relative_to(root).as_posix()
        rows = []
        for item in scan_jsonl(path):
            if item.error is not None:
                self.warnings.append(f"{path}:{item.lineno}: {item.error}")
                continue
            try:
                row = check_row(item.record, run=ref, bench=None, path=str(path), line=item.lineno)
            except TunedeckError as exc:
                self.warnings.append(str(exc))
                continue
            rows.append(
                [ref, row["bench"], row["task_id"], row["passed"], row["error"], row["score"],
                 None if row["scores"] is None else _json(row["scores"]), row["sample"], row["latency_ms"],
                 row.get("category"), source]
            )  # fmt: skip
        if rows:
            self.con.executemany("INSERT INTO bench_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    # -- queries: the only way in from outside this module --------------------------------
    #
    # Each call runs one named statement and fetches all of it before returning, so no result
    # is ever left open on the connection (ENGINE_NOTES "DuckDB 2.0": no fetchone). They share
    # this one connection rather than a ``con.cursor()`` each: a DuckDB cursor is a connection
    # of its own and would not see the TEMP view and tables the queries read.

    def query(self, name: str, /, *args: Any, **params: Any) -> list[tuple[Any, ...]]:
        """Every row of ``queries/<name>.sql`` run with ``?`` (args) or ``$name`` (params) parameters."""
        return self._run(name, _sql(name), args, params)[1]

    def records(self, name: str, /, *args: Any, **params: Any) -> list[dict[str, Any]]:
        """Like ``query`` but each row as a dict keyed by column name."""
        columns, rows = self._run(name, _sql(name), args, params)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def materialise(self, table: str, name: str, /, *args: Any, **params: Any) -> None:
        """Run ``queries/<name>.sql`` once into TEMP TABLE ``table``, for the queries that read it."""
        if not table.isidentifier():
            raise ValueError(f"not a table name: {table!r}")
        self._run(name, f"CREATE OR REPLACE TEMP TABLE {table} AS {_sql(name)}", args, params)

    def _run(
        self, name: str, sql: str, args: tuple[Any, ...], params: dict[str, Any]
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        if args and params:
            raise TypeError("give ? parameters or $name parameters, not both")
        try:
            result = self.con.execute(sql, list(args) if args else params)
            columns = [d[0] for d in result.description or []]
            return columns, result.fetchall()
        except duckdb.Error as exc:
            raise BenchQueryError(name, _first_line(exc)) from exc


def _sql(name: str) -> str:
    """The text of a named query; an unknown name is a ``BenchQueryError`` like a failing one."""
    try:
        return queries.load(name)
    except (FileNotFoundError, ValueError):
        raise BenchQueryError(name, f"no such query (queries/{name}.sql)") from None


def _first_line(exc: duckdb.Error) -> str:
    # DuckDB appends the statement and a caret on later lines; the first says what went wrong.
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _json(value: Any) -> str:
    import json

    return json.dumps(value, allow_nan=False)


def _read_json(files: str) -> str:
    """The read_json call over the files in parameter ``files``, with the canonical columns."""
    columns = ", ".join(f"'{name}': '{kind}'" for name, kind in ROW_COLUMNS.items())
    return f"read_json({files}, format = 'newline_delimited', columns = {{{columns}}}, filename = true)"


def _insert_sql() -> str:
    # The run is the folder's name (bench/<ref>/...), not the row's own field: a folder copied
    # or renamed by hand still means what its name says.
    return f"""
        INSERT INTO bench_rows
        SELECT split_part(substr(filename, length($root) + 1), '/', 1) AS run,
               bench, task_id, passed, error, score, scores, coalesce(sample, 0), latency_ms, category,
               substr(filename, length($root) + 1) AS source
        FROM {_read_json("$files")}
        WHERE task_id IS NOT NULL AND passed IS NOT NULL
    """


def _connect_cache(campaign: Campaign) -> duckdb.DuckDBPyConnection | None:
    """The cache database, created or rebuilt as needed; None when it cannot be used now."""
    folder = ensure_private_dir(campaign.root / ".tunedeck")
    path = folder / CACHE_FILE
    for attempt in range(2):
        try:
            con = duckdb.connect(str(path))
        except duckdb.Error as exc:
            # Typically "Could not set lock": another tunedeck process holds the cache.
            log.debug("bench cache unavailable (%s); reading the files", exc)
            if attempt == 0 and "lock" not in str(exc).lower():
                with contextlib.suppress(OSError):
                    path.unlink()  # unreadable (another DuckDB version?): rebuild from the files
                continue
            return None
        con.execute(_CREATE)
        version = con.execute("SELECT value FROM bench_meta WHERE key = 'schema'").fetchall()
        if version != [(str(SCHEMA_VERSION),)]:
            con.execute(
                "DROP TABLE IF EXISTS bench_rows; DROP TABLE IF EXISTS bench_sources; "
                "DROP TABLE IF EXISTS bench_meta; DROP TABLE IF EXISTS verdicts"
            )
            con.execute(_CREATE)
            con.execute("INSERT INTO bench_meta VALUES ('schema', ?)", [str(SCHEMA_VERSION)])
        return con
    return None


def refresh_cache(campaign: Campaign, files: Collection[Path]) -> int | None:
    """Load ``files``, just written by this process, into the cache now; how many were loaded.

    The writer's rows are already in these files, read by the same loader as ``sync`` (DuckDB's
    JSON reader measured faster than inserting the parsed rows from Python), so the cache ends as a
    rebuild from the files would leave it and the next reader finds nothing to reload. ``None``
    when the cache cannot be used now (another process holds it, or it is unreadable): the files
    are the truth, the write has succeeded, and the next reader loads them as it always did.
    """
    con = None
    try:
        con = _connect_cache(campaign)
        if con is None:
            return None
        return BenchDB(campaign, con, cached=True).sync(only=files)
    except (duckdb.Error, OSError) as exc:
        log.debug("bench cache not refreshed (%s); the next reader loads the files", exc)
        return None
    finally:
        if con is not None:
            con.close()


def _source(path: Path, root: Path) -> str:
    """``path`` as the ``source`` the cache knows it by (``<ref>/<bench>.jsonl``)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()  # not a bench file: matches nothing


@contextlib.contextmanager
def opened(campaign: Campaign, *, cache: bool = True) -> Iterator[BenchDB]:
    """``with opened(campaign) as db: ...``"""
    db = BenchDB.open(campaign, cache=cache)
    try:
        yield db
    finally:
        db.close()
