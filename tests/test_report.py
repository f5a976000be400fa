"""``tunedeck report``: the campaign as Markdown in the seeds' style, through the real CLI.

The expected cells are typed from the seed write-ups (000: BD6.8D2 over-tuned, 003: Foundry
training results), not read from the sessions' files, so a change to the rows, the averaging or
the report that moves a figure fails here. Every table of every report is checked for shape.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from engine.api import CampaignReport, GateSummary, RegistryEntry
from engine.report.sections_scores import abbreviations
from engine.report.tables import render_table, table
from tests.helpers import tunedeck

SESSIONS = Path(__file__).resolve().parent.parent / "sessions"

# Seed 000, "Headline result" and "Per-row v8b table": the anchors each run fails (BD6 pass-1: none).
ANCHORS = [
    "MBPP/17", "MBPP/19", "MBPP/20", "MBPP/41", "MBPP/51", "MBPP/52", "MBPP/53",
    "MBPP/64", "MBPP/90", "MBPP/93", "MBPP/96", "MBPP/99", "MBPP/105",
    "HumanEval/23", "HumanEval/27", "HumanEval/34", "HumanEval/45", "HumanEval/53", "HumanEval/85",
]  # fmt: skip
FAILED = {
    "bd6": set(),
    "bd6.5": {"MBPP/53", "HumanEval/34", "HumanEval/45", "HumanEval/85"},
    "bd6.8d": {"HumanEval/27", "HumanEval/34", "HumanEval/45", "HumanEval/85"},
    "bd6.8d2": {"MBPP/53", "HumanEval/23", "HumanEval/27", "HumanEval/34", "HumanEval/45", "HumanEval/85"},
}
DECODER_NOISE = {"HumanEval/34", "HumanEval/45"}  # "decoder-noise (BD6.8F+ proven)"

# Seed 003, "Score Progression": ref -> (Dataset, Pairs, Raw, Corrected, Date); None: "—" or "N/A".
PROGRESSION = {
    "dpo-v1": ("v1", "200", None, None, "2026-03-24"),
    "orpo-v3b": ("v3b", "475", "3.41", "4.10", "2026-03-26"),
    "orpo-v4-gguf": ("v4", "1,273", "1.74", None, "2026-03-27"),
    "orpo-v4-bf16": ("v4", "1,273", "7.69", "8.52", "2026-03-28"),
    "orpo-v4-lora": ("v4", "1,273", "8.17", None, "2026-03-29"),
    "qwen3-v1": ("v4", "1,273", "8.80", "8.81", "2026-03-29"),
    "qwen3-v2": ("v4", "1,273", "8.65", "8.82", "2026-03-30"),
    "qwen3-v3": ("v4", "1,273", "7.84", "7.84", "2026-03-30"),
    "qwen3-v4": ("v4", "1,273", "8.30", "8.30", "2026-03-30"),
    "qwen3-v4@150": ("v4", "1,273", "6.83", None, "2026-03-30"),
    "sft-v1": ("SFT", "510", "2.03", "2.00", "2026-03-30"),  # the seed writes 2.0
    "sft-v2": ("SFT", "510", "2.19", "2.20", "2026-03-30"),  # and 2.2
    "qwen3-r2": ("v6", "1,498", "8.51", "8.97", "2026-03-31"),
}
# Corrected figures the seed states without bench rows behind them: the ledger's, marked †.
CORRECTED_FROM_LEDGER = {"orpo-v3b", "orpo-v4-bf16", "qwen3-v3", "qwen3-v4", "sft-v1", "sft-v2"}
# Seed 003, "Category Scores (Raw)": ref -> Overall, AT, CC, GT, PD, PV, VR, Crit. Failures.
RAW_CATEGORIES = {
    "orpo-v3b": "3.41 1.40 2.83 3.56 1.75 2.84 6.40 24",
    "orpo-v4-gguf": "1.74 1.04 2.85 1.46 1.67 1.60 2.06 27",
    "orpo-v4-bf16": "7.69 9.12 7.65 6.72 9.47 5.52 7.82 6",
    "orpo-v4-lora": "8.17 9.52 6.95 8.78 9.63 7.00 6.97 11",
    "qwen3-v1": "8.80 9.40 9.20 8.77 9.42 8.74 7.82 7",
    "qwen3-v2": "8.65 9.40 8.95 9.05 9.45 6.72 8.22 11",
    "qwen3-v3": "7.84 9.48 6.28 7.88 9.40 7.16 6.83 12",
    "qwen3-v4@150": "6.83 8.94 5.40 6.99 7.28 6.00 6.24 18",
    "qwen3-v4": "8.30 9.36 8.95 6.90 9.50 8.30 7.83 10",
    "sft-v1": "2.03 1.52 1.70 2.77 0.43 2.72 2.54 29",
    "sft-v2": "2.19 1.30 1.12 2.26 1.47 2.72 3.43 30",
    "qwen3-r2": "8.51 9.44 9.45 6.78 9.27 8.72 8.47 9",
}
# "Corrected Category Scores (Qwen 3 runs only)": Overall, AT, CC, GT, PD, PV, VR.
CORRECTED_CATEGORIES = {
    "qwen3-v1": "8.81 9.36 9.19 8.75 9.38 8.75 7.96",
    "qwen3-v2": "8.82 9.35 9.06 9.02 9.42 7.84 8.32",
    "qwen3-r2": "8.97 9.39 9.41 8.85 9.25 8.75 8.53",
}
LEGEND = (
    "AT=anachronism_trap, CC=character_consistency, GT=ground_truth, PD=position_discrimination, "
    "PV=private_voice, VR=verified_response"
)


# -- reading the Markdown back -------------------------------------------------------------


def cells(line: str) -> list[str]:
    """The cells of one table line, an escaped ``\\|`` kept inside its cell."""
    assert line.startswith("|"), line
    assert line.endswith("|"), line
    parts = re.findall(r"((?:\\.|[^|\\])*)\|", line[1:])
    return [part.strip() for part in parts]


def tables(markdown: str) -> list[list[list[str]]]:
    """Every table of a Markdown text (header first, rule left out), each checked for shape."""
    found, block = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            widths = {len(cells(row)) for row in block}
            assert len(widths) == 1, f"rows of different widths {widths}:\n" + "\n".join(block)
            assert len(block) >= 3, "a table without rows:\n" + "\n".join(block)
            assert set("".join(cells(block[1]))) == {"-"}, block[1]
            found.append([cells(row) for index, row in enumerate(block) if index != 1])
            block = []
    return found


def section(markdown: str, title: str) -> str:
    """The text of one ``##`` section."""
    parts = re.split(r"^## ", markdown, flags=re.MULTILINE)
    matches = [part for part in parts if part.startswith(title + "\n")]
    assert len(matches) == 1, f"no section {title!r} in:\n{markdown[:2000]}"
    return matches[0]


def by_run(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    """A table as run -> header -> cell (production's label without its marker)."""
    header, *body = rows
    return {row[0].removesuffix(" (production)"): dict(zip(header, row, strict=True)) for row in body}


# -- fixtures ------------------------------------------------------------------------------


def copy_session(name: str, into: Path) -> Path:
    root = into / name
    shutil.copytree(SESSIONS / name, root, ignore=shutil.ignore_patterns(".tunedeck", "__pycache__", "decisions"))
    return root


def report(campaign: Path, *args: str, code: int = 0) -> str:
    done = tunedeck("report", "--campaign", str(campaign), *args)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def bd6_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    return report(copy_session("bd6", tmp_path_factory.mktemp("bd6")))


@pytest.fixture(scope="module")
def foundry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_session("foundry", tmp_path_factory.mktemp("foundry"))


@pytest.fixture(scope="module")
def foundry_report(foundry: Path) -> str:
    return report(foundry)


# -- bd6: the anchor table and the rejected gate --------------------------------------------


def test_bd6_report_has_the_seeds_anchor_table(bd6_report: str) -> None:
    (matrix,) = tables(section(bd6_report, "Anchor table"))
    header, *rows = matrix
    assert header == ["Anchor", "bd6", "bd6.5", "bd6.8d (production)", "bd6.8d2"]
    assert [row[0] for row in rows] == [*ANCHORS, "**passed**"]
    for anchor, *marks in rows[:-1]:
        for run, mark in zip(FAILED, marks, strict=True):
            expected = "✗" if anchor in FAILED[run] else "✓"
            noise = " ~" if anchor in DECODER_NOISE and run != "bd6" else ""
            assert mark == expected + noise, (anchor, run)
    assert rows[-1][1:] == ["**19/19**", "**15/19**", "**15/19**", "**13/19**"]


def test_bd6_report_shows_the_rejected_gate_of_bd6_8d2_with_its_reasons(bd6_report: str) -> None:
    (gates,) = tables(section(bd6_report, "Gate results"))
    row = by_run(gates)["bd6.8d2"]
    assert (row["Verdict"], row["Anchors"], row["Lost vs production"]) == ("**rejected**", "13/19", "2 (vs bd6.8d)")
    assert row["Failed rules"] == (
        "anchors 13/19: failed MBPP/53, HumanEval/23, HumanEval/27, HumanEval/34, HumanEval/45, HumanEval/85; "
        "lost 2 rows against production bd6.8d (max_lost = 0): humaneval:HumanEval/23, mbpp:MBPP/53"
    )
    assert by_run(gates)["bd6"]["Verdict"] == "passed"
    progression = by_run(tables(section(bd6_report, "Score progression"))[0])
    assert {run: (r["Anchors"], r["Gate"]) for run, r in progression.items()} == {
        "bd6": ("19/19", "passed"),
        "bd6.5": ("15/19", "**rejected**"),
        "bd6.8d": ("15/19", "**rejected**"),
        "bd6.8d2": ("13/19", "**rejected**"),
    }
    assert (progression["bd6.8d2"]["humaneval"], progression["bd6.8d2"]["mbpp"]) == ("1/6 (16.7%)", "12/13 (92.3%)")


def test_bd6_report_has_the_seeds_per_row_table_against_pass_1(bd6_report: str) -> None:
    rows_section = section(bd6_report, "Rows kept and lost")
    assert "**Per-row table: bd6.8d2 against bd6**" in rows_section
    per_row = next(t for t in tables(rows_section) if t[0] == ["Class", "Rows", "Which"])
    named = {
        klass: (count, {name.split(":")[1].removesuffix(" ~") for name in which.split(", ")})
        for klass, count, which in per_row[1:]
    }
    assert named == {"KEPT": ("13", set(ANCHORS) - FAILED["bd6.8d2"]), "LOST": ("6", FAILED["bd6.8d2"])}
    against_production = by_run(tables(rows_section)[1])["bd6.8d2"]
    assert (against_production["Lost"], against_production["Lost rows"]) == (
        "2",
        "humaneval:HumanEval/23, mbpp:MBPP/53",
    )


def test_bd6_report_quotes_a_saved_walk_and_the_registry_log(tmp_path: Path) -> None:
    bd6 = copy_session("bd6", tmp_path)
    assert tunedeck("decide", "bd6.8d2", "--campaign", str(bd6)).returncode == 0
    # A promote of the rejected candidate forced through, then reverted: the seed's flip to v8b and back.
    entries = [
        RegistryEntry(
            seq=1, time="2026-05-02T10:00:00Z", user="ana", host="box", action="promote",
            from_run="bd6.8d", from_artifact="runs/bd6.8d/merged", from_sha256=None,
            to_run="bd6.8d2", to_artifact="runs/bd6.8d2/merged", to_sha256=None,
            gate=GateSummary(verdict="failed", reasons=["anchors 13/19"], forced=True),
            reason="try v8b | see", undoes=None,
        ),
        RegistryEntry(
            seq=2, time="2026-05-02T12:00:00Z", user="ana", host="box", action="revert",
            from_run="bd6.8d2", from_artifact="runs/bd6.8d2/merged", from_sha256=None,
            to_run="bd6.8d", to_artifact="runs/bd6.8d/merged", to_sha256=None, gate=None, reason="over-tuned", undoes=1,
        ),
    ]  # fmt: skip
    (bd6 / "registry.jsonl").write_text("".join(e.model_dump_json() + "\n" for e in entries), encoding="utf-8")
    text = report(bd6)
    walks = section(text, "Decision walks")
    assert by_run(tables(walks)[0])["bd6.8d2"]["Recommendation"] == "rank-bump"
    patch = dict(row for row in tables(walks)[1][1:])
    assert (patch["lora.r"], patch["lora.alpha"]) == ("16", "32")
    log = tables(section(text, "Promote / revert history"))[0]
    assert [row[2:5] for row in log[1:]] == [
        ["promote", "bd6.8d → bd6.8d2", "rejected (forced)"],
        ["revert of #1", "bd6.8d2 → bd6.8d", "—"],
    ]
    assert log[1][-1] == "try v8b \\| see"  # a | in a reason stays inside its cell


# -- foundry: the score progression, the category table, the cost total ----------------------


def test_foundry_report_has_the_seeds_score_progression(foundry_report: str) -> None:
    (progression,) = tables(section(foundry_report, "Score progression"))
    assert progression[0] == ["Run", "Base", "Dataset", "Pairs", "Raw", "Corrected", "Date"]
    rows = by_run(progression)
    for ref, (dataset, pairs, raw, corrected, date) in PROGRESSION.items():
        row = rows[ref]
        mark = "†" if ref in CORRECTED_FROM_LEDGER else ""
        expected = (dataset, pairs, raw or "—", corrected + mark if corrected else "—", date)
        assert (row["Dataset"], row["Pairs"], row["Raw"], row["Corrected"], row["Date"]) == expected, ref
    # The seed's rows in the seed's order (the ledger's other runs fall in between by date).
    order = [r for r in rows if r in PROGRESSION]
    assert order == list(PROGRESSION)
    assert (rows["qwen3-r2"]["Base"], rows["orpo-v3b"]["Base"]) == ("Qwen/Qwen3-32B", "google/gemma-3-27b-it")
    assert "qwen3-r2 (production)" in [row[0] for row in progression]


def test_foundry_report_has_the_seeds_category_tables(foundry_report: str) -> None:
    categories = section(foundry_report, "Category scores")
    assert LEGEND in categories.splitlines()
    raw, corrected = tables(categories)
    assert raw[0] == ["Run", "Overall", "AT", "CC", "GT", "PD", "PV", "VR", "Crit. Failures"]
    assert {row[0]: " ".join(row[1:]) for row in raw[1:]} == RAW_CATEGORIES
    assert {row[0]: " ".join(row[1:-1]) for row in corrected[1:]} == CORRECTED_CATEGORIES
    assert "**Category scores (raw): madison**" in categories
    assert "**Category scores (corrected): madison-corrected**" in categories


def test_foundry_report_sums_the_declared_costs_like_status(foundry: Path, foundry_report: str) -> None:
    status = tunedeck("status", "--json", "--campaign", str(foundry))
    assert status.returncode == 0, status.stderr
    total = json.loads(status.stdout)["cost_total"]
    assert total["total_usd"] == pytest.approx(152.70)
    costs = by_run(tables(section(foundry_report, "Costs"))[0])
    assert costs["**Total**"]["Total"] == "**$152.70**"
    assert (costs["**Total**"]["Training"], costs["**Total**"]["Eval"], costs["**Total**"]["Data gen"]) == (
        "$133.00", "$9.50", "$10.20",
    )  # fmt: skip
    # Figures a run does not declare are "—", never $0.00; runs that declare nothing are not listed.
    assert (costs["orpo-v4-gguf"]["Eval"], costs["qwen3-v1"]["GPU hours"], costs["qwen3-r2"]["GPU hours"]) == (
        "—", "—", "1.29",
    )  # fmt: skip
    assert "qwen3-v4" not in costs
    assert "campaign.toml has no [gate]: nothing was gated." in section(foundry_report, "Gate results")


def test_json_is_the_report_as_data(foundry: Path, foundry_report: str) -> None:
    done = tunedeck("report", "--campaign", str(foundry), "--json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    parsed = CampaignReport.model_validate_json(done.stdout)
    assert parsed.model_dump(mode="json") == printed
    assert (parsed.campaign, parsed.production, parsed.out) == ("foundry", "qwen3-r2", None)
    assert parsed.markdown.rstrip("\n") == foundry_report.rstrip("\n")
    ids = [s.id for s in parsed.sections]
    assert ids == ["progression", "categories", "gate", "rows", "deltas", "config", "registry", "costs"]
    progression = parsed.sections[0].blocks[0]
    assert progression.kind == "table"
    assert ["qwen3-r2 (production)", "Qwen/Qwen3-32B", "v6", "1,498", "8.51", "8.97", "2026-03-31"] in progression.rows


# -- empty campaigns, --out, broken parts, table shape -------------------------------------


def test_an_empty_campaign_gets_a_short_valid_report(tmp_path: Path) -> None:
    (tmp_path / "campaign.toml").write_text('name = "empty"\n', encoding="utf-8")
    done = tunedeck("report", "--campaign", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("# empty — campaign report\n")
    assert "no runs yet, nothing in production" in done.stdout
    assert len(done.stdout.splitlines()) == 3, done.stdout
    assert tables(done.stdout) == []  # no empty tables


def test_out_writes_the_file_and_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    bd6 = copy_session("bd6", tmp_path)
    out = tmp_path / "notes" / "bd6.md"
    done = tunedeck("report", "--campaign", str(bd6), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out}: ")
    written = out.read_text(encoding="utf-8")
    assert written.startswith("# bd6 — campaign report")
    assert "## Anchor table" in written

    out.write_text("my own notes\n", encoding="utf-8")
    refused = tunedeck("report", "--campaign", str(bd6), "--out", str(out))
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"tunedeck: report not written: {out}: --out: already exists; pass --force to replace it"
    ]
    assert out.read_text(encoding="utf-8") == "my own notes\n"

    forced = tunedeck("report", "--campaign", str(bd6), "--out", str(out), "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["out"] == str(out)
    replaced = out.read_text(encoding="utf-8")
    assert replaced.startswith("# bd6 — campaign report")
    assert replaced.count("\n") == written.count("\n")
    assert [p.name for p in out.parent.iterdir()] == ["bd6.md"]  # no temporary file left behind


def test_out_never_writes_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "campaign.toml").write_text('name = "empty"\n', encoding="utf-8")
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n", encoding="utf-8")
    link = tmp_path / "report.md"
    link.symlink_to(precious)
    for extra in ([], ["--force"]):
        done = tunedeck("report", "--campaign", str(tmp_path), "--out", str(link), *extra)
        assert done.returncode == 1, done.stderr
        assert "report not written" in done.stderr
        assert "Traceback" not in done.stderr
    assert precious.read_text(encoding="utf-8") == "keep me\n"
    assert link.is_symlink()


def test_a_broken_part_is_a_note_and_the_report_still_comes(tmp_path: Path) -> None:
    bd6 = copy_session("bd6", tmp_path)
    (bd6 / "registry.jsonl").write_text('{"seq": 1, "action": "promote"}\n', encoding="utf-8")
    with (bd6 / "bench" / "bd6" / "mbpp.jsonl").open("a", encoding="utf-8") as rows:
        rows.write("this is not json\n")
    done = tunedeck("report", "--campaign", str(bd6))
    assert done.returncode == 0, done.stderr
    history = section(done.stdout, "Promote / revert history")
    assert "_registry.jsonl could not be read:" in history
    assert "registry.jsonl:1" in history
    assert "tunedeck: report: Promote / revert history: registry.jsonl could not be read" in done.stderr
    assert "mbpp.jsonl:14" in done.stderr  # the bench line skipped, named by file and line
    assert by_run(tables(section(done.stdout, "Gate results"))[0])["bd6.8d2"]["Verdict"] == "**rejected**"
    tables(done.stdout)


def test_every_table_is_well_formed(bd6_report: str, foundry_report: str) -> None:
    for text in (bd6_report, foundry_report):
        found = tables(text)  # same width on every row, a rule under the header, at least one row
        assert len(found) >= 5


def test_a_table_with_a_pipe_or_newline_in_a_cell_keeps_its_shape() -> None:
    rendered = render_table(table(["a", "b"], [["x | y", "two\nlines"], ["", "z"]]))
    assert tables(rendered) == [[["a", "b"], ["x \\| y", "two lines"], ["—", "z"]]]
    with pytest.raises(ValueError, match="row of 1 cells under 2 headers"):
        table(["a", "b"], [["only one"]])


def test_categories_are_abbreviated_as_the_seed_does_unless_two_collide() -> None:
    assert abbreviations(["anachronism_trap", "private_voice"]) == {"anachronism_trap": "AT", "private_voice": "PV"}
    assert abbreviations(["ground_truth", "good_taste"]) == {"ground_truth": "ground_truth", "good_taste": "good_taste"}
