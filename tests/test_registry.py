"""The registry: promote (gate first), revert walking back through history, the log as the truth, hostile inputs.

Real files, the real bench layer (DuckDB) and the real CLI's ``main``; the service through the real
app over ASGITransport. Campaigns are copies of sessions/bd6 (bd6.8d in production by a hand-written
production.json, no registry.jsonl) with model folders made by hand for the runs promoted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.api import RegistryHistory, RegistryResult
from engine.decisions.registry import history, production_state, promote, rebuild, revert
from engine.decisions.registry_log import replay
from engine.service.app import create_app
from engine.store.campaign import Campaign
from engine.store.production import registry_path
from tests.helpers import REPO, tunedeck, tunedeck_here

GATE_LOST = ["humaneval:HumanEval/23", "mbpp:MBPP/53"]  # what bd6.8d2 loses against bd6.8d (the seed)


def make_merged(run_dir: Path, content: bytes = b"merged weights") -> Path:
    """runs/<run>/merged/ as `tunedeck merge` leaves it: weights, config, and a manifest of their hashes."""
    folder = run_dir / "merged"
    folder.mkdir(parents=True, exist_ok=True)
    files = {"model.safetensors": content, "config.json": b'{"model_type": "qwen2"}'}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    (folder / "manifest.json").write_text(json.dumps({"files": hashes}), encoding="utf-8")
    return folder


def make_adapter(run_dir: Path) -> Path:
    """runs/<run>/adapter/ as the training worker leaves it."""
    folder = run_dir / "adapter"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_model.safetensors").write_bytes(b"lora weights")
    (folder / "adapter_config.json").write_text('{"r": 8}', encoding="utf-8")
    return folder


def expected_digest(folder: Path) -> str:
    """The content hash computed independently: sha256 over sorted "path\\0sha256\\n" of every file but the manifest."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json"):
        name = path.relative_to(folder).as_posix()
        digest.update(f"{name}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


@pytest.fixture
def bd6(tmp_path: Path) -> Campaign:
    """sessions/bd6 with merged models for bd6.8d2 and bd6.5."""
    root = tmp_path / "bd6"
    shutil.copytree(REPO / "sessions" / "bd6", root)
    make_merged(root / "runs" / "bd6.8d2", b"bd6.8d2 weights")
    make_merged(root / "runs" / "bd6.5", b"bd6.5 weights")
    return Campaign.open(root)


@pytest.fixture
def gateless(tmp_path: Path) -> Campaign:
    """A campaign without [gate] or production, runs a and b with merged models."""
    campaign = Campaign.create(tmp_path / "plain", "plain")
    for run in ("a", "b"):
        (campaign.runs_dir / run).mkdir(parents=True)
        (campaign.runs_dir / run / "run.toml").write_text('dataset = "d.jsonl"\n', encoding="utf-8")
        make_merged(campaign.runs_dir / run, f"{run} weights".encode())
    return campaign


def cli(campaign: Campaign, *args: str) -> tuple[int, str, str]:
    done = tunedeck_here(*args, "--campaign", str(campaign.root))
    return done.returncode, done.stdout, done.stderr


def lines(campaign: Campaign) -> list[dict[str, Any]]:
    path = registry_path(campaign)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def production(campaign: Campaign) -> dict[str, Any] | None:
    path = campaign.root / "production.json"
    return json.loads(path.read_text()) if path.exists() else None


def production_run(campaign: Campaign) -> str | None:
    pointer = production(campaign)
    return None if pointer is None else str(pointer["run"])


def force(campaign: Campaign, run: str, reason: str = "accepted on purpose") -> RegistryResult:
    result = promote(campaign, run, force=True, reason=reason)
    assert result.done, result.message
    return result


# -- the gate comes first ---------------------------------------------------------------------


def test_a_failing_gate_refuses_names_the_rows_and_changes_nothing(bd6: Campaign) -> None:
    before = (bd6.root / "production.json").read_bytes()
    code, out, err = cli(bd6, "promote", "bd6.8d2")
    assert code == 1, err
    assert "refused: the gate failed for bd6.8d2" in out
    assert "lost 2 rows against production bd6.8d" in out
    assert "HumanEval/23" in out
    assert "MBPP/53" in out
    result = RegistryResult.model_validate_json(cli(bd6, "promote", "bd6.8d2", "--json")[1])
    assert (result.done, result.refused, result.entry) == (False, "gate", None)
    assert result.gate is not None
    assert result.gate.lost == GATE_LOST
    assert "MBPP/53" in result.gate.anchors.failed
    assert (bd6.root / "production.json").read_bytes() == before
    assert not registry_path(bd6).exists()


def test_the_gate_is_reported_before_a_missing_artifact(bd6: Campaign) -> None:
    shutil.rmtree(bd6.runs_dir / "bd6.8d2" / "merged")
    assert promote(bd6, "bd6.8d2").refused == "gate"
    forced = promote(bd6, "bd6.8d2", force=True, reason="ship it anyway")
    assert forced.refused == "artifact"
    assert "runs/bd6.8d2/merged does not exist: run 'tunedeck merge bd6.8d2' first" in forced.message
    assert "--artifact adapter" in forced.message
    assert not registry_path(bd6).exists()


def test_a_run_without_bench_results_fails_the_gate_in_its_own_words(bd6: Campaign) -> None:
    (bd6.runs_dir / "fresh").mkdir()
    (bd6.runs_dir / "fresh" / "run.toml").write_text('dataset = "d.jsonl"\n', encoding="utf-8")
    make_merged(bd6.runs_dir / "fresh")
    result = promote(bd6, "fresh")
    assert result.refused == "gate"
    assert result.gate is not None
    assert result.gate.reasons == [
        f"{bd6.root}/bench/fresh: no bench results for 'fresh': import some with 'tunedeck bench import' "
        "or run 'tunedeck bench run'"
    ]


# -- promote, revert, history -----------------------------------------------------------------


def test_a_forced_promote_appends_one_line_and_replaces_production(bd6: Campaign) -> None:
    result = force(bd6, "bd6.8d2", "r=16 next; serve 8d2 meanwhile")
    digest = expected_digest(bd6.runs_dir / "bd6.8d2" / "merged")
    [line] = lines(bd6)
    assert line["seq"] == 1
    assert line["action"] == "promote"
    assert (line["from_run"], line["from_artifact"], line["from_sha256"]) == ("bd6.8d", "runs/bd6.8d/merged", None)
    assert (line["to_run"], line["to_artifact"], line["to_sha256"]) == ("bd6.8d2", "runs/bd6.8d2/merged", digest)
    assert line["gate"]["verdict"] == "failed"
    assert line["gate"]["forced"] is True
    assert any("MBPP/53" in reason for reason in line["gate"]["reasons"])
    assert line["reason"] == "r=16 next; serve 8d2 meanwhile"
    assert line["user"]
    assert line["host"]
    assert line["time"].endswith("Z")
    assert production(bd6) == {
        "run": "bd6.8d2", "artifact": "runs/bd6.8d2/merged", "kind": "merged", "sha256": digest,
        "promoted_at": line["time"],
    }  # fmt: skip
    assert result.entry is not None
    assert result.entry.model_dump() == line


def test_repeated_reverts_walk_back_through_history(bd6: Campaign) -> None:
    force(bd6, "bd6.8d2")
    force(bd6, "bd6.5")
    first = revert(bd6, reason="5 is worse")
    assert first.done
    assert production_run(bd6) == "bd6.8d2"
    second = revert(bd6)
    assert second.done
    assert first.entry
    assert second.entry
    assert (first.entry.undoes, second.entry.undoes) == (2, 1)
    # Back to the hand-written starting pointer; its folder was never on disk (imported results only).
    assert production(bd6) == {
        "run": "bd6.8d", "artifact": "runs/bd6.8d/merged", "kind": "merged", "sha256": None,
        "promoted_at": second.entry.time,
    }  # fmt: skip
    assert second.warnings == [
        "runs/bd6.8d/merged is no longer on disk: production.json points at it, but serving it will fail"
    ]
    code, out, _ = cli(bd6, "revert")
    assert (code, out.strip()) == (1, "nothing to revert: every promote in registry.jsonl is undone")
    assert [line["action"] for line in lines(bd6)] == ["promote", "promote", "revert", "revert"]


def test_a_promote_after_a_revert_is_undone_first(gateless: Campaign) -> None:
    promote(gateless, "a")
    promote(gateless, "b")
    revert(gateless)  # -> a
    promote(gateless, "b")  # a -> b again
    assert revert(gateless).production.run == "a"  # type: ignore[union-attr]
    assert revert(gateless).production is None  # the first promote undone: nothing in production


def test_reverting_the_first_promote_removes_production_json(gateless: Campaign) -> None:
    done = promote(gateless, "a")
    assert done.entry is not None
    assert done.entry.gate is not None
    assert done.entry.gate.model_dump() == {"verdict": "no gate", "reasons": [], "forced": False}
    assert production_run(gateless) == "a"
    undone = revert(gateless)
    assert undone.done
    assert undone.production is None
    assert not (gateless.root / "production.json").exists()
    assert history(gateless).can_revert is False
    assert production_state(gateless).in_sync


def test_the_adapter_can_be_promoted_as_such(gateless: Campaign) -> None:
    adapter = make_adapter(gateless.runs_dir / "b")
    code, out, err = cli(gateless, "promote", "b", "--artifact", "adapter", "--reason", "adapter-on-base: 0% breaks")
    assert code == 0, err
    assert out.startswith("promoted b (runs/b/adapter, sha256 ")
    pointer = production(gateless)
    assert pointer is not None
    assert (pointer["artifact"], pointer["kind"], pointer["sha256"]) == (
        "runs/b/adapter",
        "adapter",
        expected_digest(adapter),
    )


def test_history_lists_the_log_newest_first_and_as_json_oldest_first(bd6: Campaign) -> None:
    force(bd6, "bd6.8d2", "first")
    revert(bd6, reason="second")
    code, out, _ = cli(bd6, "history")
    assert code == 0
    text = out.splitlines()
    assert text[0].startswith("production: bd6.8d (runs/bd6.8d/merged) since ")
    rows = [row for row in text if row.startswith("#")]
    assert rows[0].startswith("#2")
    assert "revert #1" in rows[0]
    assert "second" in rows[0]
    assert rows[1].startswith("#1")
    assert "bd6.8d -> bd6.8d2" in rows[1]
    assert "failed (forced)" in rows[1]
    parsed = RegistryHistory.model_validate_json(cli(bd6, "history", "--json")[1])
    assert [e.seq for e in parsed.entries] == [1, 2]
    assert parsed.in_sync
    assert not parsed.can_revert


def test_a_dry_run_changes_nothing(bd6: Campaign) -> None:
    before = (bd6.root / "production.json").read_bytes()
    result = promote(bd6, "bd6.8d2", force=True, reason="just looking", dry_run=True)
    assert (result.done, result.dry_run, result.refused) == (False, True, None)
    assert result.production is not None
    assert result.production.run == "bd6.8d2"
    assert revert(bd6, dry_run=True).refused == "nothing_to_undo"
    assert (bd6.root / "production.json").read_bytes() == before
    assert not registry_path(bd6).exists()


def test_promoting_what_is_in_production_already_is_refused(gateless: Campaign) -> None:
    promote(gateless, "a")
    code, out, _ = cli(gateless, "promote", "a")
    assert (code, out.strip()) == (1, "a is already in production (runs/a/merged, same content): nothing to do")
    assert len(lines(gateless)) == 1
    make_merged(gateless.runs_dir / "a", b"a merged again")  # a new merge of the same run is a change
    assert promote(gateless, "a").done
    assert len(lines(gateless)) == 2


# -- the log is the truth ---------------------------------------------------------------------


def test_production_json_is_rebuilt_from_the_log(bd6: Campaign) -> None:
    force(bd6, "bd6.8d2")
    force(bd6, "bd6.5")
    revert(bd6)
    written = (bd6.root / "production.json").read_bytes()
    (bd6.root / "production.json").unlink()
    assert not production_state(bd6).in_sync
    state, changed = rebuild(bd6)
    assert changed
    assert state.in_sync
    assert (bd6.root / "production.json").read_bytes() == written
    implied = replay(registry_path(bd6), None).production
    assert implied is not None
    assert implied.model_dump(mode="json") == json.loads(written)


def test_a_hand_edited_production_json_is_refused_until_rebuilt(bd6: Campaign) -> None:
    force(bd6, "bd6.8d2")
    (bd6.root / "production.json").write_text('{"run": "bd6"}\n')
    assert "disagrees with registry.jsonl" in (production_state(bd6).note or "")
    code, out, _ = cli(bd6, "revert")
    assert code == 1
    assert "production.json (bd6) disagrees with registry.jsonl (bd6.8d2)" in out
    assert json.loads((bd6.root / "production.json").read_text()) == {"run": "bd6"}  # the user's edit kept
    code, _, err = cli(bd6, "history", "--rebuild")
    assert code == 0
    assert "rewrote production.json from registry.jsonl" in err
    assert production_run(bd6) == "bd6.8d2"
    assert revert(bd6).done


def test_an_interrupted_change_is_completed_by_the_next(bd6: Campaign) -> None:
    """A writer killed between its append and its replace leaves production.json one change behind."""
    before = (bd6.root / "production.json").read_bytes()
    force(bd6, "bd6.8d2")
    (bd6.root / "production.json").write_bytes(before)  # as if the replace never ran
    assert not production_state(bd6).in_sync
    result = force(bd6, "bd6.5")
    assert any("one change behind" in warning for warning in result.warnings)
    assert [line["from_run"] for line in lines(bd6)] == ["bd6.8d", "bd6.8d2"]
    assert production_state(bd6).in_sync


def test_a_torn_last_line_does_not_corrupt_later_reads(gateless: Campaign) -> None:
    promote(gateless, "a")
    whole = registry_path(gateless).read_text()
    with registry_path(gateless).open("a") as handle:
        handle.write('{"seq": 2, "time": "2026-')  # a writer killed mid-line
    assert [e.seq for e in history(gateless).entries] == [1]  # readers skip it
    result = promote(gateless, "b")
    assert result.done
    assert any("torn last line" in w for w in result.warnings)
    text = registry_path(gateless).read_text()
    assert text.startswith(whole)
    assert text.count("\n") == 2
    assert [e.seq for e in history(gateless).entries] == [1, 2]
    assert (gateless.root / "registry.jsonl.torn").read_text() == '{"seq": 2, "time": "2026-\n'


# -- hostile inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["promote", "nope"], "no run named 'nope' in this campaign"),
        (["promote", "../etc"], "invalid run name '../etc'"),
        (["promote", "bd6.8d2", "--force"], "--force: needs a reason (--reason TEXT)"),
        (["promote", "bd6.8d2", "--force", "--reason", "   "], "--reason: is empty"),
        (["revert", "--reason", ""], "--reason: is empty"),
        (["promote", "bd6.8d2", "--force", "--reason", "x" * 5000], "--reason: is 5,000 characters, over the 1,000"),
    ],
    ids=["unknown-run", "invalid-name", "force-without-reason", "blank-reason", "empty-reason", "huge-reason"],
)
def test_bad_input_is_one_line_and_exit_2(bd6: Campaign, args: list[str], expected: str) -> None:
    before = (bd6.root / "production.json").read_bytes()
    code, out, err = cli(bd6, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert expected in err
    assert (bd6.root / "production.json").read_bytes() == before
    assert not registry_path(bd6).exists()


@pytest.mark.parametrize("name", ["production.json", "registry.jsonl"])
def test_a_symlinked_pointer_or_log_is_refused(bd6: Campaign, tmp_path: Path, name: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    path = bd6.root / name
    elsewhere.write_bytes(path.read_bytes() if path.exists() else b"")
    path.unlink(missing_ok=True)
    path.symlink_to(elsewhere)
    kept = elsewhere.read_bytes()
    code, _, err = cli(bd6, "promote", "bd6.8d2", "--force", "--reason", "r")
    assert code == 2
    assert "refusing to write through a symlink" in err
    assert err.count("\n") == 1
    assert elsewhere.read_bytes() == kept
    assert path.is_symlink()


def test_a_malformed_line_names_file_and_line(gateless: Campaign) -> None:
    promote(gateless, "a")
    promote(gateless, "b")
    path = registry_path(gateless)
    first, second = path.read_text().splitlines()
    path.write_text(f"{first}\nnot json\n{second}\n")
    code, _, err = cli(gateless, "history")
    assert code == 2
    assert err.strip() == f"tunedeck: {path}:2: not valid JSON (Expecting value)"
    broken = json.loads(second)
    del broken["host"]
    path.write_text(f"{first}\n{json.dumps(broken)}\n")
    code, _, err = cli(gateless, "revert")
    assert code == 2
    assert err.startswith(f"tunedeck: {path}:2: host: not a registry line (Field required)")


# -- the service ------------------------------------------------------------------------------


async def test_the_service_answers_with_the_cli_models(bd6: Campaign) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(bd6)), base_url="http://e") as http:
        state = (await http.get("/production")).json()
        assert state["production"]["run"] == "bd6.8d"
        assert state["in_sync"] is True
        refused = await http.post("/registry/promote", json={"run": "bd6.8d2"})
        assert refused.status_code == 200  # a refusal is an answer, not an error of the request
        body = RegistryResult.model_validate(refused.json())
        assert (body.refused, body.gate.lost if body.gate else None) == ("gate", GATE_LOST)
        bad = await http.post("/registry/promote", json={"run": "bd6.8d2", "force": True})
        assert bad.status_code == 400
        assert "needs a reason" in bad.json()["detail"]
        unknown = await http.post("/registry/promote", json={"run": "nope"})
        assert unknown.status_code == 404
        done = await http.post("/registry/promote", json={"run": "bd6.8d2", "force": True, "reason": "forced"})
        assert RegistryResult.model_validate(done.json()).done
        summary = {row["run"]: row["production"] for row in (await http.get("/runs/summary")).json()}
        assert summary["bd6.8d2"] is True
        assert summary["bd6.8d"] is False
        log = RegistryHistory.model_validate((await http.get("/registry")).json())
        assert [e.to_run for e in log.entries] == ["bd6.8d2"]
        assert log.can_revert
        back = RegistryResult.model_validate((await http.post("/registry/revert", json={})).json())
        assert back.done
        assert back.production is not None
        assert back.production.run == "bd6.8d"


@pytest.mark.slow
def test_the_real_cli_promotes_and_reverts(bd6: Campaign) -> None:
    """One pass through the installed entry point in a subprocess (the rest call main in process)."""
    done = tunedeck("promote", "bd6.8d2", "--force", "--reason", "subprocess", "--campaign", str(bd6.root), "--json")
    assert done.returncode == 0, done.stderr
    assert RegistryResult.model_validate_json(done.stdout).done
    undone = tunedeck("revert", "--campaign", str(bd6.root))
    assert undone.returncode == 0
    assert "production bd6.8d2 -> bd6.8d" in undone.stdout
    assert os.path.exists(bd6.root / "registry.jsonl")
