"""run.toml's method and [method] table, and the refusals of a preference or GRPO run before any worker starts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.errors import ConfigError, DatasetError
from engine.runs.launch import PreparedRun, prepare_run
from engine.store.campaign import Campaign
from engine.store.config import RunConfig, validate_toml
from engine.store.datasets import PreferenceRow, PromptRow
from engine.store.method_config import DpoMethod, GrpoMethod, SftMethod
from tests.helpers import grpo_rows, preference_rows, tunedeck, write_jsonl

DATA = Path(__file__).parent / "data" / "trl"
GRPO = '[method]\nname = "grpo"\n[[method.rewards]]\nfn = "exact_match"\n'


def parse(text: str) -> RunConfig:
    return validate_toml(Path("run.toml"), text, RunConfig)


def refusal(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return str(caught.value)


def test_method_as_a_name_or_a_table_with_per_method_defaults() -> None:
    assert parse("").method == SftMethod()
    dpo = parse('method = "dpo"').method
    assert isinstance(dpo, DpoMethod)
    assert dpo.loss_type == ["sigmoid", "sft"]  # the SFT-regularised mix keeps generation quality
    assert parse('[method]\nname = "dpo"\nloss_type = "ipo"\nbeta = 0.3').method == DpoMethod(
        loss_type=["ipo"], beta=0.3
    )
    grpo = parse(GRPO + "[method.eval]\nevery_steps = 25\n").method
    assert isinstance(grpo, GrpoMethod)
    assert (grpo.num_generations, grpo.beta, grpo.scale_rewards, grpo.eval and grpo.eval.every_steps) == (
        4,
        0.0,
        "group",
        25,
    )
    assert parse('method = "kto"').method.name == "kto"
    assert parse('method = "cpo"').method.name == "cpo"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[method]\nname = "dpo"\nnum_generations = 4', "run.toml:3: method.num_generations: unknown field"),
        ('[method]\nname = "orpo"\nbeat = 0.1', "run.toml:3: method.beat: unknown field"),
        ('method = "ppo"', "run.toml:1: method: unknown method 'ppo': one of sft, dpo, orpo, grpo, kto, cpo"),
        ("[method]\nbeta = 0.1", 'run.toml:1: method: the [method] table needs name = "..."'),
        ('[method]\nname = "dpo"\nloss_type = "sigmod"', "run.toml:3: method.loss_type.0: Input should be"),
        ('[method]\nname = "grpo"', "run.toml: method.rewards: required field is missing"),
        (GRPO.replace("exact_match", "exact"), "run.toml:4: method.rewards.0.fn: unknown reward 'exact': one of"),
        (GRPO + "pattern = 'x'", "run.toml:5: method.rewards.0.pattern: not an option of exact_match"),
        (
            GRPO + "[[method.rewards]]\nfn = 'exact_match'\n",
            "two rewards log as 'exact_match': give one of them a name",
        ),
        (GRPO.replace('"exact_match"', '"../up:f"'), "a user's reward is 'module:function'"),
        ('method = "dpo"\n[kl]\nlambda = 0.1', "run.toml:3: kl.lambda: applies to sft runs only (use method.beta)"),
        ('method = "orpo"\n[weights]\ndefault = 2.0', "run.toml:3: weights.default: per-row loss weights apply to sft"),
    ],
)
def test_a_bad_method_table_is_one_line_at_its_key(text: str, said: str) -> None:
    message = refusal(text)
    assert said in message
    assert "\n" not in message


# --- prepare_run: the dataset of the method, checked before any worker ------------------------


@pytest.fixture
def campaign(tmp_path: Path) -> Campaign:
    """A campaign whose base is a stub model folder (prepare_run checks only that it has config.json)."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    camp = Campaign.create(tmp_path / "campaign", "trl", base=str(base))
    write_jsonl(camp.root / "datasets" / "pref.jsonl", preference_rows(8, seed=1))
    write_jsonl(camp.root / "datasets" / "grpo.jsonl", grpo_rows(8, seed=1))
    for name in ("bad_preference.jsonl", "grpo_missing_column.jsonl"):
        shutil.copy(DATA / name, camp.root / "datasets" / name)
    shutil.copy(DATA / "my_rewards.py", camp.root / "my_rewards.py")
    return camp


def prepared(campaign: Campaign, text: str, name: str = "r") -> PreparedRun:
    run = campaign.run(name).root
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.toml").write_text(text)
    return prepare_run(campaign, name)


def test_preference_and_grpo_rows_are_read_as_their_method_needs(campaign: Campaign) -> None:
    dpo = prepared(campaign, 'dataset = "datasets/pref.jsonl"\nmethod = "dpo"\n')
    first = dpo.train_rows[0]
    assert isinstance(first, PreferenceRow)
    want = preference_rows(1, seed=1)[0]
    assert (first.prompt, first.chosen, first.rejected, first.lineno) == (
        want["prompt"],
        want["chosen"],
        want["rejected"],
        1,
    )
    grpo = prepared(
        campaign, 'dataset = "datasets/grpo.jsonl"\neval_fraction = 0.25\n' + GRPO + "[train]\nbatch_size = 8\n"
    )
    assert len(grpo.train_rows) == 6
    assert len(grpo.eval_rows) == 2
    assert all(isinstance(r, PromptRow) and r.fields["answer"] for r in grpo.train_rows)


@pytest.mark.parametrize(
    ("text", "error", "said"),
    [
        (
            'dataset = "datasets/bad_preference.jsonl"\nmethod = "dpo"\n',
            DatasetError,
            "bad_preference.jsonl:2: rejected: missing",
        ),
        (
            'dataset = "datasets/grpo_missing_column.jsonl"\n' + GRPO,
            DatasetError,
            "grpo_missing_column.jsonl:2: answer: missing (a reward function of this run reads it)",
        ),
        (
            'dataset = "datasets/grpo.jsonl"\n' + GRPO.replace("exact_match", "json_fields") + 'column = "answer"\n',
            DatasetError,
            "grpo.jsonl:1: answer: must be a JSON object of the expected fields, got str",
        ),
        ('dataset = "datasets/pref.jsonl"\n' + GRPO, DatasetError, "pref.jsonl:1: answer: missing"),
        (
            'dataset = "datasets/grpo.jsonl"\n' + GRPO.replace("exact_match", "my_rewards:nope"),
            ConfigError,
            "method.rewards.0.fn: my_rewards.py defines no function 'nope' at top level",
        ),
        (
            'dataset = "datasets/grpo.jsonl"\n' + GRPO + "[train]\nbatch_size = 6\n",
            ConfigError,
            "train.batch_size: batch_size x grad_accum x gpus = 6 completions",
        ),
    ],
    ids=["preference-row", "grpo-column", "json-column", "sft-rows-for-grpo", "user-function", "generations"],
)
def test_bad_rows_and_rewards_are_refused_by_prepare_run(campaign: Campaign, text: str, error: type, said: str) -> None:
    with pytest.raises(error) as caught:
        prepared(campaign, text)
    assert said in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_user_module_reached_through_a_symlink_out_of_the_campaign_is_refused(
    campaign: Campaign, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("def f(completions, **kw):\n    return [0.0] * len(completions)\n")
    (campaign.root / "linked.py").symlink_to(outside)
    with pytest.raises(ConfigError, match=r"method.rewards.0.fn: linked.py leads outside the campaign folder"):
        prepared(campaign, 'dataset = "datasets/grpo.jsonl"\n' + GRPO.replace("exact_match", "linked:f"))


# --- the same refusals through the real CLI: exit 2, one line, no worker, nothing written ---------


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('dataset = "datasets/bad_preference.jsonl"\nmethod = "dpo"\n', "bad_preference.jsonl:2: rejected: missing"),
        ('dataset = "datasets/grpo_missing_column.jsonl"\n' + GRPO, "grpo_missing_column.jsonl:2: answer: missing"),
        ('dataset = "datasets/pref.jsonl"\n[method]\nname = "dpo"\nbetta = 0.2\n', ":4: method.betta: unknown field"),
        (
            'dataset = "datasets/grpo.jsonl"\n' + GRPO.replace("exact_match", "rouge"),
            ":5: method.rewards.0.fn: unknown reward 'rouge'",
        ),
        (
            'dataset = "datasets/grpo.jsonl"\n' + GRPO.replace("exact_match", "outside:f"),
            "method.rewards.0.fn: outside.py leads outside",
        ),
    ],
    ids=["preference-row", "grpo-column", "method-key", "reward-name", "user-module-outside"],
)
def test_tunedeck_run_refuses_before_any_worker_starts(
    campaign: Campaign, tmp_path: Path, text: str, said: str
) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("def f(completions, **kw):\n    return [0.0] * len(completions)\n")
    (campaign.root / "outside.py").symlink_to(outside)
    run_toml = campaign.root / "hostile.toml"
    run_toml.write_text(text)
    done = tunedeck("run", str(run_toml), "--campaign", str(campaign.root), timeout=60)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert not (campaign.root / "runs" / "hostile").exists()
    assert not (campaign.root / ".tunedeck").exists() or not list((campaign.root / ".tunedeck").glob("*.sock"))
