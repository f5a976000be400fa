"""One definition of each API shape: the service's OpenAPI schema and the CLI's ``--json`` come from engine.api.

Each service route must name its engine.api model as the response schema, and that schema must be
the model's own ``model_json_schema()``; the real CLI's ``--json`` output must validate against the
same model (extra keys are refused, every key is required) and dump back to exactly what was printed.
The last tests show both comparisons can fail.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from engine.api import (
    AnchorMatrix,
    BenchDiff,
    BenchRowsPage,
    BenchShow,
    BenchShowWithWarnings,
    CampaignStatus,
    DecisionTreeView,
    DecisionWalk,
    DiffTotals,
    EngineStatus,
    GateResult,
    GpuStatus,
    Health,
    JobStatus,
    MetricNames,
    MetricSeries,
    NextRun,
    ProductionState,
    RegistryHistory,
    RegistryResult,
    RunOverview,
    RunStatus,
    RunSummary,
    TrainerStateImport,
    WalkSummary,
    WatchReport,
)
from engine.service.app import create_app
from engine.store.campaign import Campaign
from tests.bench_fixtures import BENCH_CAMPAIGN, copy_campaign
from tests.helpers import REPO, tunedeck

REF = "#/components/schemas/{model}"

# (method, path, model, is a list of the model)
ROUTES: list[tuple[str, str, type[BaseModel], bool]] = [
    ("get", "/runs", RunStatus, True),
    ("get", "/runs/{run}", RunStatus, False),
    ("post", "/runs", RunStatus, False),
    ("post", "/runs/{run}/start", RunStatus, False),
    ("post", "/runs/{run}/stop", RunStatus, False),
    ("get", "/runs/{run}/alerts", WatchReport, False),
    ("get", "/bench", BenchShowWithWarnings, False),
    ("get", "/bench/diff", BenchDiff, False),
    ("get", "/bench/gate/{run}", GateResult, False),
    ("get", "/health", Health, False),
    ("get", "/gpu", GpuStatus, False),
    ("post", "/jobs", JobStatus, False),
    ("get", "/jobs", JobStatus, True),
    ("get", "/jobs/{job_id}", JobStatus, False),
    ("post", "/jobs/{job_id}/stop", JobStatus, False),
    ("get", "/runs/summary", RunSummary, True),
    ("get", "/runs/{run}/series", MetricSeries, False),
    ("get", "/runs/{run}/metric-names", MetricNames, False),
    ("get", "/bench/rows", BenchRowsPage, False),
    ("get", "/bench/anchors", AnchorMatrix, False),
    ("get", "/production", ProductionState, False),
    ("get", "/registry", RegistryHistory, False),
    ("post", "/registry/promote", RegistryResult, False),
    ("post", "/registry/revert", RegistryResult, False),
    ("get", "/runs/{run}/overview", RunOverview, False),
    ("get", "/bench/totals", DiffTotals, False),
    ("get", "/tree", DecisionTreeView, False),
    ("post", "/runs/{run}/decide", DecisionWalk, False),
    ("get", "/runs/{run}/decisions", WalkSummary, True),
    ("get", "/runs/{run}/decisions/{walk}", DecisionWalk, False),
    ("post", "/runs/{run}/from-decision", NextRun, False),
]

WATCH_RULES = """
[[watch]]
name = "grad-spike"
metric = "grad_norm"
above = 2.0
action = "stop"

[[watch]]
name = "loss-nonfinite"
metric = "loss"
nonfinite = true
action = "warn"
"""


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    campaign = Campaign.create(tmp_path_factory.mktemp("openapi") / "c", "shapes")
    return create_app(campaign).openapi()


def assert_route_answers(openapi: dict[str, Any], method: str, path: str, model: type[BaseModel], many: bool) -> None:
    """The route's 200 schema references ``model`` by name, and the components hold its own JSON schema."""
    schema = openapi["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    if many:
        assert schema["type"] == "array", schema
        schema = schema["items"]
    assert schema == {"$ref": REF.format(model=model.__name__)}, f"{method.upper()} {path}: {schema}"
    own = model.model_json_schema(mode="serialization", ref_template=REF)
    nested = own.pop("$defs", {})
    components = openapi["components"]["schemas"]
    assert components[model.__name__] == own, f"{method.upper()} {path} is not {model.__name__}'s schema"
    for name, definition in nested.items():
        assert components[name] == definition, f"{name} differs between {model.__name__} and the service"


@pytest.mark.parametrize(("method", "path", "model", "many"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_each_route_answers_with_its_engine_api_model(
    openapi: dict[str, Any], method: str, path: str, model: type[BaseModel], many: bool
) -> None:
    assert_route_answers(openapi, method, path, model, many)


def assert_printed(model: type[BaseModel], stdout: str) -> dict[str, Any]:
    """``stdout`` is one JSON object of ``model``'s shape: nothing extra, nothing missing, same key order."""
    printed = json.loads(stdout)
    parsed = model.model_validate_json(stdout)  # extra="forbid" and no defaults: both kinds of drift fail
    assert parsed.model_dump(mode="json") == printed
    assert list(printed) == list(model.model_fields), "keys out of the model's order"
    return dict(printed)


def cli_json(campaign: Campaign, *args: str, code: int = 0) -> str:
    done = tunedeck(*args, "--campaign", str(campaign.root), "--json")
    assert done.returncode == code, done.stderr
    assert done.stdout.count("\n") == 1, done.stdout  # one JSON object on one line
    return done.stdout


@pytest.fixture
def bench_campaign(tmp_path: Path) -> Campaign:
    return copy_campaign(BENCH_CAMPAIGN, tmp_path / "c")


def test_bench_show_diff_and_gate_print_their_models(bench_campaign: Campaign) -> None:
    show = assert_printed(BenchShow, cli_json(bench_campaign, "bench", "show"))
    assert show["judged"]["cand"]["madison"]["overall"] == pytest.approx(8.425)
    diff = assert_printed(BenchDiff, cli_json(bench_campaign, "bench", "diff", "cand", "--against", "base"))
    assert diff["lost"] == ["code:T/6", "code:T/7", "code:T/8"]
    assert set(diff["judged"]) == {"madison"}  # judged benches: delta, interval, coverage
    assert set(diff["steps"]) == {"candidate_step", "baseline_step", "same", "note"}
    gate = assert_printed(GateResult, cli_json(bench_campaign, "gate", "cand", code=1))
    assert (gate["passed"], gate["anchors"]["total"]) == (False, 4)


@pytest.fixture
def watched() -> Iterator[Campaign]:
    """A campaign with watch rules and one imported run; its engine is stopped afterwards."""
    root = Path(tempfile.mkdtemp(prefix="td-", dir="/tmp"))  # short: socket paths are limited
    campaign = Campaign.create(root / "c", "shapes")
    toml = campaign.root / "campaign.toml"
    toml.write_text(toml.read_text() + WATCH_RULES)
    yield campaign
    tunedeck("engine", "stop", "--campaign", str(campaign.root))
    shutil.rmtree(root, ignore_errors=True)


def test_import_watch_status_and_engine_print_their_models(watched: Campaign) -> None:
    source = REPO / "tests" / "data" / "trainer_state" / "grpo_watch.json"
    imported = cli_json(watched, "import", "trainer-state", str(source), "--run", "v4.1")
    assert assert_printed(TrainerStateImport, imported)["created_run"] is True

    report = assert_printed(WatchReport, cli_json(watched, "watch", "v4.1"))
    alerts = {a["rule"]: a for a in report["alerts"]}
    assert alerts["loss-nonfinite"]["value"] == "NaN"  # bare NaN in the file, a JSON string here

    status = assert_printed(RunStatus, cli_json(watched, "status", "v4.1"))  # from the files: no engine
    assert (status["run"], status["state"]) == ("v4.1", "finished")
    campaign_status = assert_printed(CampaignStatus, cli_json(watched, "status"))
    assert [assert_printed(RunStatus, json.dumps(item)) for item in campaign_status["runs"]] == [status]
    assert campaign_status["cost_total"]["total_usd"] is None  # nothing declared: not "free"

    idle = EngineStatus.model_validate_json(cli_json(watched, "engine", "status"))
    assert idle.running is False  # `status` started none
    cli_json(watched, "engine", "start")
    engine = assert_printed(EngineStatus, cli_json(watched, "engine", "status"))
    assert engine["running"] is True
    assert_printed(GpuStatus, json.dumps(engine["gpu"]))


def test_promote_revert_and_history_print_their_models(tmp_path: Path) -> None:
    from tests.test_registry import make_merged

    shutil.copytree(REPO / "sessions" / "bd6", tmp_path / "bd6")
    make_merged(tmp_path / "bd6" / "runs" / "bd6.8d2")
    bd6 = Campaign.open(tmp_path / "bd6")
    refused = assert_printed(RegistryResult, cli_json(bd6, "promote", "bd6.8d2", code=1))
    assert (refused["refused"], refused["gate"]["lost"]) == ("gate", ["humaneval:HumanEval/23", "mbpp:MBPP/53"])
    done = assert_printed(RegistryResult, cli_json(bd6, "promote", "bd6.8d2", "--force", "--reason", "shapes"))
    assert done["entry"]["to_run"] == "bd6.8d2"
    assert assert_printed(RegistryResult, cli_json(bd6, "revert"))["production"]["run"] == "bd6.8d"
    assert len(assert_printed(RegistryHistory, cli_json(bd6, "history"))["entries"]) == 2


def test_decide_and_run_from_decision_print_their_models(tmp_path: Path) -> None:
    shutil.copytree(REPO / "sessions" / "bd6", tmp_path / "bd6", ignore=shutil.ignore_patterns(".tunedeck"))
    bd6 = Campaign.open(tmp_path / "bd6")
    walk = assert_printed(DecisionWalk, cli_json(bd6, "decide", "bd6.8d2"))
    assert (walk["walk"], walk["recommendation"]["id"]) == ("0001", "rank-bump")
    made = assert_printed(NextRun, cli_json(bd6, "run", "--from-decision", "bd6.8d2", "bd6.8d-rank"))
    assert made["run_toml"] == "runs/bd6.8d-rank/run.toml"


# -- the comparisons can fail ------------------------------------------------------------


def test_an_extra_or_missing_key_is_refused(bench_campaign: Campaign) -> None:
    printed = json.loads(cli_json(bench_campaign, "bench", "diff", "cand", "--against", "base"))
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        BenchDiff.model_validate_json(json.dumps({**printed, "verdict": "worse"}))
    with pytest.raises(ValidationError, match="Field required"):
        BenchDiff.model_validate_json(json.dumps({k: v for k, v in printed.items() if k != "p_value"}))
    nested = {**printed, "benches": {"code": {**printed["benches"]["code"], "extra": 1}}}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        BenchDiff.model_validate_json(json.dumps(nested))
    with pytest.raises(AssertionError, match="keys out of the model's order"):
        assert_printed(BenchDiff, json.dumps(dict(reversed(printed.items()))))


def test_a_route_with_another_shape_is_caught(openapi: dict[str, Any]) -> None:
    with pytest.raises(AssertionError, match="/bench/diff"):
        assert_route_answers(openapi, "get", "/bench/diff", GateResult, False)
    with pytest.raises(AssertionError, match="/bench"):
        assert_route_answers(openapi, "get", "/bench", BenchShow, False)  # the service adds warnings
