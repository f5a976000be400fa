"""``bench import``: other tools' real result files become canonical rows under bench/<ref>/.

The files in tests/data/bench_formats are shaped like what lm-evaluation-harness, EvalPlus and
openai/human-eval write (see the README there); bad-input variants are made from them here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.api import BenchImportSummary
from engine.bench.formats.lm_eval import task_from_filename
from engine.bench.importer import import_results
from engine.bench.store import bench_file
from engine.errors import ImportFormatError, RunNameError
from engine.store.campaign import Campaign

DATA = Path(__file__).parent / "data" / "bench_formats"
GSM8K = DATA / "samples_gsm8k_2024-06-11T15-58-21.429806.jsonl"
ARC = DATA / "samples_arc_easy_2024-06-11T16-02-07.118240.jsonl"
LM_EVAL_RESULTS = DATA / "results_2024-06-11T15-58-21.429806.json"
EVALPLUS = DATA / "Qwen--Qwen2.5-Coder-1.5B-Instruct_vllm_temp_0.8.eval_results.json"
EVALPLUS_OLD = DATA / "old_mbpp_eval_results.json"
HUMAN_EVAL = DATA / "humaneval_samples.jsonl_results.jsonl"
HUMAN_EVAL_EXAMPLE = DATA / "example_samples.jsonl_results.jsonl"
ROWS = DATA / "rows.jsonl"


@pytest.fixture
def camp(tmp_path: Path) -> Campaign:
    return Campaign.create(tmp_path / "c", "c")


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def totals(summary: BenchImportSummary) -> dict[str, tuple[int, int]]:
    return {name: (t.total, t.passed) for name, t in summary.benches.items()}


def copy(src: Path, tmp_path: Path, name: str | None = None) -> Path:
    dest = tmp_path / (name or src.name)
    shutil.copyfile(src, dest)
    return dest


# --- each format, detected automatically ---------------------------------------------------


def test_lm_eval_two_filters_become_two_benches(camp: Campaign) -> None:
    summary = import_results(camp, GSM8K, "qwen.base")
    assert summary.format == "lm-eval"
    # The first filter in file order keeps the task's name; the other is named after its filter.
    assert totals(summary) == {"gsm8k": (4, 2), "gsm8k.flexible-extract": (4, 3)}
    assert summary.rows == 8
    assert summary.skipped == 0
    assert summary.reasons == []
    rows = read_rows(bench_file(camp, "qwen.base", "gsm8k"))
    assert [r["task_id"] for r in rows] == ["0", "1", "2", "3"]
    assert rows[0] == {
        "run": "qwen.base",
        "bench": "gsm8k",
        "task_id": "0",
        "passed": True,
        "error": None,
        "score": 1.0,
        "scores": None,
        "sample": 0,
        "latency_ms": None,
    }
    # The payloads (doc, arguments, resps) stay in lm-eval's file.
    assert all(
        set(r) <= {"run", "bench", "task_id", "passed", "error", "score", "scores", "sample", "latency_ms"}
        for r in rows
    )


def test_lm_eval_first_listed_metric_decides(camp: Campaign) -> None:
    summary = import_results(camp, ARC, "qwen.base")
    # acc (listed first) decides, not acc_norm: docs 0 and 2 pass.
    assert totals(summary) == {"arc_easy": (3, 2)}
    rows = read_rows(bench_file(camp, "qwen.base", "arc_easy"))
    assert [(r["passed"], r["score"]) for r in rows] == [(True, 1.0), (False, 0.0), (True, 1.0)]


def test_lm_eval_task_name_from_file_name() -> None:
    assert task_from_filename(GSM8K) == "gsm8k"
    assert task_from_filename(Path("samples_leaderboard_bbh_boolean_expressions_2024-06-11T15-58-21.jsonl")) == (
        "leaderboard_bbh_boolean_expressions"
    )
    assert task_from_filename(Path("my_gsm8k_log.jsonl")) == "my_gsm8k_log"


def test_lm_eval_aggregate_results_are_refused_with_what_to_pass(camp: Campaign) -> None:
    with pytest.raises(ImportFormatError) as caught:
        import_results(camp, LM_EVAL_RESULTS, "qwen.base")
    message = str(caught.value)
    assert message.startswith(str(LM_EVAL_RESULTS))
    assert "samples_" in message
    assert "--log_samples" in message
    assert "\n" not in message
    with pytest.raises(ImportFormatError, match="--log_samples"):
        import_results(camp, LM_EVAL_RESULTS, "qwen.base", fmt="lm-eval")


def test_evalplus_base_and_plus_benches(camp: Campaign) -> None:
    summary = import_results(camp, EVALPLUS, "coder")
    assert summary.format == "evalplus"
    # Sample 0 decides: HumanEval/4's first solution passes base but fails plus.
    assert totals(summary) == {"humaneval": (4, 3), "humaneval+": (4, 2)}
    assert summary.rows == 24
    assert summary.skipped == 0
    plus = {(r["task_id"], r["sample"]): r for r in read_rows(bench_file(camp, "coder", "humaneval+"))}
    assert plus["HumanEval/0", 0]["passed"] is True
    assert plus["HumanEval/0", 0]["error"] is None
    # A plus failure names the failing input (EvalPlus writes NaN inputs as bare NaN).
    assert plus["HumanEval/0", 1]["error"] == "fail (plus): [[[NaN, 1.0, 2.5], 0.5]]"
    # A base failure fails plus too, with the base tests' reason.
    assert plus["HumanEval/0", 2]["error"].startswith("fail (base): [[[1.0, 2.0, 3.9")
    assert plus["HumanEval/3", 2]["error"] == "timeout (base)"
    assert "def has_close_elements" in plus["HumanEval/0", 0]["completion"]
    base = read_rows(bench_file(camp, "coder", "humaneval"))
    assert [r["sample"] for r in base if r["task_id"] == "HumanEval/2"] == [0, 1, 2]


def test_evalplus_old_shape(camp: Campaign) -> None:
    summary = import_results(camp, EVALPLUS_OLD, "coder")
    assert totals(summary) == {"mbpp": (3, 2), "mbpp+": (3, 1)}
    rows = {(r["task_id"], r["sample"]): r for r in read_rows(bench_file(camp, "coder", "mbpp+"))}
    assert rows["Mbpp/2", 0]["error"] == "fail (plus): 1 of 3 tests run failed"
    assert rows["Mbpp/4", 0]["error"] == "timeout (base)"


def test_evalplus_base_only_has_no_plus_bench(camp: Campaign, tmp_path: Path) -> None:
    doc = json.loads(EVALPLUS.read_text(encoding="utf-8"))
    for entries in doc["eval"].values():
        for entry in entries:
            entry["plus_status"], entry["plus_fail_tests"] = None, []
    path = tmp_path / "base_only.eval_results.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    summary = import_results(camp, path, "coder")
    assert totals(summary) == {"humaneval": (4, 3)}
    assert summary.skipped == 0


def test_evalplus_unknown_status_skips_that_sample(camp: Campaign, tmp_path: Path) -> None:
    doc = json.loads(EVALPLUS.read_text(encoding="utf-8"))
    doc["eval"]["HumanEval/2"][0]["base_status"] = "crashed"
    doc["eval"]["HumanEval/4"][1]["plus_status"] = "error"
    path = tmp_path / "x_eval_results.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    summary = import_results(camp, path, "coder")
    assert summary.skipped == 2
    assert summary.reasons[0].startswith(f"{path}: HumanEval/2[0].base_status: unknown status 'crashed'")
    assert summary.reasons[1].startswith(f"{path}: HumanEval/4[1].plus_status: unknown status 'error'")
    # HumanEval/2's first sample is gone, so its sample 1 (a pass) decides.
    assert totals(summary) == {"humaneval": (4, 3), "humaneval+": (4, 2)}
    assert summary.rows == 24 - 2 - 1


def test_human_eval_samples_in_file_order(camp: Campaign) -> None:
    summary = import_results(camp, HUMAN_EVAL, "coder")
    assert summary.format == "human-eval"
    assert totals(summary) == {"humaneval": (4, 2)}
    rows = read_rows(bench_file(camp, "coder", "humaneval"))
    assert [(r["task_id"], r["sample"]) for r in rows[:4]] == [
        ("HumanEval/0", 0),
        ("HumanEval/0", 1),
        ("HumanEval/0", 2),
        ("HumanEval/1", 0),
    ]
    errors = [r["error"] for r in rows]
    assert errors[0] is None
    assert errors[1] == "failed: "
    assert errors[7] == "timed out"
    assert errors[5] == "failed: name 'groups' is not defined"
    assert rows[0]["completion"].startswith("    for i, a in enumerate(numbers)")


def test_human_eval_non_humaneval_task_ids(camp: Campaign, tmp_path: Path) -> None:
    summary = import_results(camp, HUMAN_EVAL_EXAMPLE, "coder")
    # human-eval's own example: six samples of "test/0", the first one failed.
    assert totals(summary) == {"test": (1, 0)}
    assert summary.rows == 6
    lines = [json.loads(line) for line in HUMAN_EVAL.read_text(encoding="utf-8").splitlines()]
    mixed = tmp_path / "mixed_results.jsonl"
    renamed = [{**line, "task_id": line["task_id"].replace("HumanEval/", "MBPP/")} for line in lines[:3]]
    bare = [{**line, "task_id": "fib"} for line in lines[3:5]]
    mixed.write_text("".join(json.dumps(line) + "\n" for line in renamed + bare), encoding="utf-8")
    assert totals(import_results(camp, mixed, "coder")) == {"mbpp": (1, 1), "human-eval": (1, 0)}


def test_tunedeck_rows_take_the_run_given(camp: Campaign) -> None:
    summary = import_results(camp, ROWS, "bd6.8d@100")
    assert summary.format == "tunedeck"
    assert summary.run == "bd6.8d@100"
    assert totals(summary) == {"voice": (2, 1), "reverse": (2, 1)}
    rows = read_rows(bench_file(camp, "bd6.8d@100", "voice"))
    assert {r["run"] for r in rows} == {"bd6.8d@100"}
    assert rows[0]["scores"] == {"voice": 8.5, "rhetorical": 9.0}
    assert rows[0]["category"] == "persuasion"


# --- options, summary, re-import -----------------------------------------------------------


def test_bench_override(camp: Campaign) -> None:
    assert totals(import_results(camp, GSM8K, "r1", bench="math")) == {"math": (4, 2), "math.flexible-extract": (4, 3)}
    assert totals(import_results(camp, EVALPLUS, "r1", bench="he")) == {"he": (4, 3), "he+": (4, 2)}
    assert totals(import_results(camp, HUMAN_EVAL, "r1", bench="he-raw")) == {"he-raw": (4, 2)}
    with pytest.raises(ImportFormatError, match="--bench"):
        import_results(camp, GSM8K, "r1", bench="../escape")


def test_reimport_replaces_rows(camp: Campaign) -> None:
    first = import_results(camp, HUMAN_EVAL, "coder")
    before = [path.read_bytes() for path in first.files]
    second = import_results(camp, HUMAN_EVAL, "coder")
    assert second.files == first.files
    assert [path.read_bytes() for path in second.files] == before
    assert len(read_rows(first.files[0])) == 12
    assert sorted(p.name for p in first.files[0].parent.iterdir()) == ["humaneval.jsonl"]


def test_summary_json(camp: Campaign) -> None:
    out = import_results(camp, EVALPLUS, "coder").model_dump(mode="json")
    assert out["run"] == "coder"
    assert out["format"] == "evalplus"
    assert out["rows"] == 24
    assert out["benches"] == {"humaneval": {"total": 4, "passed": 3}, "humaneval+": {"total": 4, "passed": 2}}
    assert out["skipped"] == 0
    assert out["reasons"] == []
    assert out["path"] == str(EVALPLUS)
    assert len(out["files"]) == 2
    json.dumps(out)


def test_explicit_format(camp: Campaign) -> None:
    assert import_results(camp, HUMAN_EVAL, "r1", fmt="human-eval").format == "human-eval"
    # human-eval lines are valid tunedeck rows once a bench is given.
    assert import_results(camp, HUMAN_EVAL, "r2", fmt="tunedeck", bench="he").format == "tunedeck"
    with pytest.raises(ImportFormatError, match="--format evalplus does not fit") as caught:
        import_results(camp, HUMAN_EVAL, "r1", fmt="evalplus")
    assert str(caught.value).startswith(str(HUMAN_EVAL))
    with pytest.raises(ImportFormatError, match="--format lm-eval does not fit"):
        import_results(camp, EVALPLUS, "r1", fmt="lm-eval")
    with pytest.raises(ImportFormatError, match="unknown format"):
        import_results(camp, HUMAN_EVAL, "r1", fmt="csv")


def test_run_must_be_a_ref(camp: Campaign) -> None:
    with pytest.raises(RunNameError):
        import_results(camp, HUMAN_EVAL, "../x")
    assert not (camp.root / "bench").exists()


# --- bad input: skip that line, say why, import the rest -----------------------------------


def test_torn_last_line_is_skipped_with_reason(camp: Campaign, tmp_path: Path) -> None:
    path = copy(GSM8K, tmp_path)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"doc_id": 4, "doc": {"question": "Every day, Wendi feeds each of her chick')
    summary = import_results(camp, path, "r1")
    assert summary.skipped == 1
    assert summary.reasons == [f"{path}:9: torn last line (not valid JSON: the writer was probably killed mid-line)"]
    assert totals(summary) == {"gsm8k": (4, 2), "gsm8k.flexible-extract": (4, 3)}


def test_bare_nan_is_reported_not_imported(camp: Campaign, tmp_path: Path) -> None:
    lines = HUMAN_EVAL.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[4] = lines[4].replace('"passed": true', '"passed": NaN')
    path = tmp_path / "nan_results.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    summary = import_results(camp, path, "r1")
    assert summary.reasons == [f"{path}:5: passed: bare NaN is not a JSON number; line skipped"]
    assert summary.rows == 11
    # The line still used up its completion id: HumanEval/1 keeps samples 0 and 2.
    rows = read_rows(bench_file(camp, "r1", "humaneval"))
    assert [r["sample"] for r in rows if r["task_id"] == "HumanEval/1"] == [0, 2]

    metric = copy(ARC, tmp_path)
    text = metric.read_text(encoding="utf-8").replace('"acc": 0.0', '"acc": NaN')
    metric.write_text(text, encoding="utf-8")
    summary = import_results(camp, metric, "r1")
    assert summary.reasons == [f"{metric}:2: acc: bare NaN is not a JSON number; line skipped"]
    assert totals(summary) == {"arc_easy": (2, 2)}


def test_bad_lines_in_the_middle(camp: Campaign, tmp_path: Path) -> None:
    lines = ROWS.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(1, "not json\n")
    lines.insert(2, "[1, 2]\n")
    lines.insert(3, '{"bench": "voice", "task_id": "v9"}\n')
    lines.append(lines[0])  # the same task and sample twice
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    summary = import_results(camp, path, "r1")
    assert summary.skipped == 4
    assert summary.rows == 5
    assert summary.reasons[0].startswith(f"{path}:2: not valid JSON")
    assert summary.reasons[1] == f"{path}:3: expected a JSON object, got list"
    assert summary.reasons[2] == f"{path}:4: passed: expected true or false, got None"
    assert summary.reasons[3].startswith(f"{path}:9: task_id: 'v1' sample 0 is already in bench 'voice'")


def test_lm_eval_missing_metric_and_doc_id(camp: Campaign, tmp_path: Path) -> None:
    lines = [json.loads(line) for line in ARC.read_text(encoding="utf-8").splitlines()]
    del lines[0]["acc"]
    del lines[1]["doc_id"]
    path = tmp_path / ARC.name
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    summary = import_results(camp, path, "r1")
    assert summary.reasons == [
        f"{path}:1: acc: expected a finite number, got None",
        f"{path}:2: doc_id: missing or not an integer: None",
    ]
    assert totals(summary) == {"arc_easy": (1, 1)}


# --- files in no format --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("notes.txt", "accuracy went up\nthen down\n", "no JSON object found"),
        ("empty.jsonl", "\n\n", "empty file"),
        ("other.jsonl", '{"prompt": "hi", "response": "hello"}\n', "found an object with keys prompt, response"),
        ("samples.jsonl", '{"task_id": "HumanEval/0", "completion": "    return 1"}\n', "evaluate them first"),
    ],
)
def test_file_in_no_format(camp: Campaign, tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ImportFormatError) as caught:
        import_results(camp, path, "r1")
    message = str(caught.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message
    assert not (camp.root / "bench").exists()


def test_no_valid_row_is_an_error(camp: Campaign, tmp_path: Path) -> None:
    path = tmp_path / "all_bad_results.jsonl"
    path.write_text('{"task_id": "HumanEval/0", "completion": "", "result": "passed", "passed": "yes"}\n')
    with pytest.raises(ImportFormatError) as caught:
        import_results(camp, path, "r1")
    first = f"{path}:1: passed: expected true or false, got 'yes'"
    assert str(caught.value) == f"{path}: no valid human-eval row to import (1 skipped; first: {first})"
    assert not (camp.root / "bench").exists()


def test_gzipped_file(camp: Campaign, tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "samples.jsonl_results.jsonl.gz"
    path.write_bytes(gzip.compress(HUMAN_EVAL.read_bytes()))
    assert totals(import_results(camp, path, "r1")) == {"humaneval": (4, 2)}


@pytest.mark.parametrize("src", [GSM8K, ARC, EVALPLUS, EVALPLUS_OLD, HUMAN_EVAL, ROWS, LM_EVAL_RESULTS])
def test_cut_anywhere_never_a_traceback(camp: Campaign, tmp_path: Path, src: Path) -> None:
    """A file cut at any byte (a killed writer) imports what is whole or fails with one clear line."""
    data = src.read_bytes()
    for i, cut in enumerate(range(1, len(data), max(1, len(data) // 23))):
        path = tmp_path / f"{i}_{src.name}"
        path.write_bytes(data[:cut])
        message = ""
        try:
            summary = import_results(camp, path, "r1")
        except ImportFormatError as exc:
            message = str(exc)
        if message:
            assert message.startswith(str(path))
            assert "\n" not in message
        else:
            assert summary.rows > 0
            assert all(reason.startswith(str(path)) for reason in summary.reasons)


def test_an_import_into_a_known_run_is_an_event_on_its_stream(camp: Campaign, tmp_path: Path) -> None:
    """The Compare screen refreshes on a run's bench events: an import made in another terminal is one."""
    rows = [{"task_id": "t1", "bench": "b", "passed": True}, {"task_id": "t2", "bench": "b", "passed": False}]
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = camp.run("r1").root
    run.mkdir(parents=True)
    (run / "run.toml").write_text('dataset = "d.jsonl"\n')
    import_results(camp, source, "r1@300")
    import_results(camp, source, "ledger-only")  # no run folder: results only, no folder made for it
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert [(e["event"], e["ref"], e["rows"], e["format"]) for e in events] == [
        ("bench_import", "r1@300", 2, "tunedeck")
    ]
    assert not camp.run("ledger-only").root.exists()
