"""Suites, scorers and the sandbox, without a model: every program here really runs in a subprocess."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest

from engine.bench.sandbox import (
    Program,
    error_line,
    isolation_prefix,
    network_isolation,
    run_program,
    run_programs,
)
from engine.bench.score import (
    extract_code,
    extract_json_object,
    make_tests_program,
    score_completions,
    score_expected,
    score_json_fields,
    score_tests,
)
from engine.bench.suite import load_suite
from engine.errors import ImportFormatError, NotFoundError
from tests.helpers import processes_running, write_jsonl

# --- suites ---------------------------------------------------------------------------------


def test_a_suite_loads_every_kind_of_row(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mini.jsonl",
        [
            {"task_id": "a", "prompt": "reverse: a b\n", "expected": "b a", "category": "easy"},
            {"task_id": 7, "prompt": "def f(x):\n", "tests": "def check(f): pass", "entry_point": "f"},
            {
                "bench": "chat",
                "task_id": "a",
                "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "json?"}],
                "json_fields": {"label": "pos"},
                "timeout_s": 2,
                "max_new_tokens": 8,
                "canonical_solution": "ignored",
            },
        ],
    )
    rows = load_suite(path)
    assert [(r.bench, r.task_id, r.scorer) for r in rows] == [
        ("mini", "a", "expected"),
        ("mini", "7", "tests"),
        ("chat", "a", "json_fields"),
    ]
    assert rows[0].category == "easy"
    assert rows[1].entry_point == "f"
    assert rows[2].prompt_text == "json?"
    assert rows[2].timeout_s == 2.0
    assert rows[2].max_new_tokens == 8


@pytest.mark.parametrize(
    ("lines", "where", "message"),
    [
        ([{"prompt": "p", "expected": "x"}], ":1: task_id:", "missing"),
        ([{"task_id": "a", "expected": "x"}], ":1: prompt:", "exactly one of 'prompt'"),
        ([{"task_id": "a", "prompt": "p"}], ":1: ", "found: none"),
        ([{"task_id": "a", "prompt": "p", "expected": "x", "tests": "assert 1"}], ":1: ", "found: expected, tests"),
        ([{"task_id": "a", "prompt": "p", "expected": 3}], ":1: expected:", "must be a string"),
        ([{"task_id": "a", "prompt": "p", "json_fields": {}}], ":1: json_fields:", "non-empty object"),
        ([{"task_id": "a", "prompt": "p", "expected": "x", "entry_point": "f"}], ":1: entry_point:", "tests"),
        ([{"task_id": "a", "prompt": "p", "tests": "t", "entry_point": "no way"}], ":1: entry_point:", "identifier"),
        ([{"task_id": "a", "prompt": "p", "expected": "x", "timeout_s": -1}], ":1: timeout_s:", "> 0"),
        ([{"task_id": "a", "prompt": "p", "expected": "x", "max_new_tokens": 1.5}], ":1: max_new_tokens:", "integer"),
        ([{"task_id": "a", "prompt": "p", "expected": "x", "bench": "../x"}], ":1: bench:", "bench name"),
        (
            [{"task_id": "a", "messages": [{"role": "assistant", "content": "hi"}], "expected": "x"}],
            ":1: ",
            "must not be the assistant's",
        ),
        (
            [{"task_id": "a", "prompt": "p", "expected": "x"}, {"task_id": "a", "prompt": "q", "expected": "y"}],
            ":2: task_id:",
            "duplicate task 'a' in bench 'suite' (first on line 1)",
        ),
    ],
)
def test_every_suite_problem_names_file_line_and_field(
    tmp_path: Path, lines: list[dict[str, object]], where: str, message: str
) -> None:
    path = write_jsonl(tmp_path / "suite.jsonl", lines)
    with pytest.raises(ImportFormatError) as caught:
        load_suite(path)
    text = str(caught.value)
    assert text.startswith(f"{path}{where}"), text
    assert message in text
    assert "\n" not in text


def test_bad_json_lines_and_missing_files_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"task_id": "a", "prompt": "p", "expected": "x"}\n\n{"task_id": "b",\n')
    with pytest.raises(ImportFormatError, match=r"s\.jsonl:3: not valid JSON"):
        load_suite(path)
    with pytest.raises(NotFoundError, match="suite file not found"):
        load_suite(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ImportFormatError, match="no rows"):
        load_suite(tmp_path / "empty.jsonl")
    odd = write_jsonl(tmp_path / "has space.jsonl", [{"task_id": "a", "prompt": "p", "expected": "x"}])
    with pytest.raises(ImportFormatError, match="bench: missing, and the file name cannot serve"):
        load_suite(odd)


# --- expected and JSON fields ---------------------------------------------------------------


def test_expected_is_an_exact_match_after_strip() -> None:
    assert score_expected(" c b a\n", "c b a") == (True, None)
    passed, error = score_expected("c b", "c b a")
    assert not passed
    assert error == "expected 'c b a', got 'c b'"
    assert not score_expected("C B A", "c b a")[0]


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('Sure! Here it is:\n```json\n{"label": "pos", "n": 2}\n```\nAnything else?', {"label": "pos", "n": 2}),
        ('```\n{"k": true}\n```', {"k": True}),
        (
            'The answer is {"a": {"b": [1, {"c": "}"}]}, "d": "x{y"} as requested.',
            {"a": {"b": [1, {"c": "}"}]}, "d": "x{y"},
        ),
        ('use {braces} like {"ok": 1}', {"ok": 1}),
        ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}),
        ('{"sentiment_score": 4,5, "label": "positivo"}', {"sentiment_score": 4.5, "label": "positivo"}),
        ('{"sentiment_score": 4,5}', {"sentiment_score": 4.5}),
        ('{"score": -3,25,}', {"score": -3.25}),
        ('{"texto": "nota 4,5", "nota": 4,5}', {"texto": "nota 4,5", "nota": 4.5}),
        ('{"ids": [1,2,3], "n": 4,5}', {"ids": [1, 2, 3], "n": 4.5}),
        ('{"a": 1,"b": 2}', {"a": 1, "b": 2}),
        ("[1,2,3]", None),
        ('{"a": "line\nbreak"}', {"a": "line\nbreak"}),
        ('```json\n{"cut": "off by max_new_tokens"', None),
        ("no object at all", None),
        ("", None),
    ],
)
def test_json_extraction_is_robust(completion: str, expected: dict[str, object] | None) -> None:
    assert extract_json_object(completion) == expected


def test_a_json_fence_wins_over_an_earlier_object_in_prose() -> None:
    text = 'Format: {"label": "..."}\n```json\n{"label": "neg"}\n```'
    assert extract_json_object(text) == {"label": "neg"}


def test_json_fields_compare_values_and_name_the_first_mismatch() -> None:
    answer = '```json\n{"sentiment_score": 4,5, "label": " positivo ", "meta": {"lang": "pt", "tags": ["a"]}}\n```'
    assert score_json_fields(answer, {"sentiment_score": 4.5, "label": "positivo"}) == (True, None)
    assert score_json_fields(answer, {"sentiment_score": 4.5000001}) == (True, None)
    assert score_json_fields(answer, {"meta": {"lang": "pt"}}) == (True, None)
    assert score_json_fields(answer, {"label": "Positivo"}) == (False, 'label: expected "Positivo", got " positivo "')
    assert score_json_fields(answer, {"sentiment_score": 4}) == (False, "sentiment_score: expected 4, got 4.5")
    assert score_json_fields(answer, {"label": "positivo", "topic": "x"})[1] == (
        "topic: missing (the object has: sentiment_score, label, meta)"
    )
    assert score_json_fields(answer, {"meta": {"tags": ["b"]}}) == (False, 'meta.tags[0]: expected "b", got "a"')
    assert score_json_fields('{"n": "4.5"}', {"n": 4.5}) == (False, 'n: expected 4.5, got "4.5"')
    assert score_json_fields('{"ok": 1}', {"ok": True}) == (False, "ok: expected true, got 1")
    passed, error = score_json_fields("I think it is positive.", {"label": "pos"})
    assert not passed
    assert error is not None
    assert error.startswith("no JSON object in the completion")


# --- tests rows -----------------------------------------------------------------------------


def test_tests_programs_bind_prompt_and_completion_or_follow_humaneval() -> None:
    program = make_tests_program("reverse: a b\n", ' b a "quoted"\n', "assert True")
    assert program == "prompt = 'reverse: a b\\n'\ncompletion = ' b a \"quoted\"\\n'\nassert True\n"
    humaneval = make_tests_program("def f(x):\n", "    return x\n", "def check(c): pass", entry_point="f")
    assert humaneval == "def f(x):\n    return x\n\ndef check(c): pass\ncheck(f)\n"
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone") == "def f():\n    return 1\n"
    assert extract_code("def f(): pass") == "def f(): pass"


def test_tests_rows_pass_and_fail_with_the_assertion_message() -> None:
    assert score_tests("reverse: a b\n", " b a", 'assert completion.strip() == "b a"') == (True, None)
    assert score_tests("reverse: a b\n", "a b", 'assert completion.strip() == "b a", completion') == (
        False,
        "AssertionError: a b",
    )
    check = "def check(candidate):\n    assert candidate(2) == 3\n"
    assert score_tests("def inc(x):\n", "    return x + 1\n", check, entry_point="inc") == (True, None)
    passed, error = score_tests("def inc(x):\n", "    return x +\n", check, entry_point="inc")
    assert not passed
    assert error is not None
    assert error.startswith("SyntaxError")


def test_score_completions_keeps_order_across_scorers(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mix.jsonl",
        [
            {"task_id": "e", "prompt": "p", "expected": "x"},
            {"task_id": "t1", "prompt": "p", "tests": "assert completion == 'x'"},
            {"task_id": "j", "prompt": "p", "json_fields": {"a": 1}},
            {"task_id": "t2", "prompt": "p", "tests": "raise SystemExit(3)"},
        ],
    )
    rows = load_suite(path)
    scores = score_completions(list(zip(rows, ["x", "x", '{"a": 2}', "x"], strict=True)))
    assert scores == [(True, None), (True, None), (False, "a: expected 1, got 2"), (False, "exit status 3")]


# --- the sandbox ----------------------------------------------------------------------------


def test_an_infinite_loop_times_out_and_fails_without_hanging() -> None:
    began = time.monotonic()
    result = run_program("while True:\n    pass\n", timeout_s=1.0)
    elapsed = time.monotonic() - began
    assert result.timed_out
    assert not result.passed
    assert result.error == "timeout after 1.0 s"
    assert elapsed >= 1.0  # not cut short; how soon after 1 s it ends is in tests/perf/bench_timings.py


def test_children_die_with_a_program_that_times_out() -> None:
    marker = f"{30 + uuid.uuid4().int % 1000 / 1000:.3f}"  # a sleep length no other process uses
    source = f"import subprocess\nsubprocess.Popen(['sleep', {marker!r}])\nwhile True:\n    pass\n"
    assert run_program(source, timeout_s=1.0).timed_out
    time.sleep(0.2)
    assert processes_running(marker) == []


@pytest.mark.parametrize(
    "source",
    [
        "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)",
        "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)",
        "import _socket\n_socket.socket()",
        "import urllib.request\nurllib.request.urlopen('http://192.0.2.1/', timeout=1)",
    ],
)
def test_programs_cannot_open_sockets(source: str) -> None:
    result = run_program(source, timeout_s=5.0)
    assert not result.passed
    assert result.error is not None
    assert "network access is disabled" in result.error


def test_local_socketpairs_still_work_so_asyncio_runs() -> None:
    result = run_program("import asyncio\nasync def f():\n    return 3\nassert asyncio.run(f()) == 3\n", timeout_s=5.0)
    assert result.passed, result.error


def test_the_working_folder_is_fresh_and_removed_and_the_environment_minimal() -> None:
    source = (
        "import json, os, sys\n"
        "print(json.dumps({'cwd': os.getcwd(), 'files': os.listdir('.'), 'env': dict(os.environ),"
        " 'flags': sys.flags.isolated}))"
    )
    result = run_program(source, timeout_s=5.0)
    assert result.passed, result.error
    seen = json.loads(result.stdout)
    assert seen["files"] == []
    assert seen["flags"] == 1
    assert "tunedeck-sandbox-" in seen["cwd"]
    assert not Path(seen["cwd"]).exists()
    assert not Path(seen["cwd"]).parent.exists()
    assert set(seen["env"]) <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "LC_CTYPE"}
    assert "PYTHONPATH" not in seen["env"]


def test_memory_output_and_stdin_are_bounded() -> None:
    assert run_program("x = bytearray(3 * 1024**3)", timeout_s=10.0).error == "MemoryError"
    flood = run_program("import sys\nsys.stdout.write('x' * 30_000_000)", timeout_s=10.0)
    assert not flood.passed
    assert len(flood.stdout) <= 8192
    assert run_program("import sys\nassert sys.stdin.read() == ''", timeout_s=5.0).passed


def test_error_lines_come_from_the_traceback_or_the_signal() -> None:
    chained = "try:\n    {}['k']\nexcept KeyError:\n    raise ValueError('bad value')\n"
    assert run_program(chained, timeout_s=5.0).error == "ValueError: bad value"
    assert error_line(-9, "") == "killed (SIGKILL)"
    assert error_line(-24, "") == "CPU time limit exceeded"
    assert error_line(1, "") == "exit status 1"


def test_parallel_programs_keep_their_order_and_never_exceed_the_cpu_count() -> None:
    """How many do overlap depends on the machine's load: tests/perf/bench_timings.py prints it."""
    busy = (
        "import time\nstart = time.time()\nx = 0\n"
        "while time.time() - start < 0.4:\n    x += 1\n"
        "print(start, time.time(), {index})"
    )
    programs = [Program(busy.format(index=i), timeout_s=20.0) for i in range(6)]
    results = run_programs(programs, max_workers=64)
    assert all(r.passed for r in results), [r.error for r in results]
    intervals = []
    for index, result in enumerate(results):
        start, end, echoed = result.stdout.split()
        assert int(echoed) == index  # results come back in order
        intervals.append((float(start), float(end)))
    most = max(sum(s <= t < e for s, e in intervals) for t, _ in intervals)
    assert most <= (os.cpu_count() or 1)


def test_with_unshare_a_program_sees_no_network_interface_but_loopback() -> None:
    assert "no-socket prelude" in network_isolation()
    if not isolation_prefix():
        pytest.skip("user namespaces are not available here: the no-socket prelude is the only fence")
    result = run_program("print(open('/proc/net/dev').read())", timeout_s=5.0)
    assert result.passed, result.error
    interfaces = {line.split(":")[0].strip() for line in result.stdout.splitlines()[2:] if ":" in line}
    assert interfaces <= {"lo"}
