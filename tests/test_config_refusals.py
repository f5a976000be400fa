"""campaign.toml fields tunedeck would accept and never read are refused, each with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.store.config import CampaignConfig, validate_toml
from tests.helpers import tunedeck


@pytest.mark.parametrize(
    ("body", "line", "field", "reason"),
    [
        ('production_run = "bd6.8d"', 3, "production_run", "production.json"),
        ("[benches]\nhumaneval = { samples = 3 }", 3, "benches", "not supported yet"),
        ("[benches.humaneval]\nsamples = 3", 3, "benches", "not supported yet"),
    ],
)
def test_refused_fields_name_file_line_field_and_why(body: str, line: int, field: str, reason: str) -> None:
    path = Path("campaign.toml")
    with pytest.raises(ConfigError) as caught:
        validate_toml(path, f'name = "c"\n\n{body}\n', CampaignConfig)
    error = caught.value
    assert (error.path, error.line, error.field) == ("campaign.toml", line, field)
    assert reason in error.message
    assert str(error).startswith(f"campaign.toml:{line}: {field}: ")


def test_another_unknown_field_is_still_unknown() -> None:
    with pytest.raises(ConfigError, match="unknown field"):
        validate_toml(Path("campaign.toml"), 'name = "c"\nbenchs = 1\n', CampaignConfig)


def test_the_cli_refuses_them_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "campaign.toml").write_text('name = "c"\nproduction_run = "r1"\n', encoding="utf-8")
    result = tunedeck("status", "--campaign", str(tmp_path), "--json")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{tmp_path / 'campaign.toml'}:2: production_run: " in lines[0]
    assert "production.json" in lines[0]
