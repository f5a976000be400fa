"""A hostile user's pass over the TRL methods and the LLM judge: every case a refusal, a kept file or a clean error.

The bar: bad input is one line naming file, line and field (exit 2 from the CLI, never a traceback);
nothing a user had is lost or silently overwritten; a judge error is never a 0 nor a failed row; the
API key reaches no file and no message; nothing is read from outside the campaign folder.

Judging runs against a real HTTP server (``HostileJudge`` below, tests/judge_server.py's counting with
misbehaving answers). ``judge_suite`` gets its answers from a ``generate`` function that writes the
completions file the bench worker would (the seam the CLI fills with the engine's queue), so no model
is loaded; the one test that trains is marked slow.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.bench.judge import STATE_DIR, JudgeStopped, Task, judge_suite, judge_tasks
from engine.bench.judge_client import MAX_WAIT_S, JudgeClient, retry_after_s
from engine.bench.judge_parse import VerdictError, parse_verdict
from engine.bench.judge_rubric import load_rubric
from engine.bench.store import ModelRef, bench_file
from engine.bench.suite import parse_suite_row
from engine.errors import ConfigError, DatasetError, NotFoundError, TunedeckError
from engine.runs.launch import prepare_run
from engine.store.campaign import Campaign
from engine.store.config import CampaignConfig, JudgeConfig, RunConfig, validate_toml
from engine.store.datasets import PromptRow
from engine.store.locks import LockHeld
from engine.store.method_config import GrpoMethod
from engine.worker.rewards import RewardSet
from tests.helpers import grpo_rows, tunedeck_here, worker, write_jsonl
from tests.judge_server import _CASE, COMPONENTS, JudgeServer

SECRET = "sk-redteam-5e1f0c9a77"
KEY_ENV = "TUNEDECK_REDTEAM_KEY"
WEIGHTS = {"voice": 25, "rhetorical": 20, "historical": 20, "position": 20, "integrity": 15}
REWARD = '[[method.rewards]]\nfn = "exact_match"\n'
GRPO = '[method]\nname = "grpo"\n' + REWARD


def one_line(error: BaseException | str) -> str:
    text = str(error)
    assert "\n" not in text.strip(), text
    assert "Traceback" not in text
    return text


# -- [method]: refused at its key, one line ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[method]\nname = "dpo"\nbeta = "high"\n', ":3: method.beta: Input should be a valid number"),
        ('[method]\nname = "grpo"\nnum_generations = 0\n' + REWARD, ":3: method.num_generations: "),
        ('[method]\nname = "grpo"\nnum_generations = -1\n' + REWARD, ":3: method.num_generations: "),
        ('[method]\nname = "grpo"\nnum_generations = 1e9\n' + REWARD, "valid integer"),
        ('[method]\nname = "grpo"\nmax_completion_length = 0\n' + REWARD, ":3: method.max_completion_length"),
        ('[method]\nname = "grpo"\ntemperature = -1\n' + REWARD, ":3: method.temperature: "),
        ('[method]\nname = "dpo"\nloss_type = []\n', ":3: method.loss_type: List should have at least 1"),
        ('[method]\nname = "dpo"\nloss_weights = [1.0]\n', "loss_weights has 1 entries for 2 loss_type"),
        # A negative loss weight maximises that loss; all zero trains nothing.
        ('[method]\nname = "dpo"\nloss_weights = [1.0, -5]\n', ":3: method.loss_weights.1: "),
        ('[method]\nname = "dpo"\nloss_weights = [0, 0]\n', ":3: method.loss_weights: every weight is 0"),
        (GRPO + "weight = nan\n", ":5: method.rewards.0.weight: Input should be a finite number"),
        (GRPO + "weight = inf\n", ":5: method.rewards.0.weight: Input should be a finite number"),
        (GRPO + "weight = 1e308\n", ":5: method.rewards.0.weight: Input should be less than or equal to"),
        (GRPO + "weight = 0\n", "method.rewards: every reward has weight 0"),
        (GRPO.replace("exact_match", "rouge"), ":4: method.rewards.0.fn: unknown reward 'rouge'"),
        (GRPO.replace('"exact_match"', '"../x:fn"'), ":4: method.rewards.0.fn: '../x:fn': a user's reward"),
        (GRPO.replace('"exact_match"', '"/etc/x:fn"'), ":4: method.rewards.0.fn: '/etc/x:fn': a user's reward"),
        (GRPO + 'column = ""\n', ":5: method.rewards.0.column: String should have at least 1 character"),
        (GRPO.replace("exact_match", "m:f") + 'columns = ["completions"]\n', "completions: tunedeck passes these"),
        ('[method]\nname = "grpo"\nbeta = 1e308\n' + REWARD, ":3: method.beta: Input should be less than"),
        ('[method]\nname = "cpo"\ncpo_alpha = 1e308\n', ":3: method.cpo_alpha: Input should be less than"),
        ('[method]\nname = "kto"\ndesirable_weight = 1e308\n', ":3: method.desirable_weight: Input should be"),
        ("method = 7\n", ":1: method: a method name (sft, dpo, orpo, grpo, kto, cpo) or a [method] table with name"),
        ("method = {}\n", ':1: method: the [method] table needs name = "..."'),
        ("method = []\n", ":1: method: a method name"),
        ('[method]\nname = "grpo"\nrewards = []\n', ":3: method.rewards: List should have at least 1 item"),
        ('[method]\nname = "grpo"\n', "method.rewards: required field is missing"),
    ],
)
def test_a_hostile_method_table_is_one_line_at_its_key(text: str, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_toml(Path("run.toml"), text, RunConfig)
    assert said in one_line(caught.value)


def test_negative_reward_weights_stay_allowed_as_penalties() -> None:
    config = validate_toml(Path("run.toml"), GRPO + "weight = -0.5\n" + REWARD + 'name = "x"\n', RunConfig)
    assert isinstance(config.method, GrpoMethod)
    assert [spec.weight for spec in config.method.rewards] == [-0.5, 1.0]


# -- datasets of a preference or GRPO run, checked before any worker ------------------------------


@pytest.fixture
def campaign(tmp_path: Path) -> Campaign:
    """A campaign on a stub base model (prepare_run and choose_model check only its config.json)."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    return Campaign.create(tmp_path / "campaign", "redteam", base=str(base))


def _prepare(campaign: Campaign, data: bytes, method: str = 'method = "dpo"\n') -> Any:
    (campaign.root / "datasets").mkdir(exist_ok=True)
    (campaign.root / "datasets" / "d.jsonl").write_bytes(data)
    run = campaign.run("r").root
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.toml").write_text('dataset = "datasets/d.jsonl"\n' + method)
    return prepare_run(campaign, "r")


def _lines(*rows: dict[str, Any]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


PAIR = {"prompt": "p", "chosen": "a", "rejected": "b"}
GRPO_RUN = GRPO + "[train]\nbatch_size = 4\n"


@pytest.mark.parametrize(
    ("data", "method", "said"),
    [
        (_lines({**PAIR, "rejected": "a"}), 'method = "dpo"\n', ":1: rejected: is the same text as chosen"),
        (_lines({**PAIR, "chosen": ["a"]}), 'method = "dpo"\n', ":1: chosen: must be a string, got list"),
        (_lines({**PAIR, "chosen": 3}), 'method = "orpo"\n', ":1: chosen: must be a string, got int"),
        (_lines({**PAIR, "prompt": "x" * 10_000_000}), 'method = "kto"\n', ":1: line is 10,000,047 characters"),
        (b"\xef\xbb\xbf" + _lines(PAIR), 'method = "dpo"\n', ":1: not valid JSON (Unexpected UTF-8 BOM"),
        (b"", 'method = "cpo"\n', "d.jsonl: dataset has no rows"),
        (
            _lines({"messages": [{"role": "narrator", "content": "x"}], "chosen": "a", "rejected": "b"}),
            'method = "dpo"\n',
            ":1: messages[0].role: unknown role 'narrator'",
        ),
        (_lines(PAIR, {"prompt": "p"}), GRPO_RUN, ":1: answer: missing (a reward function of this run reads it)"),
        (
            _lines({"prompt": "p", "fields": [1]}),
            GRPO_RUN.replace("exact_match", "json_fields"),
            ":1: fields: must be a JSON object of the expected fields, got list",
        ),
        (_lines({"prompt": "p"}), GRPO_RUN.replace("exact_match", "python_tests"), ":1: tests: missing"),
    ],
    ids=["same", "list", "number", "10MB", "BOM", "empty", "role", "answer", "fields", "tests"],
)
def test_a_bad_preference_or_grpo_row_is_refused_at_its_line(
    campaign: Campaign, data: bytes, method: str, said: str
) -> None:
    with pytest.raises(TunedeckError) as caught:
        _prepare(campaign, data, method)
    assert said in one_line(caught.value)


def test_crlf_and_a_blank_last_line_read_as_the_same_rows(campaign: Campaign) -> None:
    plain = _prepare(campaign, _lines(PAIR, {**PAIR, "prompt": "q"})).train_rows
    crlf = _prepare(campaign, _lines(PAIR, {**PAIR, "prompt": "q"}).replace(b"\n", b"\r\n") + b"\r\n").train_rows
    assert [(r.prompt, r.chosen, r.rejected) for r in crlf] == [(r.prompt, r.chosen, r.rejected) for r in plain]


@pytest.mark.parametrize("empty", ["", "  \n "])
def test_an_empty_chosen_answer_is_refused(campaign: Campaign, empty: str) -> None:
    with pytest.raises(DatasetError, match=r":1: chosen: "):
        _prepare(campaign, _lines({**PAIR, "chosen": empty}))


def test_a_torn_last_line_of_a_dataset_is_named_not_dropped(campaign: Campaign) -> None:
    with pytest.raises(TunedeckError, match=r"d\.jsonl:2: not valid JSON"):  # a truncated copy, not a crash in flight
        _prepare(campaign, _lines(PAIR) + b'{"prompt": "p", "cho')


@pytest.mark.parametrize("where", ["absolute", "dotdot"])
def test_a_dataset_outside_the_campaign_is_read_where_the_path_says(
    campaign: Campaign, tmp_path: Path, where: str
) -> None:
    """By design: datasets are inputs only read (a shared datasets folder lives outside any campaign),
    unlike a reward module or a tree, which are code or decisions and must live inside it."""
    outside = write_jsonl(tmp_path / "outside.jsonl", [PAIR, {**PAIR, "prompt": "q"}])
    path = str(outside) if where == "absolute" else os.path.relpath(outside, campaign.root)
    run = campaign.run("r").root
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.toml").write_text(f'dataset = "{path}"\nmethod = "dpo"\n')
    prepared = prepare_run(campaign, "r")
    assert [row.prompt for row in prepared.train_rows + prepared.eval_rows] == [PAIR["prompt"], "q"]


# -- a user's reward module: its failures are one line naming the file ----------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "campaign"
    path.mkdir()
    (path / "campaign.toml").write_text('name = "c"\n')
    return path


def _user_rewards(root: Path, source: str) -> RewardSet:
    (root / "mine.py").write_text(source)
    return RewardSet(GrpoMethod.model_validate({"name": "grpo", "rewards": [{"fn": "mine:f"}]}), root)


ROWS = [
    PromptRow(lineno=1, fields={"answer": "a"}, prompt="p"),
    PromptRow(lineno=2, fields={"answer": "b"}, prompt="q"),
]


@pytest.mark.parametrize(
    ("source", "said"),
    [
        (
            "def f(completions, **kw):\n    raise RuntimeError('boom')\n",
            "mine.py:2: reward mine:f raised: RuntimeError: boom",
        ),
        ("def f(completions, **kw):\n    return [1.0]\n", "mine.py: reward mine:f returned 1 values for 2 completions"),
        ("def f(completions, **kw):\n    return None\n", "mine.py: reward mine:f returned NoneType, not a list"),
        ("def f(completions, **kw):\n    return 1.0\n", "returned float, not a list of numbers"),
        ("def f(completions, **kw):\n    return ['good', 'bad']\n", "returned 'good' for completion 0: a finite"),
        ("def f(completions, **kw):\n    return ['1.5', '1']\n", "returned '1.5' for completion 0"),
        ("def f(completions, **kw):\n    return [1.0, float('inf')]\n", "returned 'inf' for completion 1"),
        ("def f(completions, prompts):\n    return [1.0, 1.0]\n", "raised: TypeError: "),
        ("import not_a_module_xyz\ndef f(completions, **kw):\n    return []\n", "mine.py:1: loading mine.py failed"),
    ],
)
def test_a_broken_user_reward_fails_in_one_line_naming_its_file(root: Path, source: str, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _user_rewards(root, source).score(["a", "b"], ROWS)
    assert said in one_line(caught.value)


def test_a_user_module_that_exits_at_import_fails_the_run_not_the_worker(root: Path) -> None:
    # SystemExit is no Exception: before, it escaped the worker's failure record and ended it with status 3.
    with pytest.raises(ConfigError, match=r"mine.py:1: loading mine.py failed: SystemExit: 3"):
        _user_rewards(root, "raise SystemExit(3)\ndef f(completions, **kw):\n    return []\n")


def test_none_nan_and_bools_are_rewards_and_reserved_row_fields_do_not_collide(root: Path) -> None:
    rewards = _user_rewards(root, "def f(completions, prompts, answer, **kw):\n    return [None, True]\n")
    rows = [PromptRow(lineno=1, fields={"answer": "a", "completions": "x", "prompts": "y"}, prompt="p"), ROWS[1]]
    scored = rewards.score(["a", "b"], rows)[0]
    assert scored[0] != scored[0]  # NaN: no reward for this one
    assert scored[1] == 1.0


def test_a_user_module_through_a_symlinked_package_out_of_the_campaign_is_refused(
    campaign: Campaign, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "rw.py").write_text("def f(completions, **kw):\n    return [0.0] * len(completions)\n")
    (campaign.root / "pkg").symlink_to(outside)
    write_jsonl(campaign.root / "datasets" / "g.jsonl", grpo_rows(8, seed=1))
    run_toml = campaign.root / "hostile.toml"
    run_toml.write_text('dataset = "datasets/g.jsonl"\n' + GRPO.replace("exact_match", "pkg.rw:f"))
    done = tunedeck_here("run", str(run_toml), "--campaign", str(campaign.root))
    assert done.returncode == 2, done.stderr
    assert "method.rewards.0.fn: pkg/rw.py leads outside the campaign folder" in one_line(done.stderr)
    assert not (campaign.root / "runs" / "hostile").exists()


@pytest.mark.parametrize(
    ("method", "said"),
    [
        ('[method]\nname = "dpo"\nloss_weights = [1.0, -5]\n', ":4: method.loss_weights.1: "),
        (GRPO + "weight = 0\n", "method.rewards: every reward has weight 0"),
        (GRPO.replace("exact_match", "absent:f"), "method.rewards.0.fn: no module 'absent' in the campaign folder"),
        (GRPO.replace("exact_match", "broken:f"), "method.rewards.0.fn: broken.py is not valid Python"),
    ],
    ids=["negative-loss-weight", "zero-rewards", "missing-module", "syntax-error"],
)
def test_tunedeck_run_refuses_these_before_any_worker(campaign: Campaign, method: str, said: str) -> None:
    write_jsonl(campaign.root / "datasets" / "g.jsonl", grpo_rows(8, seed=1))
    write_jsonl(campaign.root / "datasets" / "p.jsonl", [PAIR, {**PAIR, "prompt": "q"}])
    (campaign.root / "broken.py").write_text("def f(completions, **kw):\n    return [\n")
    dataset = "p" if "dpo" in method else "g"
    run_toml = campaign.root / "hostile.toml"
    run_toml.write_text(f'dataset = "datasets/{dataset}.jsonl"\n{method}[train]\nbatch_size = 4\n')
    done = tunedeck_here("run", str(run_toml), "--campaign", str(campaign.root))
    assert done.returncode == 2, done.stderr
    assert said in one_line(done.stderr)
    assert not (campaign.root / "runs" / "hostile").exists()


@pytest.mark.slow
def test_a_reward_that_raises_in_the_worker_fails_the_run_with_one_line(tmp_path: Path, tiny_model: Path) -> None:
    camp = Campaign.create(tmp_path / "campaign", "trl", base=str(tiny_model))
    write_jsonl(camp.root / "datasets" / "g.jsonl", grpo_rows(16, seed=1))
    (camp.root / "mine.py").write_text("def f(completions, **kw):\n    return {}['missing']\n")
    run_dir = camp.run("boom").root
    run_dir.mkdir(parents=True)
    reward = GRPO.replace("exact_match", "mine:f")
    (run_dir / "run.toml").write_text(f'dataset = "datasets/g.jsonl"\n{reward}[train]\nbatch_size = 4\nmax_steps = 2\n')
    process = worker(run_dir)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2, stderr
    said = "mine.py:2: reward mine:f raised: KeyError: 'missing'"
    assert said in one_line(stderr.strip().splitlines()[-1])
    assert "Traceback" not in stderr
    done = tunedeck_here("status", "boom", "--campaign", str(camp.root), "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["state"] == "failed"
    assert said in one_line(status["reason"])


# -- [judge] settings: refused before anything is generated or paid for ---------------------------

JUDGE_HEAD = 'name = "x"\n[judge]\nweights = { voice = 1 }\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (f'api_key = "{SECRET}"\n', ":6: judge.api_key: refused: a key written in a file"),
        (f'api_key_env = "{SECRET}"\n', ":6: judge.api_key_env: names the environment variable holding the key"),
        ('base_url = "ftp://x"\n', "judge.base_url: an http:// or https:// address with a host"),
        ('base_url = "http://"\n', "judge.base_url: an http:// or https:// address with a host"),
        (f'base_url = "https://me:{SECRET}@judge.example/v1"\n', "judge.base_url: holds credentials"),
        ("concurrency = 0\n", ":6: judge.concurrency: Input should be greater than or equal to 1"),
        ("concurrency = 10000\n", ":6: judge.concurrency: Input should be less than or equal to 256"),
        ("max_tokens = 0\n", ":6: judge.max_tokens: Input should be greater than 0"),
        ("max_tokens = 100\nrejudge_max_tokens = 50\n", ":7: judge.rejudge_max_tokens: a re-judge of a cut"),
        ("price_input_per_mtok = -3\n", ":6: judge.price_input_per_mtok: Input should be greater than or equal"),
        ('rubric = "../rubric.md"\n', ":6: judge.rubric: a file inside the campaign folder"),
        ('rubric = "/etc/passwd"\n', ":6: judge.rubric: a file inside the campaign folder"),
    ],
)
def test_a_hostile_judge_section_is_one_line_that_never_echoes_a_secret(extra: str, said: str) -> None:
    text = (
        JUDGE_HEAD.replace('base_url = "http://127.0.0.1:9/v1"\n', "") if extra.startswith("base_url") else JUDGE_HEAD
    )
    with pytest.raises(ConfigError) as caught:
        validate_toml(Path("campaign.toml"), text + extra, CampaignConfig)
    assert said in one_line(caught.value)
    assert SECRET not in str(caught.value)


def test_judge_weights_that_overflow_or_have_no_name_are_refused() -> None:
    for weights, said in (
        ("{ voice = 1e308, b = 1e308 }", r"at most 1e\+06"),
        ('{ "" = 1 }', "a component needs a name"),
    ):
        with pytest.raises(ConfigError, match=said):
            validate_toml(Path("campaign.toml"), f'name = "x"\n[judge]\nweights = {weights}\n', CampaignConfig)


def _judge_campaign(campaign: Campaign, url: str, extra: str = "") -> Campaign:
    with open(campaign.root / "campaign.toml", "a", encoding="utf-8") as handle:
        handle.write(
            "[judge]\nweights = { voice = 25, rhetorical = 20, historical = 20, position = 20, integrity = 15 }\n"
            f'base_url = "{url}"\nmodel = "judge-test"\napi_key_env = "{KEY_ENV}"\nbackoff_s = 0.01\nretries = 1\n'
            f"timeout_s = 3\n{extra}"
        )
    run = campaign.run("r1").root
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.toml").write_text('dataset = "datasets/none.jsonl"\n')
    return Campaign.open(campaign.root)


def _suite(campaign: Campaign, cases: list[str]) -> Path:
    rows = [{"task_id": f"t{i:02d}", "category": "c", "prompt": f"Speak. case: {case}"} for i, case in enumerate(cases)]
    return write_jsonl(campaign.root / "suites" / "madison.jsonl", rows)


def test_bench_judge_with_the_key_variable_unset_refuses_before_generating(campaign: Campaign) -> None:
    camp = _judge_campaign(campaign, "http://127.0.0.1:9/v1")
    suite = _suite(camp, ["ok"])
    done = tunedeck_here(
        "bench", "judge", "r1", "--suite", str(suite), "--checkpoint", "0", "--campaign", str(camp.root)
    )
    assert done.returncode == 2
    assert f"campaign.toml: judge.api_key_env: the environment variable {KEY_ENV}" in one_line(done.stderr)
    assert not (camp.run("r1").root / STATE_DIR).exists()  # nothing generated
    assert not list((camp.root / ".tunedeck").glob("*.sock")) if (camp.root / ".tunedeck").exists() else True


def test_bench_judge_with_a_key_written_in_campaign_toml_refuses_without_showing_it(campaign: Campaign) -> None:
    with open(campaign.root / "campaign.toml", "a", encoding="utf-8") as handle:
        handle.write(f'[judge]\nweights = {{ voice = 1 }}\nbase_url = "http://127.0.0.1:9/v1"\napi_key = "{SECRET}"\n')
    suite = _suite(campaign, ["ok"])
    done = tunedeck_here("bench", "judge", "r1", "--suite", str(suite), "--campaign", str(campaign.root))
    assert done.returncode == 2
    assert "judge.api_key: refused" in one_line(done.stderr)
    assert SECRET not in done.stderr + done.stdout


# -- the rubric file ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "said"),
    [
        (lambda root, out: None, NotFoundError, "the [judge] rubric file does not exist"),
        (lambda root, out: (root / "rubric.md").mkdir(), ConfigError, "judge.rubric: not a file"),
        (lambda root, out: (root / "rubric.md").symlink_to(out), ConfigError, "judge.rubric: leads outside the"),
        (
            lambda root, out: (root / "rubric.md").write_bytes(b""),
            ConfigError,
            "judge.rubric: the rubric file is empty",
        ),
        (lambda root, out: (root / "rubric.md").write_bytes(b"\xff\xfe score"), ConfigError, "judge.rubric: not UTF-8"),
        (lambda root, out: (root / "rubric.md").write_text("x" * 300_000), ConfigError, "over 262,144 bytes"),
    ],
    ids=["missing", "directory", "symlink-out", "empty", "not-utf8", "huge"],
)
def test_a_bad_rubric_file_is_one_line(root: Path, tmp_path: Path, make: Any, error: type, said: str) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("a file outside the campaign")
    make(root, outside)
    config = JudgeConfig.model_validate({"weights": WEIGHTS, "rubric": "rubric.md"})
    with pytest.raises(error) as caught:
        load_rubric(root, config)
    assert said in one_line(caught.value)


# -- the judge misbehaving over HTTP -------------------------------------------------------------


def _verdict(**scores: Any) -> str:
    return json.dumps({**dict.fromkeys(COMPONENTS, 7), **scores})


CONTENT = {
    "eleven": _verdict(voice=11),
    "negative": _verdict(voice=-3),
    "nan_text": _verdict(voice="NaN"),
    "huge_number": _verdict(voice=1e308),
    "text8": _verdict(voice="8"),
    "text8of10": _verdict(voice="8/10"),
    "five_mb": _verdict(justification="x" * 5_000_000),
}
RETRY_AFTER = {"retry_past": "Wed, 21 Oct 2015 07:28:00 GMT", "retry_garbage": "soon", "retry_nan": "nan"}


class HostileJudge(JudgeServer):
    """tests/judge_server.py's server with answers a real server or proxy has been seen to give."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.refuse_after: int | None = None  # answer 401 to every request after this many
        self.down = False  # answer 503 to everything

    def __enter__(self) -> HostileJudge:
        super().__enter__()
        return self

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                match = _CASE.search(body["messages"][-1]["content"])
                case = match.group(1) if match else "ok"
                auth = self.headers.get("Authorization")
                attempt = server._begin(case, auth, int(body.get("max_tokens") or 0))
                try:
                    self.behave(case, attempt, auth)
                finally:
                    server._end()

            def send(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def chat(self, content: str | None, usage: Any = None) -> None:
                choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                used = usage if usage is not None else {"prompt_tokens": 50, "completion_tokens": 20}
                self.send(200, json.dumps({"choices": [choice], "usage": used}).encode())

            def behave(self, case: str, attempt: int, auth: str | None) -> None:
                if server.down:
                    return self.send(503, b'{"error": "overloaded"}')
                if case == "unauthorized" or (
                    server.refuse_after is not None and server.requests > server.refuse_after
                ):
                    return self.send(401, json.dumps({"error": f"invalid key: {auth}"}).encode())
                if case in CONTENT:
                    return self.chat(CONTENT[case])
                if case == "nonjson":
                    return self.send(200, b"<html>502 bad gateway</html>")
                if case == "always_503":
                    return self.send(503, b'{"error": "overloaded"}')
                if case == "slow_ok":
                    time.sleep(0.6)
                    return self.chat(_verdict())
                if case == "nochoices":
                    return self.send(200, b'{"choices": []}')
                if case == "nullcontent":
                    return self.chat(None)
                if case == "bad_usage":
                    return self.chat(_verdict(), usage={"prompt_tokens": "many", "completion_tokens": -4})
                if case in RETRY_AFTER and attempt == 1:
                    return self.send(429, b'{"error": "slow down"}', {"Retry-After": RETRY_AFTER[case]})
                if case == "hangup" and attempt == 1:
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b'{"choices": [')
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return None
                if case == "drip":  # headers at once, then a byte every 0.2 s: never a read timeout
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    for _ in range(300):
                        try:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                        except OSError:
                            return None
                        time.sleep(0.2)
                    return None
                return self.chat(_verdict())

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                return

        return Handler


def _task(case: str, task_id: str | None = None) -> Task:
    record = {"task_id": task_id or case, "prompt": f"case: {case}", "expected": ""}
    row = parse_suite_row(record, default_bench="madison", path=Path("suite.jsonl"), line=1)
    return Task(row, 0, 0, "Fellow citizens, the answer.", 10.0)


def _judge_config(url: str, **settings: Any) -> JudgeConfig:
    values = {"weights": WEIGHTS, "base_url": url, "model": "m", "backoff_s": 0.01, "retries": 1, "timeout_s": 2}
    return JudgeConfig.model_validate(values | settings)


@pytest.fixture(scope="module")
def hostile() -> tuple[HostileJudge, dict[str, dict[str, Any]], float]:
    """Every hostile case judged once through one server."""
    import tempfile

    cases = [*CONTENT, *RETRY_AFTER, "nonjson", "nochoices", "nullcontent", "bad_usage", "hangup", "drip", "ok"]
    log = Path(tempfile.mkdtemp()) / "judged.jsonl"
    with HostileJudge() as server:
        config = _judge_config(server.url)
        began = time.monotonic()
        results, _ = asyncio.run(
            judge_tasks(config, SECRET, load_rubric(log.parent, config), [_task(c) for c in cases], log)
        )
        took = time.monotonic() - began
    return server, {key.split("\t")[1]: value for key, value in results.items()}, took


@pytest.mark.parametrize("case", ["eleven", "negative", "nan_text", "huge_number"])
def test_a_score_off_the_rubrics_scale_is_a_judge_error_never_a_number(hostile: Any, case: str) -> None:
    _, results, _ = hostile
    result = results[case]
    assert result["error"] is not None
    assert "score" not in result  # never a 0, never an inf
    assert "scores" not in result
    assert result["paid"] is True  # the judge answered: a resume does not pay again


def test_a_component_given_as_text_is_read() -> None:
    names = sorted(COMPONENTS)
    assert parse_verdict(CONTENT["text8"], names).scores["voice"] == 8.0
    assert parse_verdict(CONTENT["text8of10"], names).scores["voice"] == 8.0
    with pytest.raises(VerdictError, match=r"voice = 11 is outside the rubric's 0-10"):
        parse_verdict(CONTENT["eleven"], names, scale=(0.0, 10.0))


def test_text_scores_judged_over_http(hostile: Any) -> None:
    _, results, _ = hostile
    assert results["text8"]["scores"]["voice"] == 8.0
    assert results["text8of10"]["scores"]["voice"] == 8.0


def test_a_five_megabyte_answer_is_an_error_not_a_stall(hostile: Any) -> None:
    _, results, _ = hostile
    assert "characters, over 1,048,576: not read" in results["five_mb"]["error"]


def test_a_huge_pathological_answer_is_parsed_in_bounded_time() -> None:
    began = time.monotonic()
    for text in ("{" * 200_000, "word { " * 100_000):
        with pytest.raises(VerdictError):
            parse_verdict(text, sorted(COMPONENTS))
    assert time.monotonic() - began < 8.0  # json-repair alone took 21 s on the first one


def test_a_dripping_server_times_out_on_the_whole_request(hostile: Any) -> None:
    server, results, took = hostile
    assert "timeout talking to" in results["drip"]["error"]
    assert results["drip"]["paid"] is False  # nothing came back: a resume asks again
    assert server.per_case["drip"] == 2  # retries = 1
    assert took < 30  # two tries of timeout_s = 2 each, not 300 drips of 0.2 s


@pytest.mark.parametrize("case", ["nonjson", "nochoices"])
def test_a_body_that_is_no_chat_answer_is_a_judge_error(hostile: Any, case: str) -> None:
    _, results, _ = hostile
    assert results[case]["error"] is not None
    assert "score" not in results[case]


def test_null_content_is_judged_again_then_an_error(hostile: Any) -> None:
    server, results, _ = hostile
    assert "no JSON object" in results["nullcontent"]["error"]
    assert server.per_case["nullcontent"] == 2


def test_garbage_usage_costs_nothing_and_breaks_nothing(hostile: Any) -> None:
    _, results, _ = hostile
    assert results["bad_usage"]["error"] is None
    assert (results["bad_usage"]["tokens_in"], results["bad_usage"]["tokens_out"]) == (0, 0)


@pytest.mark.parametrize("case", [*RETRY_AFTER, "hangup"])
def test_odd_retry_after_values_and_a_dropped_connection_are_retried(hostile: Any, case: str) -> None:
    server, results, _ = hostile
    assert results[case]["error"] is None
    assert server.per_case[case] == 2


def test_retry_after_is_read_and_capped() -> None:
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_s("soon") is None
    assert retry_after_s("-5") == 0.0
    config = _judge_config("http://127.0.0.1:9/v1")
    client = JudgeClient(config, None)
    asked = httpx.Response(429, headers={"Retry-After": "1e9"})
    assert client._wait(0, asked) == MAX_WAIT_S  # not 31 years
    asyncio.run(client.__aexit__())


def test_an_echoed_key_in_an_error_body_is_cut_out(tmp_path: Path) -> None:
    with HostileJudge() as server:
        config = _judge_config(server.url)
        rubric = load_rubric(tmp_path, config)
        with pytest.raises(JudgeStopped) as caught:
            asyncio.run(judge_tasks(config, SECRET, rubric, [_task("unauthorized")], tmp_path / "judged.jsonl"))
    assert server.authorizations == [f"Bearer {SECRET}"]  # one request: a 401 is not retried
    said = one_line(caught.value)
    assert 'HTTP 401: {"error": "invalid key: Bearer ***"}' in said
    assert SECRET not in said


# -- judge_suite: a judge that fails half-way keeps what was paid and what was there --------------


def _generate(campaign: Campaign) -> Any:
    """What the bench worker writes: one completion per row and sample (no model needed to judge)."""

    def generate(ref: ModelRef, suite: Path, samples: int) -> Path:
        out = campaign.root / "generated.jsonl"
        rows = [json.loads(line) for line in suite.read_text().splitlines()]
        records = [
            {"bench": r["bench"], "task_id": r["task_id"], "sample": s, "completion": "Sir, ...", "latency_ms": 5.0}
            for r in rows
            for s in range(samples)
        ]
        return write_jsonl(out, records)

    return generate


def _judge(camp: Campaign, suite: Path, **options: Any) -> Any:
    return judge_suite(camp, "r1", suite, checkpoint=0, generate=_generate(camp), env={KEY_ENV: SECRET}, **options)


@pytest.fixture
def judging(campaign: Campaign) -> Iterator[tuple[Campaign, HostileJudge, Path]]:
    with HostileJudge() as server:
        camp = _judge_campaign(campaign, server.url, "concurrency = 1\n")
        yield camp, server, _suite(camp, ["ok"] * 8)


def test_a_401_half_way_stops_keeps_the_old_bench_file_and_resumes_without_paying_twice(
    judging: tuple[Campaign, HostileJudge, Path],
) -> None:
    camp, server, suite = judging
    first = _judge(camp, suite)
    assert first.judged == 8
    old = bench_file(camp, "r1@0", "madison").read_bytes()
    server.refuse_after = server.requests + 5  # the key is revoked after 5 more judgements
    with pytest.raises(JudgeStopped) as caught:
        _judge(camp, suite, repeats=2)
    said = one_line(caught.value)
    assert "campaign.toml: judge.api_key_env: the judge answered HTTP 401" in said
    assert "Nothing written; 5 judgements kept for a resume" in said
    assert SECRET not in said
    assert server.requests == 8 + 6  # stopped at the first 401: not 16 refusals
    assert bench_file(camp, "r1@0", "madison").read_bytes() == old  # the good rows were not replaced by errors
    server.refuse_after = None
    before = server.requests
    again = _judge(camp, suite, repeats=2)
    assert (again.resumed, again.judged, again.errors) == (5, 16, 0)
    assert server.requests - before == 11  # only what was not judged yet
    rows = [json.loads(line) for line in bench_file(camp, "r1@0", "madison").read_text().splitlines()]
    assert sorted((r["task_id"], r["sample"]) for r in rows) == sorted(
        (f"t{i:02d}", s) for i in range(8) for s in (0, 1)
    )
    for path in camp.root.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_a_judge_that_answers_nothing_replaces_nothing(judging: tuple[Campaign, HostileJudge, Path]) -> None:
    camp, server, suite = judging
    _judge(camp, suite)
    old = bench_file(camp, "r1@0", "madison").read_bytes()
    server.down = True
    with pytest.raises(JudgeStopped, match=r"judge.base_url: the judge answered none of 8 requests \(HTTP 503"):
        _judge(camp, suite, repeats=1)
    assert bench_file(camp, "r1@0", "madison").read_bytes() == old
    assert list((camp.run("r1").root / STATE_DIR).glob("*/completions.jsonl"))  # generation is not paid again


def test_two_judgings_of_the_same_answers_at_once_pay_once(campaign: Campaign) -> None:
    with HostileJudge(latency_s=0.3) as server:
        camp = _judge_campaign(campaign, server.url, "concurrency = 1\n")
        suite = _suite(camp, ["ok"] * 4)
        outcome: dict[str, Any] = {}
        first = threading.Thread(target=lambda: outcome.update(first=_judge(camp, suite)))
        first.start()
        try:
            wait = time.monotonic() + 10
            while server.requests == 0 and time.monotonic() < wait:
                time.sleep(0.02)
            with pytest.raises(LockHeld, match=r"another bench judge of r1@0 with this suite is running"):
                _judge(camp, suite)
        finally:
            first.join(timeout=30)
        assert outcome["first"].judged == 4
        assert server.requests == 4


# -- bench import --format judged ------------------------------------------------------------------


@pytest.fixture
def judged_campaign(tmp_path: Path) -> Campaign:
    created = Campaign.create(tmp_path / "campaign", "judged")
    with open(created.root / "campaign.toml", "a", encoding="utf-8") as handle:
        handle.write("[judge]\nweights = { voice = 25, integrity = 15 }\n")
    return Campaign.open(created.root)


VERDICT = {"voice": 8, "integrity": 6}


def _import(camp: Campaign, lines: list[dict[str, Any]]) -> tuple[int, dict[str, Any] | None, str]:
    path = write_jsonl(camp.root.parent / "judged.jsonl", lines)
    done = tunedeck_here("bench", "import", str(path), "--run", "r1", "--format", "judged", "--bench", "b",
                         "--campaign", str(camp.root), "--json")  # fmt: skip
    return done.returncode, json.loads(done.stdout) if done.stdout else None, done.stderr


def _bench_rows(camp: Campaign) -> list[dict[str, Any]]:
    return [json.loads(line) for line in bench_file(camp, "r1", "b").read_text().splitlines()]


def test_a_task_id_that_is_an_object_is_named_as_such(judged_campaign: Campaign) -> None:
    code, out, _ = _import(judged_campaign, [{"id": {"x": 1}, **VERDICT}, {"id": "b", **VERDICT}])
    assert code == 0
    assert out is not None
    assert out["reasons"] == [
        f"{judged_campaign.root.parent}/judged.jsonl:1: id: must be a non-empty string or an integer"
    ]


def test_a_sample_and_a_repeat_never_collide(judged_campaign: Campaign) -> None:
    # (sample 1, repeat 0) and (sample 0, repeat 1) both became sample 1: the second was dropped.
    lines = [
        {"id": "a", "sample": 1, "repeat": 0, **VERDICT},
        {"id": "a", "sample": 0, "repeat": 1, "voice": 2, "integrity": 2},
    ]
    code, out, _ = _import(judged_campaign, lines)
    assert code == 0
    assert out is not None
    assert (out["rows"], out["skipped"]) == (2, 0)
    rows = _bench_rows(judged_campaign)
    assert sorted((r["answer"], r["repeat"], r["score"]) for r in rows) == [(0, 1, 2.0), (1, 0, 7.25)]


def test_the_same_judgement_twice_keeps_the_first_and_says_so(judged_campaign: Campaign) -> None:
    lines = [{"id": "a", **VERDICT}, {"id": "a", "sample": 0, "repeat": 0, "voice": 1, "integrity": 1}]
    code, out, _ = _import(judged_campaign, lines)
    assert code == 0
    assert out is not None
    assert out["skipped"] == 1
    assert [r["score"] for r in _bench_rows(judged_campaign)] == [7.25]


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ({"id": "a", "repeat": 1000, **VERDICT}, ":1: repeat: must be an integer from 0 to 999, got 1000"),
        ({"id": "a", "sample": 10**7, **VERDICT}, ":1: sample: must be an integer from 0 to 2147482"),
        ({"id": "a", "sample": -1, **VERDICT}, ":1: sample: must be an integer from 0 to"),
    ],
)
def test_a_file_of_only_bad_lines_is_refused_and_the_old_rows_stay(
    judged_campaign: Campaign, line: dict[str, Any], said: str
) -> None:
    assert _import(judged_campaign, [{"id": "kept", **VERDICT}])[0] == 0
    before = bench_file(judged_campaign, "r1", "b").read_bytes()
    code, _, err = _import(judged_campaign, [line])
    assert code == 2
    assert said in one_line(err)
    assert bench_file(judged_campaign, "r1", "b").read_bytes() == before


def test_a_megabyte_verdict_and_a_huge_number_import_as_judge_errors_quickly(judged_campaign: Campaign) -> None:
    lines: list[dict[str, Any]] = [
        {"id": "prose", "judge": "x" * 1_000_000 + json.dumps(VERDICT)},
        {"id": "braces", "judge": "{" * 200_000},
        {"id": "overflow", "voice": 1e308, "integrity": 1e308},
    ]
    began = time.monotonic()
    code, out, err = _import(judged_campaign, lines)
    assert code == 0, err
    assert time.monotonic() - began < 10  # 18 s before
    rows = {r["task_id"]: r for r in _bench_rows(judged_campaign)}
    assert rows["prose"]["score"] == 7.25
    for task in ("braces", "overflow"):
        assert rows[task]["score"] is None
        assert rows[task]["error"].startswith("judge error: ")
    text = bench_file(judged_campaign, "r1", "b").read_text()
    assert "Infinity" not in text  # the file stays JSON


def test_rows_the_judge_never_answered_are_judged_again_alone(campaign: Campaign) -> None:
    with HostileJudge() as server:
        camp = _judge_campaign(campaign, server.url, "concurrency = 1\n")  # retries = 1: two tries a request
        suite = _suite(camp, ["ok", "ok", "ok", "always_503"])
        first = _judge(camp, suite)
        assert (first.judged, first.errors) == (3, 1)
        assert list((camp.run("r1").root / STATE_DIR).glob("*/judged.jsonl"))  # kept for the unanswered one
        before = server.requests
        again = _judge(camp, suite)
        assert server.requests - before == 2  # the failing row's two tries, nothing else paid again
        assert (again.resumed, again.judged, again.errors) == (3, 3, 1)
    rows = [json.loads(line) for line in bench_file(camp, "r1@0", "madison").read_text().splitlines()]
    assert [r["error"] is None for r in rows] == [True, True, True, False]


@pytest.mark.parametrize("task", [{"a": 1}, ["x"], "", True, 1.5])
def test_a_task_that_is_no_name_is_refused_at_its_line(campaign: Campaign, task: Any) -> None:
    rows = [{"prompt": "p", "answer": "a", "task": "extraction"}, {"prompt": "q", "answer": "b", "task": task}]
    write_jsonl(campaign.root / "datasets" / "grpo.jsonl", rows)
    run = campaign.run("g").root
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.toml").write_text(
        'dataset = "datasets/grpo.jsonl"\n[method]\nname = "grpo"\n[[method.rewards]]\nfn = "exact_match"\n'
    )
    with pytest.raises(DatasetError, match=r"grpo\.jsonl:2: task: must be a task name"):
        prepare_run(campaign, "g")


def test_a_task_may_be_absent_or_a_number(campaign: Campaign) -> None:
    rows: list[dict[str, Any]] = [{"prompt": "p", "answer": "a", "task": 3}, {"prompt": "q", "answer": "b"}]
    write_jsonl(campaign.root / "datasets" / "grpo.jsonl", rows)
    run = campaign.run("g").root
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.toml").write_text(
        'dataset = "datasets/grpo.jsonl"\n[method]\nname = "grpo"\n[[method.rewards]]\nfn = "exact_match"\n'
    )
    assert len(prepare_run(campaign, "g").train_rows) + len(prepare_run(campaign, "g").eval_rows) == 2


def test_answers_in_flight_when_judging_stops_are_kept_not_paid_twice(campaign: Campaign) -> None:
    with HostileJudge() as server:
        camp = _judge_campaign(campaign, server.url, "concurrency = 4\n")
        cases = ["slow_ok", "slow_ok", "slow_ok", "unauthorized", "ok", "ok"]
        suite = _suite(camp, cases)
        with pytest.raises(JudgeStopped, match="judge.api_key_env"):
            _judge(camp, suite)  # the 401 comes back while three slow answers are on their way
        assert server.requests == 4  # nothing sent once the 401 came: the three slow ones were already out
        logs = list((camp.run("r1").root / STATE_DIR).glob("*/judged.jsonl"))
        kept = [json.loads(line) for line in logs[0].read_text().splitlines()]
        # Answered (and billed) after the stop: logged, so the resume does not pay for them again.
        assert {"t00", "t01", "t02"} <= {record["key"].split("\t")[1] for record in kept}
        assert all(record["paid"] and record.get("error") is None for record in kept)
        assert len(kept) == server.requests - 1  # every answer the judge gave (all but the 401) is kept


def test_a_dataset_byte_that_is_not_utf8_is_named_at_its_line(campaign: Campaign) -> None:
    text = _lines(PAIR) + b'{"prompt": "p\xe9", "chosen": "a", "rejected": "b"}\n'
    with pytest.raises(TunedeckError, match=r"d\.jsonl:2: not UTF-8 text: byte 0xe9 at column 14"):
        _prepare(campaign, text)


def test_a_dataset_with_u2028_inside_a_string_is_one_line(campaign: Campaign) -> None:
    row = {**PAIR, "prompt": "line\u2028separator"}
    prepared = _prepare(campaign, (json.dumps(row, ensure_ascii=False) + "\n").encode() + _lines(PAIR))
    assert "line\u2028separator" in [r.prompt for r in prepared.train_rows + prepared.eval_rows]
