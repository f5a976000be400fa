"""The pandas baseline of ``tunedeck bench diff``: the same diff, from the same files, in pandas.

    python tests/perf/pandas_diff.py CAMPAIGN_DIR CANDIDATE BASELINE

Prints what ``tunedeck bench diff CANDIDATE --against BASELINE --json`` prints: each
(bench, task_id) of the candidate against the baseline as kept / lost / gained / still_failing
(or only one run evaluated it), flaky rows, the exact McNemar p-value on lost vs gained, and
per-bench totals. It does the same work, with no cache: reads every ``bench/<run>/*.jsonl`` of
both runs with ``pd.read_json(lines=True)`` (``--reader``: pandas' own parser, ``ujson``, or
``pyarrow``, about 5x faster when pyarrow is installed; ``auto`` picks pyarrow when it can), takes
the run from the folder's name, lets the lowest ``sample`` decide a task's verdict (samples that
disagree make it flaky), joins the two runs (outer, on bench and task id), classifies, sorts by
bench then task id in natural order (length first), and emits JSON. Written for speed the way a
pandas user would: vectorised group-bys and a column merge, no Python loop over rows.

Used by tests/perf/bench_diff.py; needs pandas (``pip install -e '.[perf]'``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.bench.stats import mcnemar_exact

CLASSES = ("kept", "lost", "gained", "still_failing")
COLUMNS = ["bench", "task_id", "passed", "sample", "latency_ms"]


def has_pyarrow() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def read_run(root: Path, run: str, reader: str) -> pd.DataFrame:
    """Every row of ``bench/<run>/*.jsonl`` (hidden files skipped, as tunedeck does)."""
    options: dict[str, Any] = {"engine": "pyarrow"} if reader == "pyarrow" else {"dtype": False}
    frames = []
    for path in sorted((root / "bench" / run).glob("*.jsonl")):
        if path.name.startswith("."):
            continue
        frame = pd.read_json(path, lines=True, **options)
        frames.append(frame.reindex(columns=COLUMNS))
    if not frames:
        raise SystemExit(f"no bench results for {run!r}")
    rows = pd.concat(frames, ignore_index=True)
    rows = rows[rows["task_id"].notna() & rows["passed"].notna()]
    return rows.assign(sample=rows["sample"].fillna(0), passed=rows["passed"].astype(bool))


def verdicts(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (bench, task_id): the lowest sample's verdict, flaky, summed latency."""
    rows = rows.sort_values("sample", kind="stable")
    groups = rows.groupby(["bench", "task_id"], sort=False)
    out = groups.agg(passed=("passed", "first"), low=("passed", "min"), high=("passed", "max"))
    out["flaky"] = out["low"] != out["high"]
    out["latency_ms"] = groups["latency_ms"].sum(min_count=1)
    return out.drop(columns=["low", "high"])


def number(value: Any) -> Any:
    """A JSON-ready scalar: numpy ints and floats to Python ones, NaN to None."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def diff(root: Path, candidate: str, baseline: str, reader: str = "auto") -> dict[str, Any]:
    if reader == "auto":
        reader = "pyarrow" if has_pyarrow() else "ujson"
    c = verdicts(read_run(root, candidate, reader))
    b = verdicts(read_run(root, baseline, reader))
    joined = pd.merge(c.reset_index(), b.reset_index(), how="outer", on=["bench", "task_id"], suffixes=("_c", "_b"))
    has_c, has_b = joined["passed_c"].notna().to_numpy(), joined["passed_b"].notna().to_numpy()
    cp = joined["passed_c"].fillna(False).astype(bool).to_numpy()
    bp = joined["passed_b"].fillna(False).astype(bool).to_numpy()
    both = has_c & has_b
    joined["class"] = np.select(
        [~has_c, ~has_b, bp & cp, bp, cp],
        ["only_baseline", "only_candidate", "kept", "lost", "gained"],
        default="still_failing",
    )
    joined["flaky"] = joined["flaky_c"].fillna(False).astype(bool) | joined["flaky_b"].fillna(False).astype(bool)
    joined["length"] = joined["task_id"].str.len()
    joined = joined.sort_values(["bench", "length", "task_id"], kind="stable", ignore_index=True)
    keys = joined["bench"] + ":" + joined["task_id"]
    rows = {name: keys[joined["class"] == name].tolist() for name in (*CLASSES, "only_candidate", "only_baseline")}

    # Per-bench totals, as diff_totals.sql computes them.
    flags = pd.DataFrame({
        "bench": joined["bench"],
        "baseline_total": joined["passed_b"].notna(),
        "baseline_passed": joined["passed_b"].fillna(False).astype(bool),
        "candidate_total": joined["passed_c"].notna(),
        "candidate_passed": joined["passed_c"].fillna(False).astype(bool),
        **{name: joined["class"] == name for name in (*CLASSES, "only_candidate", "only_baseline")},
        "flaky": joined["flaky"],
    })  # fmt: skip
    counts = flags.groupby("bench", sort=True).sum()
    latency = joined.groupby("bench", sort=True)[["latency_ms_b", "latency_ms_c"]].sum(min_count=1)
    benches: dict[str, dict[str, Any]] = {}
    for bench, total in counts.iterrows():
        record = {name: int(total[name]) for name in counts.columns if name != "flaky"}
        record["flaky"] = int(total["flaky"])
        cand_rate = record["candidate_passed"] / record["candidate_total"] if record["candidate_total"] else None
        base_rate = record["baseline_passed"] / record["baseline_total"] if record["baseline_total"] else None
        record["delta"] = None if cand_rate is None or base_rate is None else cand_rate - base_rate
        record["baseline_latency_ms"] = number(latency.at[bench, "latency_ms_b"])
        record["candidate_latency_ms"] = number(latency.at[bench, "latency_ms_c"])
        benches[str(bench)] = record

    shared = bool(both.any())
    return {
        "candidate": candidate,
        "baseline": baseline,
        "baseline_is_production": False,
        **{name: rows[name] for name in CLASSES},
        "flaky": keys[joined["flaky"]].tolist(),
        "only_candidate": rows["only_candidate"],
        "only_baseline": rows["only_baseline"],
        "p_value": mcnemar_exact(len(rows["lost"]), len(rows["gained"])) if shared else None,
        "benches": benches,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("campaign", metavar="CAMPAIGN_DIR")
    parser.add_argument("candidate", metavar="CANDIDATE")
    parser.add_argument("baseline", metavar="BASELINE")
    parser.add_argument(
        "--reader",
        choices=["auto", "pyarrow", "ujson"],
        default="auto",
        help="pd.read_json engine: pyarrow when installed (auto), else pandas' own (ujson)",
    )
    args = parser.parse_args(argv)
    print(json.dumps(diff(Path(args.campaign), args.candidate, args.baseline, args.reader)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
