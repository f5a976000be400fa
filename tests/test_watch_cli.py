"""``tunedeck watch`` post hoc on an imported trainer_state.json: every rule kind, bare NaN included."""

from __future__ import annotations

import json
from pathlib import Path

from engine.store.campaign import Campaign
from tests.helpers import REPO, tunedeck_here

RULES = """
[[watch]]
name = "grad-spike"
metric = "grad_norm"
above = 2.0
action = "stop"

[[watch]]
name = "zero-std"
metric = "frac_reward_zero_std"
above = 0.5
sustain = 3
action = "stop"

[[watch]]
name = "length-ceiling"
metric = "completions/mean_length"
at_least = 512
action = "stop"

[[watch]]
name = "eval-plateau"
metric = "eval/mean_reward"
plateau = { window = 20, min_delta = 0.005 }
before_step = 200
action = "stop"

[[watch]]
name = "loss-nonfinite"
metric = "loss"
nonfinite = true
action = "stop"

[[watch]]
name = "extraction-low"
metric = "eval/extraction"
below = 0.20
after_step = 100
action = "warn"
"""


def test_watch_reports_first_step_and_count_for_every_rule_kind(tmp_path: Path) -> None:
    campaign = Campaign.create(tmp_path / "c", "grpo")
    toml = campaign.root / "campaign.toml"
    toml.write_text(toml.read_text() + RULES)
    source = REPO / "tests" / "data" / "trainer_state" / "grpo_watch.json"
    imported = tunedeck_here("import", "trainer-state", str(source), "--run", "v4.1", "--campaign", str(campaign.root))
    assert imported.returncode == 0, imported.stderr

    done = tunedeck_here("watch", "v4.1", "--campaign", str(campaign.root), "--json")
    assert done.returncode == 0, done.stderr
    alerts = {a["rule"]: a for a in json.loads(done.stdout)["alerts"]}
    assert set(alerts) == {"grad-spike", "zero-std", "length-ceiling", "eval-plateau", "loss-nonfinite"}
    # threshold: 2.5 at step 17, 3.0 at step 40
    assert alerts["grad-spike"] == {
        "rule": "grad-spike",
        "metric": "grad_norm",
        "first_step": 17,
        "value": 2.5,
        "count": 2,
        "action": "stop",
    }
    # sustained: 20, 21 above then broken at 22; 30, 31, 32 completes three in a row
    assert (alerts["zero-std"]["first_step"], alerts["zero-std"]["count"]) == (32, 6)
    # ceiling: exactly 512 counts (at_least)
    assert (alerts["length-ceiling"]["first_step"], alerts["length-ceiling"]["count"]) == (50, 3)
    # plateau: 0.45 -> 0.452 -> 0.453 over 20 steps moves less than 0.005 at step 50, and at 60
    assert (alerts["eval-plateau"]["first_step"], alerts["eval-plateau"]["count"]) == (50, 2)
    # non-finite: a bare NaN at 45 and Infinity at 46, read from the file as logged
    assert alerts["loss-nonfinite"]["first_step"] == 45
    assert alerts["loss-nonfinite"]["value"] == "NaN"
    assert alerts["loss-nonfinite"]["count"] == 2
    # the extraction rule only looks after step 100: the run ends at 60, so it stays quiet


def test_watch_without_rules_or_alerts(tmp_path: Path) -> None:
    campaign = Campaign.create(tmp_path / "c", "quiet")
    source = REPO / "tests" / "data" / "trainer_state" / "grpo_watch.json"
    imported = tunedeck_here("import", "trainer-state", str(source), "--run", "r", "--campaign", str(campaign.root))
    assert imported.returncode == 0
    done = tunedeck_here("watch", "r", "--campaign", str(campaign.root), "--json")
    assert json.loads(done.stdout) == {"alerts": []}
    human = tunedeck_here("watch", "r", "--campaign", str(campaign.root))
    assert human.stdout.strip() == "no watch rules in campaign.toml"
    missing = tunedeck_here("watch", "ghost", "--campaign", str(campaign.root))
    assert missing.returncode == 2
    assert "no run named 'ghost'" in missing.stderr


# The same condition four times, each rule scoped differently: which fire says which scopes hold.
SCOPES = {
    "spike-here": 'runs = ["v4.*", "other"]',
    "spike-elsewhere": 'runs = ["v5*"]',
    "spike-preference-only": 'methods = ["dpo", "orpo"]',
    "spike-sft-only": 'methods = ["sft"]',
}
SCOPED = "".join(
    f'\n[[watch]]\nname = "{name}"\nmetric = "grad_norm"\nabove = 2.0\n{scope}\n' for name, scope in SCOPES.items()
)


def test_rules_watch_only_the_runs_and_methods_they_name(tmp_path: Path) -> None:
    campaign = Campaign.create(tmp_path / "c", "scoped")
    toml = campaign.root / "campaign.toml"
    toml.write_text(toml.read_text() + SCOPED)
    source = REPO / "tests" / "data" / "trainer_state" / "grpo_watch.json"
    imported = tunedeck_here("import", "trainer-state", str(source), "--run", "v4.1", "--campaign", str(campaign.root))
    assert imported.returncode == 0, imported.stderr
    done = tunedeck_here("watch", "v4.1", "--campaign", str(campaign.root), "--json")
    assert done.returncode == 0, done.stderr
    # An imported run's run.toml declares no method: it is an sft run as far as rules go.
    assert [a["rule"] for a in json.loads(done.stdout)["alerts"]] == ["spike-here", "spike-sft-only"]
    run_toml = campaign.root / "runs" / "v4.1" / "run.toml"
    run_toml.write_text('method = "dpo"\n' + run_toml.read_text())  # top-level: before any table
    as_dpo = json.loads(tunedeck_here("watch", "v4.1", "--campaign", str(campaign.root), "--json").stdout)
    assert [a["rule"] for a in as_dpo["alerts"]] == ["spike-here", "spike-preference-only"]


def test_a_misspelt_method_or_an_empty_scope_is_refused_at_its_key(tmp_path: Path) -> None:
    campaign = Campaign.create(tmp_path / "c", "scoped")
    toml = campaign.root / "campaign.toml"
    base = toml.read_text()
    for extra, said in (('methods = ["grp"]', "watch.0.methods.0"), ("runs = []", "watch.0.runs")):
        toml.write_text(base + f'\n[[watch]]\nname = "x"\nmetric = "loss"\nabove = 1\n{extra}\n')
        done = tunedeck_here("status", "--campaign", str(campaign.root))
        assert done.returncode == 2, done.stdout
        assert said in done.stderr
        assert "Traceback" not in done.stderr
