"""Benchmark: ``tunedeck bench diff`` on 1,000,000 canonical rows against an equivalent pandas script.

    python tests/perf/bench_diff.py [--rows N] [--repeats K] [--keep DIR] [--json] [--after-import]

Generates (fixed seed) a temporary campaign whose production run is ``base``, with ``--rows``
canonical rows in all, half for ``base`` and half for ``cand``, as ``bench/<run>/<bench>.jsonl``
(several benches, a few samples per task, pass rates of 30-60%, some lost / gained / flaky tasks,
a few tasks only one run evaluated). Then, every figure a whole process timed by wall clock:

- ``tunedeck bench diff cand --against base --json --campaign DIR`` cold: no
  ``.tunedeck/bench.duckdb``, so the process builds the DuckDB table from the files first;
- the same command warm: table built, files unchanged;
- ``tests/perf/pandas_diff.py DIR cand base``: the same diff in pandas, reading every file each time,
  with pandas' own JSON reader, and also with ``read_json(engine="pyarrow")`` when pyarrow is installed.

Before timing, the outputs of tunedeck and pandas must agree (every class as a set and in order,
flaky rows, per-bench totals, McNemar p to 1e-9); a disagreement stops the benchmark. Each of K
rounds runs every command once in a shuffled order, after one untimed run of each (so the files are
in the page cache for all of them) and after waiting for other processes to go quiet; medians and
minimums are reported, with the ratios pandas / tunedeck and the cores other processes kept busy.

In-process, with one ``BenchDB`` opened once, it also times ``engine.bench.compare.diff`` (the
20 ms goal once the table is built) and breaks it and a warm process down: diff.sql and
diff_totals.sql executed, then fetched; the ``task_verdicts`` view for one run; ``model_dump``,
``json.dumps`` and the human-readable text; ``BenchDB.open`` warm and cold; interpreter start and
imports.

With ``--after-import`` it times instead what a user does after an evaluation: ``tunedeck bench
import`` of one tunedeck-format results file per run into an empty campaign, then the first
``bench diff`` (which finds the cache current: the import loaded its files), the second one, and
pandas on the imported files; and, for comparison, the same imports as they ran before the import
refreshed the cache (``engine.bench.db`` stubbed out), then the first diff, which builds the table.
It also checks that the cache the imports left is identical to one rebuilt from the files.

pandas is an optional extra: ``pip install -e '.[perf]'``. Not a pytest test: CI does not run it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from machine_load import OtherLoad, wait_for_quiet

REPO = Path(__file__).resolve().parents[2]
PANDAS_SCRIPT = Path(__file__).resolve().with_name("pandas_diff.py")
CANDIDATE, BASELINE = "cand", "base"
GOAL_RATIO = 5.0
GOAL_DIFF_MS = 20.0
SEED = 20260502
# (bench, task id format): realistic ids, natural order matters (MBPP/17 before MBPP/105).
BENCHES = [
    ("humaneval", "HumanEval/{}"),
    ("mbpp", "MBPP/{}"),
    ("bench3", "bench3/{:06d}"),
    ("bench4", "bench4/{:06d}"),
    ("bench5", "bench5/{:06d}"),
    ("bench6", "bench6/{:06d}"),
]
ERRORS = [
    "AssertionError",
    "AssertionError: expected [1, 2, 3], got [1, 3, 2]",
    "TimeoutError: timed out after 10.0 s",
    "SyntaxError: invalid syntax (<string>, line 3)",
    "NameError: name 'helper' is not defined",
    "IndexError: list index out of range",
    "failed: wrong answer",
]
MARKER = ".bench_diff.json"  # what a --keep folder was generated with


# -- data ---------------------------------------------------------------------------------------
def generate(
    root: Path,
    *,
    rows: int,
    samples: list[int],
    lost: float,
    gained: float,
    flaky: float,
    only: float,
    seed: int,
) -> dict[str, Any]:
    """A campaign in ``root`` with ``rows`` canonical rows, half per run; returns what was made."""
    if len(samples) > len(BENCHES):
        raise SystemExit(f"--samples: at most {len(BENCHES)} benches")
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "campaign.toml").write_text('name = "perf"\n', encoding="utf-8")
    production = {"run": BASELINE, "artifact": f"runs/{BASELINE}/merged", "promoted_at": "2026-05-02T00:00:00Z"}
    (root / "production.json").write_text(json.dumps(production) + "\n", encoding="utf-8")
    per_run = {BASELINE: rows // 2, CANDIDATE: rows - rows // 2}
    made: dict[str, Any] = {"rows": 0, "files": 0, "bytes": 0, "tasks": {}, "benches": {}}
    errors = [json.dumps(text) for text in ERRORS]
    for index, ((bench, id_format), bench_samples) in enumerate(zip(BENCHES, samples, strict=False)):
        # Each bench gets an equal share of each run's rows (the first ones take the remainder).
        share = {run: n // len(samples) + (1 if index < n % len(samples) else 0) for run, n in per_run.items()}
        tasks = math.ceil(max(share.values()) / bench_samples)
        base_pass = rng.random(tasks) < rng.uniform(0.3, 0.6)
        cand_pass = base_pass.copy()
        cand_pass[base_pass & (rng.random(tasks) < lost)] = False
        cand_pass[~base_pass & (rng.random(tasks) < gained)] = True
        ids = np.arange(tasks)
        shifted = ids.copy()
        # The first tasks of the candidate get fresh ids: evaluated by one run only.
        moved = round(only * tasks)
        shifted[:moved] = tasks + ids[:moved]
        made["benches"][bench] = {"samples": bench_samples, "tasks": tasks, "only_one_run": moved}
        for run, verdicts, numbers in ((BASELINE, base_pass, ids), (CANDIDATE, cand_pass, shifted)):
            n = share[run]
            task = np.arange(n) // bench_samples
            sample = np.arange(n) % bench_samples
            passed = verdicts[task]
            # A flaky task: sample 1 always disagrees with sample 0 (the verdict), later ones half the time.
            wobbly = (rng.random(tasks) < flaky)[task] & ((sample == 1) | ((sample > 1) & (rng.random(n) < 0.5)))
            passed = passed ^ wobbly
            error = rng.integers(0, len(errors), n)
            latency = np.round(rng.lognormal(math.log(800.0), 0.6, n), 1)
            order = rng.permutation(n)  # files are not sorted by sample: the lowest sample decides, not the first line
            names = [id_format.format(number) for number in numbers.tolist()]
            head = f'{{"run": {json.dumps(run)}, "bench": {json.dumps(bench)}, "task_id": "'
            lines = [
                f'{head}{names[t]}", "passed": true, "error": null, "score": null, "scores": null, '
                f'"sample": {s}, "latency_ms": {ms}}}\n'
                if ok
                else f'{head}{names[t]}", "passed": false, "error": {errors[e]}, "score": null, "scores": null, '
                f'"sample": {s}, "latency_ms": {ms}}}\n'
                for t, s, ok, e, ms in zip(
                    task[order].tolist(),
                    sample[order].tolist(),
                    passed[order].tolist(),
                    error[order].tolist(),
                    latency[order].tolist(),
                    strict=True,
                )
            ]
            path = root / "bench" / run / f"{bench}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            data = "".join(lines).encode("utf-8")
            path.write_bytes(data)
            made["rows"] += n
            made["files"] += 1
            made["bytes"] += len(data)
            made["tasks"][run] = made["tasks"].get(run, 0) + len(np.unique(task))
    return made


def prepare(args: argparse.Namespace, progress: Callable[[str], None]) -> tuple[Path, dict[str, Any], bool]:
    """The campaign folder (generated, or reused from --keep when made with the same options)."""
    options = {
        "rows": args.rows,
        "samples": args.samples,
        "lost": args.lost,
        "gained": args.gained,
        "flaky": args.flaky,
        "only": args.only,
        "seed": args.seed,
    }
    if args.keep:
        root = Path(args.keep).resolve()
        marker = root / MARKER
        if marker.is_file():
            saved = json.loads(marker.read_text(encoding="utf-8"))
            if saved.get("options") == options:
                progress(f"reusing the data in {root}")
                return root, {**saved["made"], "generate_s": None}, False
            raise SystemExit(f"{root} holds data generated with other options: {saved.get('options')}")
        if root.exists() and any(root.iterdir()):
            raise SystemExit(f"--keep {root}: not empty and not made by this script")
    else:
        root = Path(tempfile.mkdtemp(prefix="td-bench-diff-"))
    progress(f"generating {args.rows:,} rows into {root}")
    started = time.perf_counter()
    made = generate(root, **options)
    made["generate_s"] = round(time.perf_counter() - started, 2)
    if args.keep:
        (root / MARKER).write_text(json.dumps({"options": options, "made": made}) + "\n", encoding="utf-8")
    return root, made, not args.keep


# -- whole processes ----------------------------------------------------------------------------
def cli_head() -> list[str]:
    """How to start ``tunedeck``: the virtual environment's script, or the CLI's main through python."""
    script = Path(sys.executable).parent / "tunedeck"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from engine.cli.main import main; main()"]


def tunedeck_command(root: Path) -> list[str]:
    return [*cli_head(), "bench", "diff", CANDIDATE, "--against", BASELINE, "--json", "--campaign", str(root)]


def pandas_command(root: Path, reader: str) -> list[str]:
    return [sys.executable, str(PANDAS_SCRIPT), str(root), CANDIDATE, BASELINE, "--reader", reader]


def pandas_readers() -> list[str]:
    """pandas' own JSON reader always; its pyarrow engine too when pyarrow is installed."""
    return ["ujson", "pyarrow"] if importlib.util.find_spec("pyarrow") is not None else ["ujson"]


def cache_path(root: Path) -> Path:
    return root / ".tunedeck" / "bench.duckdb"


def drop_cache(root: Path) -> None:
    """Remove the DuckDB cache (and its WAL), so the next tunedeck process builds the table."""
    folder = cache_path(root).parent
    for path in folder.glob("bench.duckdb*") if folder.is_dir() else []:
        path.unlink()


def run_process(command: list[str]) -> tuple[float, bytes]:
    """Wall-clock seconds of one whole process and its stdout; a failure stops the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr.decode(errors='replace')}")
    return seconds, done.stdout


def time_processes(
    root: Path, readers: list[str], repeats: int, quiet_wait: float, progress: Callable[[str], None]
) -> tuple[dict[str, list[float]], dict[str, list[float | None]]]:
    """K rounds of every command in a shuffled order: seconds per run, and the cores others used meanwhile."""

    def cold() -> float:
        drop_cache(root)
        return run_process(tunedeck_command(root))[0]

    def warm() -> float:
        return run_process(tunedeck_command(root))[0]

    variants: dict[str, Callable[[], float]] = {"tunedeck_cold": cold, "tunedeck_warm": warm}
    for reader in readers:
        variants[f"pandas_{reader}"] = lambda reader=reader: run_process(pandas_command(root, reader))[0]
    times: dict[str, list[float]] = {name: [] for name in variants}
    others: dict[str, list[float | None]] = {name: [] for name in variants}
    order = list(variants)
    shuffle = random.Random(SEED)
    load = OtherLoad()
    for round_index in range(repeats):
        shuffle.shuffle(order)
        for name in order:
            if name == "tunedeck_warm" and not cache_path(root).exists():
                run_process(tunedeck_command(root))  # untimed: builds the table
            wait_for_quiet(quiet_wait)
            load.start()
            times[name].append(variants[name]())
            others[name].append(load.cores())
        progress(f"round {round_index + 1}/{repeats}: " + ", ".join(f"{n} {times[n][-1]:.3f} s" for n in variants))
    return times, others


# -- agreement --------------------------------------------------------------------------------------
CLASS_KEYS = ("kept", "lost", "gained", "still_failing", "flaky", "only_candidate", "only_baseline")


def compare_outputs(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Every difference between two diff outputs (empty when they agree)."""
    problems = []
    for key in ("candidate", "baseline", "baseline_is_production"):
        if ours.get(key) != theirs.get(key):
            problems.append(f"{key}: {ours.get(key)!r} != {theirs.get(key)!r}")
    for key in CLASS_KEYS:
        a, b = set(ours.get(key, [])), set(theirs.get(key, []))
        if a != b or len(a) != len(ours.get(key, [])) or len(b) != len(theirs.get(key, [])):
            problems.append(
                f"{key}: {len(ours.get(key, []))} vs {len(theirs.get(key, []))} rows; "
                f"only tunedeck: {sorted(a - b)[:3]}, only pandas: {sorted(b - a)[:3]}"
            )
        elif ours[key] != theirs[key]:
            problems.append(f"{key}: same rows in another order")
    p, q = ours.get("p_value"), theirs.get("p_value")
    if (p is None) != (q is None) or (p is not None and abs(p - q) > 1e-9):
        problems.append(f"p_value: {p!r} != {q!r}")
    if list(ours.get("benches", {})) != list(theirs.get("benches", {})):
        problems.append(f"benches: {list(ours.get('benches', {}))} != {list(theirs.get('benches', {}))}")
    for bench, totals in ours.get("benches", {}).items():
        other = theirs.get("benches", {}).get(bench, {})
        for field in sorted(set(totals) | set(other)):
            a, b = totals.get(field), other.get(field)
            same = (
                a == b
                if not isinstance(a, float) or not isinstance(b, float)
                else math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
            )
            if not same:
                problems.append(f"benches.{bench}.{field}: {a!r} != {b!r}")
    return problems


# -- in process -------------------------------------------------------------------------------------
def measure_ms(function: Callable[[], Any], repeats: int, quiet_wait: float = 0.0) -> tuple[float, float]:
    """Median and minimum milliseconds of ``repeats`` calls, after one untimed call (and a quiet machine)."""
    function()
    wait_for_quiet(quiet_wait)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(1000 * (time.perf_counter() - started))
    return statistics.median(samples), min(samples)


def in_process(root: Path, repeats: int, quiet_wait: float) -> dict[str, Any]:
    """diff() and its parts with one BenchDB opened once, and the fixed costs of a process."""
    load = OtherLoad()
    load.start()

    def median_ms(function: Callable[[], Any], repeats: int) -> tuple[float, float]:
        return measure_ms(function, repeats, quiet_wait)

    import queries
    from engine.bench.compare import diff
    from engine.bench.db import BenchDB
    from engine.cli import bench as cli_bench
    from engine.store.campaign import Campaign

    diff_text = getattr(cli_bench, "_diff_text", None)

    figures: dict[str, Any] = {}
    campaign = Campaign.open(root)
    diff_sql, totals_sql = queries.load("diff"), queries.load("diff_totals")
    db = BenchDB.open(campaign)  # the table is built (a warm cache)

    def sql(text: str) -> Any:
        """Execute one of the queries with the parameters it names (run by diff() first, as it is)."""
        params = {"candidate": CANDIDATE, "baseline": BASELINE}
        return db.con.execute(text, {key: value for key, value in params.items() if f"${key}" in text})

    try:
        figures["diff"] = median_ms(lambda: diff(db, CANDIDATE, BASELINE), repeats)
        # execute() runs a query to its end (a materialised result); fetchall() makes the Python tuples.
        figures["sql_execute"] = median_ms(lambda: (sql(diff_sql), sql(totals_sql)), repeats)
        figures["sql_fetchall"] = median_ms(lambda: (sql(diff_sql).fetchall(), sql(totals_sql).fetchall()), repeats)
        figures["sql_diff_execute"] = median_ms(lambda: sql(diff_sql), repeats)
        figures["sql_totals_execute"] = median_ms(lambda: sql(totals_sql), repeats)
        # Each side of each query reads the task_verdicts view, which aggregates bench_rows anew.
        figures["verdicts_one_run"] = median_ms(
            lambda: db.con.execute("SELECT count(*) FROM task_verdicts WHERE run = $r", {"r": CANDIDATE}).fetchall(),
            repeats,
        )
        figures["diff_sql_rows"] = len(sql(diff_sql).fetchall())
        result = diff(db, CANDIDATE, BASELINE)
        figures["to_json"] = median_ms(lambda: result.model_dump(mode="json"), repeats)
        payload = result.model_dump(mode="json")
        figures["json_dumps"] = median_ms(lambda: json.dumps(payload), repeats)
        figures["output_bytes"] = len(json.dumps(payload)) + 1
        # cmd_bench_diff builds the human-readable text even with --json (and throws it away).
        if diff_text is not None:
            figures["diff_text"] = median_ms(lambda: diff_text(result), repeats)
    finally:
        db.close()

    def open_close() -> None:
        BenchDB.open(Campaign.open(root)).close()

    figures["open_sync_close"] = median_ms(open_close, repeats)
    process_repeats = max(3, repeats // 2)

    def build() -> None:
        drop_cache(root)
        open_close()

    figures["open_build_close"] = median_ms(build, process_repeats)  # leaves the table built
    imports = "import engine.cli.main, engine.bench.compare, engine.bench.db"
    figures["start_imports"] = median_ms(lambda: run_process([sys.executable, "-c", imports]), process_repeats)
    figures["start_cli"] = median_ms(
        lambda: run_process([sys.executable, "-c", "import engine.cli.main"]), process_repeats
    )
    figures["start_bare"] = median_ms(lambda: run_process([sys.executable, "-c", "pass"]), process_repeats)
    figures["other_processes_cores"] = load.cores()
    return figures


# -- report -------------------------------------------------------------------------------------------
def summarise(times: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {name: {"median_s": statistics.median(v), "min_s": min(v)} for name, v in times.items()}


PROCESS_LABELS = {
    "tunedeck_cold": "tunedeck bench diff, cold (builds table)",
    "tunedeck_warm": "tunedeck bench diff, warm (table built)",
    "pandas_ujson": "pandas_diff.py, pandas' own JSON reader",
    "pandas_pyarrow": "pandas_diff.py, read_json(engine='pyarrow')",
}
INNER_LABELS = {
    "diff": "engine.bench.compare.diff()",
    "sql_execute": "  diff.sql + diff_totals.sql, execute only",
    "sql_fetchall": "  the same + fetchall()",
    "sql_diff_execute": "  diff.sql alone, execute only",
    "sql_totals_execute": "  diff_totals.sql alone, execute only",
    "verdicts_one_run": "  task_verdicts of one run (x4 per diff)",
    "to_json": 'BenchDiff.model_dump(mode="json")',
    "json_dumps": "json.dumps of the payload",
    "diff_text": "cli_bench._diff_text (text output only)",
    "open_sync_close": "BenchDB.open (connect + sync) + close",
    "open_build_close": "the same, cold: builds the table from the files",
    "start_imports": "process: python + engine.cli.main, compare, db",
    "start_cli": "process: python + import engine.cli.main",
    "start_bare": "process: bare python start",
}


def report(result: dict[str, Any]) -> str:
    data, proc, inner = result["data"], result["processes"], result["in_process"]
    pandas = [name for name in proc if name.startswith("pandas_")]
    others = result["other_processes_cores"]
    inner_others = inner["other_processes_cores"]
    lines = [
        f"tunedeck bench diff benchmark ({result['machine']})",
        f"data: {data['rows']:,} canonical rows in {data['files']} files ({data['bytes'] / 1e6:.0f} MB), "
        f"{data['tasks'][BASELINE]:,} + {data['tasks'][CANDIDATE]:,} tasks (base + cand); benches "
        + ", ".join(f"{b} x{v['samples']}" for b, v in data["benches"].items())
        + " samples"
        + (f"; generated in {data['generate_s']} s" if data.get("generate_s") else ""),
        f"outputs agree with every pandas variant (classes as sets and in order, flaky, totals, "
        f"p = {result['p_value']:.6g}): {'yes' if not result['disagreements'] else 'NO'}; "
        f"diff output {inner['diff_sql_rows']:,} rows, {inner['output_bytes'] / 1e6:.1f} MB of JSON",
        f"versions: {result['versions']}",
        "",
        f"whole process, wall clock, {result['repeats']} rounds (others: cores other processes kept busy, mean)",
        f"  {'':<46} {'median s':>9} {'min s':>8} {'others':>7}   "
        + "   ".join(f"{'pandas[' + name.removeprefix('pandas_') + '] / this':>26}" for name in pandas),
    ]
    for name, row in proc.items():
        ratios = ""
        if name.startswith("tunedeck"):
            ratios = "   ".join(
                f"{proc[p]['median_s'] / row['median_s']:10.1f}x med {proc[p]['min_s'] / row['min_s']:5.1f}x min"
                for p in pandas
            )
        load = [value for value in others[name] if value is not None]
        busy = f"{statistics.mean(load):7.2f}" if load else f"{'-':>7}"
        lines.append(f"  {PROCESS_LABELS[name]:<46} {row['median_s']:9.3f} {row['min_s']:8.3f} {busy}   {ratios}")
    lines += [
        "",
        f"in process, one BenchDB opened once, {result['inner_repeats']} calls   median ms   min ms"
        + ("" if inner_others is None else f"   (others kept {inner_others:.2f} cores busy)"),
    ]
    for key, label in INNER_LABELS.items():
        if key not in inner:
            continue
        median, low = inner[key]
        lines.append(f"  {label:<46} {median:9.1f} {low:8.1f}")
    diff_ms = inner["diff"][0]
    lines += ["", "goals:"]
    for name in pandas:
        for side in ("tunedeck_cold", "tunedeck_warm"):
            ratio = proc[name]["median_s"] / proc[side]["median_s"]
            lines.append(
                f"  >= {GOAL_RATIO:g}x faster than {name} end to end, {side.removeprefix('tunedeck_')}: "
                f"{ratio:.1f}x - {'met' if ratio >= GOAL_RATIO else 'NOT met'}"
            )
    lines.append(
        f"  < {GOAL_DIFF_MS:g} ms per diff once the table is built: {diff_ms:.1f} ms - "
        f"{'met' if diff_ms < GOAL_DIFF_MS else 'NOT met'}"
    )
    if "pandas_pyarrow" not in proc:
        lines.append("  (pyarrow is not installed: pandas' faster engine='pyarrow' reader was not timed)")
    lines += [f"  DISAGREEMENT: {problem}" for problem in result["disagreements"]]
    return "\n".join(lines)


def versions(readers: list[str]) -> str:
    import duckdb
    import pandas

    names = [f"python {platform.python_version()}", f"duckdb {duckdb.__version__}", f"pandas {pandas.__version__}"]
    if "pyarrow" in readers:
        import pyarrow

        names.append(f"pyarrow {pyarrow.__version__}")
    return ", ".join(names)


# -- right after an import -----------------------------------------------------------------------
# The import as it was before the cache was refreshed by the writer: the same command with
# engine.bench.db replaced by a stub whose refresh_cache does nothing (so DuckDB is not even imported).
IMPORT_WITHOUT_REFRESH = (
    "import sys, types; stub = types.ModuleType('engine.bench.db'); "
    "stub.refresh_cache = lambda *args, **kwargs: None; sys.modules['engine.bench.db'] = stub; "
    "from engine.cli.main import main; main()"
)


def import_sources(root: Path, folder: Path) -> dict[str, Path]:
    """One tunedeck-format results file per run (its bench files one after the other), to import."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = {}
    for run in (CANDIDATE, BASELINE):
        target = folder / f"{run}.results.jsonl"
        if not target.exists():
            with open(target, "wb") as out:
                for path in sorted((root / "bench" / run).glob("*.jsonl")):
                    with open(path, "rb") as handle:
                        shutil.copyfileobj(handle, out)
        sources[run] = target
    return sources


def empty_campaign(root: Path, folder: Path) -> Path:
    """A campaign like ``root`` (same campaign.toml and production run) without any bench result."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in ("campaign.toml", "production.json"):
        shutil.copyfile(root / name, folder / name)
    return folder


def import_command(campaign: Path, run: str, source: Path, *, refresh: bool) -> list[str]:
    """``tunedeck bench import SOURCE --run RUN``; without ``refresh``, as it ran before the cache refresh."""
    head = cli_head() if refresh else [sys.executable, "-c", IMPORT_WITHOUT_REFRESH]
    return [*head, "bench", "import", str(source), "--run", run, "--format", "tunedeck", "--campaign", str(campaign)]


def time_after_import(
    root: Path,
    sources: dict[str, Path],
    scratch: Path,
    readers: list[str],
    repeats: int,
    quiet_wait: float,
    progress: Callable[[str], None],
) -> tuple[dict[str, list[float]], dict[str, list[float | None]], Path]:
    """K rounds: import both runs into an empty campaign, then the first diff, with and without the refresh.

    Each round runs three groups in a shuffled order: ``after`` (the imports as they are now, then the
    first and the second diff), ``before`` (the imports without the cache refresh, then the first diff,
    which builds the table as every first diff after an import used to) and pandas on the imported
    files. Returns seconds and others' cores per figure, and the campaign pandas read.
    """
    imported = empty_campaign(root, scratch / "imported")
    for run, source in sources.items():  # untimed: what pandas reads, and the page cache warmed
        run_process(import_command(imported, run, source, refresh=True))
    times: dict[str, list[float]] = {name: [] for name in AFTER_IMPORT_LABELS if not name.startswith("pandas_")}
    times.update({f"pandas_{reader}": [] for reader in readers})
    others: dict[str, list[float | None]] = {name: [] for name in times}
    load = OtherLoad()

    def timed(name: str, command: list[str]) -> None:
        wait_for_quiet(quiet_wait)
        load.start()
        times[name].append(run_process(command)[0])
        others[name].append(load.cores())

    def imports(group: str, refresh: bool) -> Path:
        campaign = empty_campaign(root, scratch / group)
        for run, source in sources.items():
            timed(f"import_{run}_{group}", import_command(campaign, run, source, refresh=refresh))
        both = [f"import_{run}_{group}" for run in sources]
        times[f"import_{group}"].append(sum(times[name][-1] for name in both))
        others[f"import_{group}"].append(_mean_or_none([others[name][-1] for name in both]))
        return campaign

    def after() -> None:
        campaign = imports("after", refresh=True)
        timed("diff_first_after", tunedeck_command(campaign))
        timed("diff_second_after", tunedeck_command(campaign))
        shutil.rmtree(campaign, ignore_errors=True)

    def before() -> None:
        campaign = imports("before", refresh=False)
        timed("diff_first_before", tunedeck_command(campaign))
        shutil.rmtree(campaign, ignore_errors=True)

    def pandas() -> None:
        for reader in readers:
            timed(f"pandas_{reader}", pandas_command(imported, reader))

    groups: dict[str, Callable[[], None]] = {"after": after, "before": before, "pandas": pandas}
    order = list(groups)
    shuffle = random.Random(SEED)
    for round_index in range(repeats):
        shuffle.shuffle(order)
        for name in order:
            groups[name]()
        progress(
            f"round {round_index + 1}/{repeats}: "
            + ", ".join(f"{n} {v[-1]:.2f} s" for n, v in times.items() if v and not n.startswith("import_c"))
        )
    return times, others, imported


def _mean_or_none(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.mean(known) if known else None


AFTER_IMPORT_LABELS = {
    f"import_{CANDIDATE}_before": f"bench import {CANDIDATE}, without the cache refresh",
    f"import_{BASELINE}_before": f"bench import {BASELINE}, without the cache refresh",
    "import_before": "both imports, without the cache refresh (before)",
    f"import_{CANDIDATE}_after": f"bench import {CANDIDATE}, refreshing the cache",
    f"import_{BASELINE}_after": f"bench import {BASELINE}, refreshing the cache",
    "import_after": "both imports, refreshing the cache (now)",
    "diff_first_before": "first bench diff after imports, before (builds)",
    "diff_first_after": "first bench diff after imports, now",
    "diff_second_after": "second bench diff (warm), now",
    "pandas_ujson": "pandas_diff.py, pandas' own JSON reader",
    "pandas_pyarrow": "pandas_diff.py, read_json(engine='pyarrow')",
}


def report_after_import(result: dict[str, Any]) -> str:
    data, proc, others = result["data"], result["processes"], result["other_processes_cores"]
    pandas = [name for name in proc if name.startswith("pandas_")]
    lines = [
        f"tunedeck bench diff right after bench import ({result['machine']})",
        f"data: {data['rows']:,} canonical rows, two runs of {data['rows'] // 2:,}, imported from one "
        f"tunedeck-format file per run ({result['source_bytes'] / 1e6:.0f} MB in all)",
        f"outputs agree with every pandas variant: {'yes' if not result['disagreements'] else 'NO'}; "
        f"cache after the imports identical to a rebuild from the files: {result['cache_matches_rebuild']}",
        f"versions: {result['versions']}",
        "",
        f"whole process, wall clock, {result['repeats']} rounds (others: cores other processes kept busy, mean)",
        f"  {'':<52} {'median s':>9} {'min s':>8} {'others':>7}",
    ]
    for name, label in AFTER_IMPORT_LABELS.items():
        if name not in proc:
            continue
        row = proc[name]
        load = [value for value in others[name] if value is not None]
        busy = f"{statistics.mean(load):7.2f}" if load else f"{'-':>7}"
        lines.append(f"  {label:<52} {row['median_s']:9.3f} {row['min_s']:8.3f} {busy}")
    first, second, cold = (proc[n]["median_s"] for n in ("diff_first_after", "diff_second_after", "diff_first_before"))
    before, after = proc["import_before"]["median_s"], proc["import_after"]["median_s"]
    refresh = result["refresh_s"]
    busy = refresh["other_processes_cores"]
    lines += [
        "",
        f"the imports' own cost of the refresh: {after - before:+.2f} s for both runs by wall clock "
        f"({(after / before - 1) * 100:+.1f}%); refresh_cache in process, median: "
        + ", ".join(f"{run} {value:.2f} s" for run, value in refresh["median_s"].items())
        + ("" if busy is None else f" (others kept {busy:.2f} cores busy)"),
        f"first diff after the imports: {first:.3f} s now, {cold:.3f} s before ({cold / first:.1f}x faster); "
        f"second diff {second:.3f} s (first / second {first / second:.2f})",
        "",
        "goals:",
    ]
    for name in pandas:
        ratio = proc[name]["median_s"] / first
        lines.append(
            f"  first diff after import >= {GOAL_RATIO:g}x faster than {name}: {ratio:.1f}x - "
            f"{'met' if ratio >= GOAL_RATIO else 'NOT met'}"
            f" (before: {proc[name]['median_s'] / cold:.1f}x)"
        )
    if "pandas_pyarrow" not in proc:
        lines.append("  (pyarrow is not installed: pandas' faster engine='pyarrow' reader was not timed)")
    lines += [f"  DISAGREEMENT: {problem}" for problem in result["disagreements"]]
    return "\n".join(lines)


def cache_matches_rebuild(campaign: Path) -> bool:
    """Whether the cache the imports left holds exactly what a cache built from the files holds."""
    from engine.bench.db import opened
    from engine.store.campaign import Campaign

    camp = Campaign.open(campaign)
    with opened(camp) as db:
        if db.synced:
            return False
        incremental = db.dump()
    saved = campaign / ".tunedeck" / "saved-cache"
    saved.mkdir()
    for path in cache_path(campaign).parent.glob("bench.duckdb*"):
        shutil.move(path, saved / path.name)
    try:
        with opened(camp) as db:
            return db.dump() == incremental
    finally:
        drop_cache(campaign)
        for path in saved.iterdir():
            shutil.move(path, cache_path(campaign).parent / path.name)
        saved.rmdir()


def time_refresh(campaign: Path, repeats: int, quiet_wait: float) -> dict[str, Any]:
    """Seconds of ``refresh_cache`` for each run's files, as the two imports call it (cache dropped first)."""
    from engine.bench.db import refresh_cache
    from engine.store.campaign import Campaign

    camp = Campaign.open(campaign)
    seconds: dict[str, list[float]] = {CANDIDATE: [], BASELINE: []}
    load = OtherLoad()
    for _ in range(repeats):
        drop_cache(campaign)
        wait_for_quiet(quiet_wait)
        load.start()
        for run in (CANDIDATE, BASELINE):
            started = time.perf_counter()
            loaded = refresh_cache(camp, sorted((campaign / "bench" / run).glob("*.jsonl")))
            seconds[run].append(time.perf_counter() - started)
            if not loaded:
                raise SystemExit(f"refresh_cache loaded nothing for {run}")
    return {
        "median_s": {run: statistics.median(values) for run, values in seconds.items()},
        "times_s": seconds,
        "other_processes_cores": load.cores(),
    }


def main_after_import(
    args: argparse.Namespace, root: Path, made: dict[str, Any], readers: list[str], progress: Callable[[str], None]
) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="td-after-import-"))
    try:
        sources = import_sources(root, scratch / "sources")
        progress("checking that tunedeck and pandas agree on the imported files (untimed)")
        checked = empty_campaign(root, scratch / "checked")
        for run, source in sources.items():
            run_process(import_command(checked, run, source, refresh=True))
        ours = json.loads(run_process(tunedeck_command(checked))[1])
        disagreements = []
        for reader in readers:
            theirs = json.loads(run_process(pandas_command(checked, reader))[1])
            disagreements += [f"pandas_{reader}: {problem}" for problem in compare_outputs(ours, theirs)]
        if disagreements:
            for problem in disagreements:
                progress(f"DISAGREEMENT {problem}")
            raise SystemExit("tunedeck and pandas disagree: not timing")
        progress("checking that the cache after the imports is what a rebuild makes (untimed)")
        identical = cache_matches_rebuild(checked)
        progress("timing refresh_cache in process (the imports' added cost, without process noise)")
        refresh = time_refresh(checked, args.repeats, args.quiet_wait)
        shutil.rmtree(checked, ignore_errors=True)
        progress(f"timing {args.repeats} rounds")
        times, others, _ = time_after_import(root, sources, scratch, readers, args.repeats, args.quiet_wait, progress)
        source_bytes = sum(path.stat().st_size for path in sources.values())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "mode": "after-import",
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "versions": versions(readers),
        "data": made,
        "source_bytes": source_bytes,
        "repeats": args.repeats,
        "p_value": ours["p_value"],
        "disagreements": disagreements,
        "cache_matches_rebuild": identical,
        "refresh_s": refresh,
        "processes": summarise(times),
        "process_times_s": times,
        "other_processes_cores": others,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="canonical rows in all, both runs (default 1M)")
    parser.add_argument(
        "--repeats", type=int, help="timed rounds of the whole processes (default 5; 3 with --after-import)"
    )
    parser.add_argument(
        "--after-import",
        action="store_true",
        help="time bench import of both runs into an empty campaign, then the first bench diff (and pandas)",
    )
    parser.add_argument("--inner-repeats", type=int, default=20, help="calls per in-process figure (default 20)")
    parser.add_argument("--keep", metavar="DIR", help="generate into DIR and keep it; reuse it when already there")
    parser.add_argument(
        "--samples",
        default="5,4,3,2",
        help="samples per task of each bench, comma-separated, one bench per number (default 5,4,3,2)",
    )
    parser.add_argument("--lost", type=float, default=0.05, help="share of base-passed tasks cand fails (0.05)")
    parser.add_argument("--gained", type=float, default=0.05, help="share of base-failed tasks cand passes (0.05)")
    parser.add_argument("--flaky", type=float, default=0.03, help="share of tasks whose samples disagree (0.03)")
    parser.add_argument("--only", type=float, default=0.001, help="share of tasks evaluated by one run only (0.001)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=20.0,
        help="seconds to wait at most for other processes to go quiet before each measurement (default 20)",
    )
    parser.add_argument("--json", action="store_true", help="print every figure as one JSON object")
    args = parser.parse_args(argv)
    args.samples = [int(n) for n in args.samples.split(",")]
    if importlib.util.find_spec("pandas") is None:
        parser.error("pandas is not installed: pip install -e '.[perf]'")

    def progress(message: str) -> None:
        print(f"[bench_diff] {message}", file=sys.stderr, flush=True)

    if args.repeats is None:
        args.repeats = 3 if args.after_import else 5
    readers = pandas_readers()
    root, made, remove = prepare(args, progress)
    if args.after_import:
        try:
            result = main_after_import(args, root, made, readers, progress)
        finally:
            if remove:
                shutil.rmtree(root, ignore_errors=True)
        print(json.dumps(result, indent=2) if args.json else report_after_import(result))
        return 0
    try:
        progress("checking that tunedeck and pandas agree (untimed: also the warm-up of each command)")
        drop_cache(root)
        ours = json.loads(run_process(tunedeck_command(root))[1])
        disagreements = []
        for reader in readers:
            theirs = json.loads(run_process(pandas_command(root, reader))[1])
            disagreements += [f"pandas_{reader}: {problem}" for problem in compare_outputs(ours, theirs)]
        if disagreements:
            for problem in disagreements:
                progress(f"DISAGREEMENT {problem}")
            raise SystemExit("tunedeck and pandas disagree: not timing")
        progress(f"timing {args.repeats} rounds")
        times, others = time_processes(root, readers, args.repeats, args.quiet_wait, progress)
        progress("in-process figures")
        inner = in_process(root, args.inner_repeats, args.quiet_wait)
    finally:
        if remove:
            shutil.rmtree(root, ignore_errors=True)
    result = {
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "versions": versions(readers),
        "data": made,
        "repeats": args.repeats,
        "inner_repeats": args.inner_repeats,
        "p_value": ours["p_value"],
        "disagreements": disagreements,
        "processes": summarise(times),
        "process_times_s": times,
        "other_processes_cores": others,
        "in_process": inner,
    }
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
