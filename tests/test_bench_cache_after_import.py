"""A write of bench files leaves the DuckDB cache current: the first diff after it reloads nothing.

``bench import`` and ``bench run`` load the files they just wrote into ``.tunedeck/bench.duckdb``
before returning (``refresh_cache``). The cache must then be exactly what a rebuild from the files
makes, and when another process holds it the write still succeeds and the next reader loads them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.bench import compare
from engine.bench import run as bench_run
from engine.bench.db import BenchDB, opened, refresh_cache
from engine.bench.importer import import_results
from engine.bench.model_choice import ModelChoice
from engine.bench.store import bench_file
from engine.store.campaign import Campaign
from tests.bench_fixtures import BENCH_CAMPAIGN, copy_campaign
from tests.helpers import REPO, write_jsonl

ROWS = REPO / "tests" / "data" / "bench_formats" / "rows.jsonl"


@pytest.fixture
def camp(tmp_path: Path) -> Campaign:
    """The bench fixture campaign (runs base and cand), its cache built."""
    camp = copy_campaign(BENCH_CAMPAIGN, tmp_path / "c")
    with opened(camp) as db:
        assert db.cached
        assert db.synced == 4
    return camp


def cache_file(camp: Campaign) -> Path:
    return camp.root / ".tunedeck" / "bench.duckdb"


def rebuilt(camp: Campaign) -> dict[str, list[tuple[Any, ...]]]:
    """What a cache built from scratch from the files holds (the cache itself is left in place)."""
    saved = camp.root / ".tunedeck" / "saved"
    saved.mkdir()
    for path in camp.root.joinpath(".tunedeck").glob("bench.duckdb*"):
        shutil.move(path, saved / path.name)
    try:
        with opened(camp) as db:
            assert db.cached
            assert db.synced == len(list(camp.root.glob("bench/*/*.jsonl")))
            return db.dump()
    finally:
        for path in camp.root.joinpath(".tunedeck").glob("bench.duckdb*"):
            path.unlink()
        for path in saved.iterdir():
            shutil.move(path, cache_file(camp).parent / path.name)
        saved.rmdir()


def answers(camp: Campaign) -> dict[str, Any]:
    """Every query a user sees over the campaign, from a freshly opened cache."""
    with opened(camp) as db:
        return {
            "diff": compare.diff(db, "imported", "base").model_dump(mode="json"),
            "pass_rates": compare.pass_rates(db),
            "flaky": compare.flaky_rows(db),
            "judged": compare.judged_rows(db, {"voice": 1.0, "rhetorical": 1.0}),
        }


def tunedeck_rows(tmp_path: Path, run: str, tasks: dict[str, bool], bench: str = "code") -> Path:
    """A tunedeck-format results file: one row per task (of bench ``bench``), passed as given."""
    rows = [
        {"run": run, "bench": bench, "task_id": task, "passed": ok, "error": None if ok else "AssertionError",
         "score": None, "scores": None, "sample": 0, "latency_ms": 12.5}
        for task, ok in tasks.items()
    ]  # fmt: skip
    return write_jsonl(tmp_path / f"{run}-{bench}.jsonl", rows)


# -- the cache is current after a write ------------------------------------------------------


def test_after_an_import_the_next_open_reloads_nothing(camp: Campaign, tmp_path: Path) -> None:
    summary = import_results(camp, ROWS, "imported")
    assert len(summary.files) >= 2  # several benches, one file each
    with opened(camp) as db:
        assert db.cached
        assert db.synced == 0  # nothing stale: the import loaded its files
        assert db.query("run_has_rows", run="imported") == [(1,)]


def test_the_first_import_into_a_campaign_creates_the_cache(tmp_path: Path) -> None:
    camp = Campaign.create(tmp_path / "fresh", "fresh")
    assert not cache_file(camp).exists()
    summary = import_results(camp, ROWS, "imported")
    assert cache_file(camp).exists()
    with opened(camp) as db:
        assert db.synced == 0
        assert {row["run"] for row in compare.pass_rates(db)} == {"imported"}
    assert summary.rows == sum(len(path.read_text().splitlines()) for path in summary.files)


def test_the_cache_after_imports_is_what_a_rebuild_makes(camp: Campaign, tmp_path: Path) -> None:
    import_results(camp, ROWS, "imported")
    import_results(camp, ROWS, "imported@100")
    # A re-import replaces a file the cache already held: its old rows must be gone.
    lost = {f"T/{n}": n % 2 == 0 for n in range(1, 12)}
    import_results(camp, tunedeck_rows(tmp_path, "x", {task: True for task in lost}), "imported", bench="code")
    import_results(camp, tunedeck_rows(tmp_path, "y", lost), "imported", bench="code")
    with opened(camp) as db:
        assert db.synced == 0
        incremental = db.dump()
    before = answers(camp)
    assert incremental == rebuilt(camp)
    # And every answer is the same from a cache deleted and built again from the files.
    cache_file(camp).unlink()
    assert answers(camp) == before
    # The second import of bench code replaced the first: half its tasks now fail.
    code = [row for row in before["pass_rates"] if row["run"] == "imported" and row["bench"] == "code"]
    assert [(row["passed"], row["total"]) for row in code] == [(5, 11)]


def test_the_signature_recorded_is_the_files_own(camp: Campaign, tmp_path: Path) -> None:
    summary = import_results(camp, ROWS, "imported")
    with opened(camp) as db:
        sources = {source: (size, mtime, inode) for source, size, mtime, inode in db.dump()["bench_sources"]}
    for path in summary.files:
        stat = path.stat()
        assert sources[f"imported/{path.name}"] == (stat.st_size, stat.st_mtime_ns, stat.st_ino)


def test_a_bench_run_leaves_the_cache_current(camp: Campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_suite writes through the same replace_benches and refreshes the cache the same way."""
    suite = write_jsonl(
        tmp_path / "suite.jsonl",
        [{"bench": "rev", "task_id": f"rev/{n}", "prompt": "reverse: a b\n", "expected": "b a"} for n in range(5)],
    )
    camp.run("r1").root.mkdir(parents=True)

    def generate(campaign: Campaign, ref: Any, suite: Path, out: Path, *, samples: int, log: Path) -> None:
        rows = [
            {"bench": "rev", "task_id": f"rev/{n}", "sample": s, "completion": "b a" if n % 2 else "a b",
             "latency_ms": 3.0}
            for s in range(samples) for n in range(5)
        ]  # fmt: skip
        write_jsonl(out, rows)

    monkeypatch.setattr(
        bench_run, "choose_model", lambda *a: ModelChoice(model_dir=tmp_path, adapter=None, label="base")
    )
    monkeypatch.setattr(bench_run, "_generate", generate)
    summary = bench_run.run_suite(camp, "r1", suite, samples=2)
    assert summary.rows == 10
    with opened(camp) as db:
        assert db.synced == 0
        assert [(r["run"], r["bench"], r["passed"], r["total"]) for r in compare.pass_rates(db, ["r1"])] == [
            ("r1", "rev", 2, 5)
        ]
        incremental = db.dump()
    assert incremental == rebuilt(camp)


# -- when the cache cannot be used, the files still win ---------------------------------------


@pytest.fixture
def held(camp: Campaign) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the cache's DuckDB lock (an engine answering a query, a second terminal)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.read()",
         str(cache_file(camp))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0


def test_an_import_succeeds_while_another_process_holds_the_cache(camp: Campaign, held: subprocess.Popen[str]) -> None:
    summary = import_results(camp, ROWS, "imported")
    assert summary.rows > 0
    assert all(path.is_file() for path in summary.files)
    assert refresh_cache(camp, summary.files) is None  # the lock is still held: nothing was loaded
    # Meanwhile a reader falls back to the files and sees the import.
    db = BenchDB.open(camp)
    try:
        assert not db.cached
        assert db.query("run_has_rows", run="imported") == [(1,)]
    finally:
        db.close()
    release(held)
    # The next reader that gets the cache loads the imported files, as it always did.
    with opened(camp) as db:
        assert db.cached
        assert db.synced == len(summary.files)
        incremental = db.dump()
    assert incremental == rebuilt(camp)


# -- what the cache always did still holds ----------------------------------------------------


def test_a_bad_line_elsewhere_is_still_named_by_the_next_reader(camp: Campaign) -> None:
    """The import loads only its own files: a hand-edited file is left to the next reader, which reports it."""
    path = camp.root / "bench" / "cand" / "code.jsonl"
    lines = path.read_text().splitlines()
    lines.insert(2, "{not json")
    path.write_text("\n".join(lines) + "\n")
    import_results(camp, ROWS, "imported")
    with opened(camp) as db:
        assert db.synced == 1
        assert any(f"{path}:3:" in warning for warning in db.warnings)
        assert db.query("run_has_rows", run="cand") == [(1,)]


def test_an_unreadable_file_is_left_for_the_next_reader_to_report(camp: Campaign) -> None:
    path = bench_file(camp, "cand", "code")
    lines = path.read_text().splitlines()
    lines.insert(1, '{"task_id": "T/x", "passed": true, "bench": "code", "sample": 3000000000}')
    path.write_text("\n".join(lines) + "\n")
    # A writer refreshing a file DuckDB cannot read loads none of it (and drops its old rows) ...
    assert refresh_cache(camp, [path]) == 0
    # ... so the next reader loads it line by line and names the bad line, as for any hand edit.
    with opened(camp) as db:
        assert db.synced == 1
        assert any(f"{path}:2:" in warning for warning in db.warnings)
        incremental = db.dump()
    assert incremental == rebuilt(camp)


def test_an_old_schema_cache_is_rebuilt_around_an_import(camp: Campaign) -> None:
    import duckdb

    con = duckdb.connect(str(cache_file(camp)))
    con.execute("UPDATE bench_meta SET value = '0' WHERE key = 'schema'")
    con.close()
    summary = import_results(camp, ROWS, "imported")
    with opened(camp) as db:
        # The import rebuilt the cache's tables and loaded its own files; the others load now.
        assert db.synced == 4
        assert db.query("run_has_rows", run="imported") == [(1,)]
        incremental = db.dump()
    assert incremental == rebuilt(camp)
    assert len(summary.files) >= 2


def test_a_removed_file_named_to_refresh_loses_its_rows(camp: Campaign) -> None:
    path = bench_file(camp, "cand", "madison")
    path.unlink()
    assert refresh_cache(camp, [path]) == 0
    with opened(camp) as db:
        assert db.synced == 0
        assert {(r["run"], r["bench"]) for r in compare.pass_rates(db, ["cand"])} == {("cand", "code")}
