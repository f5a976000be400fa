"""Writers never glue a record onto a torn line, never follow a symlink, and honour the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.bench.store import write_bench
from engine.service.stream import read_new_lines
from engine.store.campaign import Campaign, RunPaths, record_event
from engine.store.jsonl import JsonlWriter, append_jsonl, read_jsonl, scan_jsonl, write_text_atomic
from engine.store.safe_paths import SymlinkRefused
from tests.helpers import tunedeck


@pytest.fixture
def camp(tmp_path: Path) -> Campaign:
    return Campaign.create(tmp_path / "campaign", "write safety")


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A folder outside the campaign with a file in it that must never change."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "events.jsonl").write_text("precious\n")
    yield folder
    assert (folder / "events.jsonl").read_text() == "precious\n"
    assert sorted(p.name for p in folder.iterdir()) == ["events.jsonl"]


def test_a_torn_last_line_never_swallows_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')  # a kill -9 mid-write
    with JsonlWriter(path) as writer:
        writer.write({"step": 3, "loss": 1.0})
    append_jsonl(path, {"step": 4, "loss": 0.5})
    assert [r["step"] for r in read_jsonl(path, strict=False)] == [1, 3, 4]
    scanned = list(scan_jsonl(path))
    assert [s.lineno for s in scanned if s.error] == [2]  # the fragment stays one named bad line
    # The live stream skips the fragment too, and counts its bytes.
    lines = list(read_new_lines(RunPaths(tmp_path), (0, 0, 0)))
    assert [line.text for line in lines] == [
        '{"step": 1, "loss": 2.0}',
        '{"step":3,"loss":1.0}',
        '{"step":4,"loss":0.5}',
    ]
    assert lines[-1].cursor[0] == path.stat().st_size


def test_a_clean_file_gets_no_extra_newline(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    append_jsonl(path, {"event": "a"})
    append_jsonl(path, {"event": "b"})
    assert path.read_text() == '{"event":"a"}\n{"event":"b"}\n'


def test_a_run_folder_that_is_a_symlink_is_refused(camp: Campaign, outside: Path) -> None:
    camp.runs_dir.mkdir(parents=True, exist_ok=True)
    (camp.runs_dir / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SymlinkRefused, match="refusing to write through a symlink"):
        record_event(camp.run("evil").events, "started")
    with pytest.raises(SymlinkRefused):
        write_text_atomic(camp.run("evil").root / "run.toml", "x = 1\n")


def test_an_events_file_that_is_a_symlink_is_refused(camp: Campaign, outside: Path) -> None:
    run = camp.run("r1")
    run.root.mkdir(parents=True)
    run.events.symlink_to(outside / "events.jsonl")
    with pytest.raises(SymlinkRefused, match=r"events\.jsonl"):
        record_event(run.events, "started")
    with pytest.raises(SymlinkRefused):
        JsonlWriter(run.events).write({"step": 1})


def test_a_bench_folder_that_is_a_symlink_is_refused_by_the_cli(camp: Campaign, outside: Path, tmp_path: Path) -> None:
    (camp.root / "bench").mkdir()
    (camp.root / "bench" / "r1").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SymlinkRefused):
        write_bench(camp, "r1", "humaneval", [])
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"task_id": "t1", "passed": true, "bench": "humaneval"}\n')
    done = tunedeck("bench", "import", str(rows), "--run", "r1", "--campaign", str(camp.root))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "refusing to write through a symlink" in done.stderr


def test_a_symlinked_campaign_root_is_fine(tmp_path: Path) -> None:
    real = Campaign.create(tmp_path / "real", "linked")
    (tmp_path / "link").symlink_to(real.root, target_is_directory=True)
    linked = Campaign.open(tmp_path / "link")
    record_event(linked.run("r1").events, "started")
    assert read_jsonl(real.run("r1").events)[0]["event"] == "started"


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path: Path, mask: int, mode: int) -> None:
    old = os.umask(mask)
    try:
        write_text_atomic(tmp_path / "run.toml", "x = 1\n")
        append_jsonl(tmp_path / "events.jsonl", {"event": "a"})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "run.toml").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "events.jsonl").stat().st_mode) == mode
