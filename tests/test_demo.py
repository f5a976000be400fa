"""``tunedeck demo --headless --json``: the whole campaign on the tiny model, end to end.

The demo's summary alone is checked: that a merged folder loads and matches its manifest, that
a worker records its run, that bench rows are canonical are each tested on their own (test_merge.py,
test_worker_in_process.py, test_worker.py, test_bench_run.py); what only the demo shows is that
1,000 steps take held-out exact match from nothing to nearly all, and the bench diff says so too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import tunedeck


@pytest.mark.slow
def test_demo_learns_merges_and_reports(tmp_path: Path) -> None:
    done = tunedeck("demo", "--headless", "--json", "--dir", str(tmp_path / "demo"), timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["eval"]["before"] < result["eval"]["after"]
    assert result["eval"]["after"] >= 0.9
    assert result["max_logit_diff"] <= 1e-3
    assert Path(result["merged"]) == tmp_path / "demo" / "runs" / "demo-r1" / "merged"
    assert result["train"]["steps"] == 1000
    assert result["train"]["last_loss"] < result["train"]["first_loss"]
    # The held-out suite, benched on the base model (demo-r1@0) and on the trained run.
    bench = result["bench"]
    for name in ("reverse", "reverse-tests"):
        assert bench["trained"][name]["passed"] > bench["base"][name]["passed"]
    assert bench["lost"] == 0
    assert bench["gained"] >= 20
    assert bench["p_value"] < 1e-3


def test_demo_refuses_to_overwrite_a_folder_it_did_not_make(tmp_path: Path) -> None:
    keep = tmp_path / "mine" / "notes.txt"
    keep.parent.mkdir()
    keep.write_text("precious")
    done = tunedeck("demo", "--headless", "--json", "--dir", str(keep.parent), timeout=60)
    assert done.returncode == 2
    assert "is not a tunedeck demo folder" in done.stderr
    assert keep.read_text() == "precious"
    assert sorted(p.name for p in keep.parent.iterdir()) == ["notes.txt"]
