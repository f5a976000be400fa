"""``tunedeck bench …``, ``tunedeck gate`` and ``tunedeck dataset harvest``: the bench commands.

Kept apart from engine/cli/main.py so each file stays readable; handlers follow the same rules
(one-line errors with exit status 2, ``--json`` for scripts). ``gate`` exits 0 when the gate
passes and 1 when it fails, so scripts can branch on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.bench.store import parse_ref
from engine.cli.common import campaign_of, emit


def _rate(passed: int, total: int) -> str:
    return f"{passed}/{total}" + (f" ({passed / total:.1%})" if total else "")


def _table(header: list[str], rows: Iterable[list[str]]) -> str:
    """Plain aligned columns (the TUI draws the real tables)."""
    rows = [header, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


# -- bench import --------------------------------------------------------------------------


def cmd_bench_import(args: argparse.Namespace) -> int:
    """Turn lm-eval / EvalPlus / human-eval / tunedeck result files into canonical rows."""
    from engine.bench.importer import import_results

    campaign = campaign_of(args)
    summary = import_results(campaign, Path(args.file), args.run, fmt=args.format, bench=args.bench)
    for reason in summary.reasons:
        print(f"tunedeck: skipped {reason}", file=sys.stderr)
    benches = ", ".join(f"{name} {_rate(t.passed, t.total)}" for name, t in summary.benches.items())
    skipped = f"; skipped {summary.skipped} lines (see above)" if summary.skipped else ""
    emit(
        args,
        summary.to_json(),
        f"imported {summary.rows} rows ({summary.format}) into {summary.run}: {benches}{skipped}",
    )
    return 0


# -- bench run -----------------------------------------------------------------------------


def cmd_bench_run(args: argparse.Namespace) -> int:
    """Generate with the run's model in a worker and score each suite row."""
    from engine.bench.run import run_suite

    campaign = campaign_of(args)

    def say(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    summary = run_suite(campaign, args.run, Path(args.suite), samples=args.samples, checkpoint=args.checkpoint, say=say)
    payload = summary.to_json()
    benches = ", ".join(f"{name} {_rate(b['passed'], b['total'])}" for name, b in payload["benches"].items())
    emit(args, payload, f"{payload['run']}: {benches} ({payload['rows']} rows in {payload['seconds']:.1f} s)")
    return 0


# -- bench diff / show ---------------------------------------------------------------------


def _diff_text(result: Any) -> str:
    data = result.to_json()
    against = f"{data['baseline']} (production)" if data["baseline_is_production"] else data["baseline"]
    lines = [f"{data['candidate']} against {against}", ""]
    header = ["bench", "baseline", "candidate", "delta", "kept", "lost", "gained", "still failing", "flaky"]
    rows = []
    for bench, t in data["benches"].items():
        delta = "" if t["delta"] is None else f"{t['delta'] * 100:+.1f} pts"
        rows.append([
            bench,
            _rate(t["baseline_passed"], t["baseline_total"]),
            _rate(t["candidate_passed"], t["candidate_total"]),
            delta,
            *(str(t[k]) for k in ("kept", "lost", "gained", "still_failing", "flaky")),
        ])  # fmt: skip
    lines.append(_table(header, rows))
    flaky = set(data["flaky"])
    marks = {"kept": "✓", "lost": "✗", "gained": "+", "still_failing": "·", "only_candidate": "?", "only_baseline": "?"}
    titles = {
        "only_candidate": f"ONLY IN {data['candidate']}",
        "only_baseline": f"ONLY IN {data['baseline']}",
    }
    for klass in ("kept", "lost", "gained", "still_failing", "only_candidate", "only_baseline"):
        keys = data[klass]
        if not keys:
            continue
        lines += ["", f"{titles.get(klass, klass.upper().replace('_', ' '))} ({len(keys)}):"]
        lines += [f"  {marks[klass]} {key}" + ("   ~ flaky (samples disagree)" if key in flaky else "") for key in keys]
    p_value = data["p_value"]
    if p_value is not None:
        lost, gained = len(data["lost"]), len(data["gained"])
        lines += ["", f"McNemar exact p = {p_value:.4g} ({lost} lost vs {gained} gained)"]
    return "\n".join(lines)


def cmd_bench_diff(args: argparse.Namespace) -> int:
    """KEPT / LOST / GAINED / STILL FAILING of a candidate against a baseline (production by default)."""
    from engine.bench.compare import diff, resolve_baseline
    from engine.bench.db import opened

    campaign = campaign_of(args)
    candidate = str(parse_ref(args.candidate, field="CANDIDATE"))
    baseline, is_production = resolve_baseline(campaign, args.against)
    with opened(campaign) as db:
        result = diff(db, candidate, baseline, baseline_is_production=is_production)
        _warn(db.warnings)
    # The text of a 160k-row diff costs tens of milliseconds: only built when it is printed.
    print(json.dumps(result.to_json()) if args.json else _diff_text(result))
    return 0


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"tunedeck: skipped {warning}", file=sys.stderr)


def cmd_bench_show(args: argparse.Namespace) -> int:
    """Pass rate per run and bench, flaky rows, and judged scores when the campaign declares weights."""
    from engine.bench.compare import flaky_rows, judged_summary, pass_rates

    campaign = campaign_of(args)
    refs = [str(parse_ref(r)) for r in args.runs] or None
    from engine.bench.db import opened

    with opened(campaign) as db:
        rates = pass_rates(db, refs)
        flaky = flaky_rows(db, refs)
        judge = campaign.config.judge
        judged = judged_summary(db, judge.weights, refs) if judge else {}
        _warn(db.warnings)
    payload = {"pass_rates": rates, "flaky": flaky, "judged": judged}
    table = _table(
        ["run", "bench", "passed", "flaky", "samples"],
        ([r["run"], r["bench"], _rate(r["passed"], r["total"]), str(r["flaky"]), str(r["rows"])] for r in rates),
    )
    lines = [table if rates else "no bench results yet"]
    for run, benches in judged.items():
        for bench, entry in benches.items():
            overall = "-" if entry.get("overall") is None else f"{entry['overall']:.2f}"
            cats = ", ".join(
                f"{k} {v['overall']:.2f}" for k, v in entry["categories"].items() if v["overall"] is not None
            )
            lines.append(f"{run} {bench}: weighted overall {overall}" + (f" ({cats})" if cats else ""))
    emit(args, payload, "\n".join(lines))
    return 0


# -- gate ----------------------------------------------------------------------------------


def cmd_gate(args: argparse.Namespace) -> int:
    """Apply campaign.toml's [gate]: exit 0 when it passes, 1 when it fails, 2 on bad input."""
    from engine.bench.db import opened
    from engine.bench.gate import evaluate_gate

    campaign = campaign_of(args)
    ref = parse_ref(args.run)
    if args.checkpoint is not None:
        ref = parse_ref(f"{ref.run}@{args.checkpoint}")
    with opened(campaign) as db:
        result = evaluate_gate(db, str(ref))
        _warn(db.warnings)
    data = result.to_json()
    verdict = "PASSED" if result.passed else "FAILED"
    lines = [f"gate {verdict} for {ref}"]
    if result.anchors_total:
        lines.append(f"  anchors {result.anchors_passed}/{result.anchors_total}")
    lines += [f"  ✗ {reason}" for reason in result.reasons]
    lines += [f"  note: {note}" for note in result.notes]
    emit(args, data, "\n".join(lines))
    return 0 if result.passed else 1


# -- dataset harvest -----------------------------------------------------------------------


def cmd_dataset_harvest(args: argparse.Namespace) -> int:
    """Next dataset: the run's fresh failures with references, plus anchor rows it passes."""
    from engine.bench.db import opened
    from engine.bench.harvest import harvest

    campaign = campaign_of(args)
    ref = str(parse_ref(args.source, field="--from"))
    with opened(campaign) as db:
        summary = harvest(db, ref, Path(args.refs), Path(args.out), anchors=args.anchors, seed=args.seed)
    for reason in summary.skipped_refs:
        print(f"tunedeck: skipped {reason}", file=sys.stderr)
    missing = f"; {len(summary.failed_without_ref)} failed rows have no reference" if summary.failed_without_ref else ""
    emit(
        args,
        summary.to_json(),
        f"wrote {summary.poison + summary.anchors} rows to {summary.out}: {summary.poison} fresh failures "
        f"(class poison) + {summary.anchors} anchors{missing}",
    )
    return 0


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register the bench, gate and dataset commands on the main parser's subparsers."""
    bench = sub.add_parser("bench", help="bench results: import, run, diff, show")
    kinds = bench.add_subparsers(dest="bench_command", metavar="ACTION", required=True)

    imp = kinds.add_parser("import", parents=[common], help="import lm-eval, EvalPlus, human-eval or tunedeck results")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--run", required=True, metavar="RUN", help="the run (or RUN@STEP) these results belong to")
    imp.add_argument("--format", default="auto", choices=["auto", "tunedeck", "lm-eval", "evalplus", "human-eval"])
    imp.add_argument("--bench", metavar="NAME", help="bench name (default: from the file)")
    imp.set_defaults(handler=cmd_bench_import)

    run = kinds.add_parser("run", parents=[common], help="generate with a run's model and score a suite")
    run.add_argument("run", metavar="RUN")
    run.add_argument("--suite", required=True, metavar="SUITE_JSONL")
    run.add_argument("--samples", type=int, default=1, metavar="N", help="evaluations per row (N > 1 samples)")
    run.add_argument("--checkpoint", type=int, metavar="STEP", help="a checkpoint's adapter (0: the base model)")
    run.set_defaults(handler=cmd_bench_run)

    dif = kinds.add_parser("diff", parents=[common], help="KEPT/LOST/GAINED rows of a run against another")
    dif.add_argument("candidate", metavar="CANDIDATE")
    dif.add_argument("--against", metavar="RUN", help="baseline run or 'production' (default)")
    dif.set_defaults(handler=cmd_bench_diff)

    show = kinds.add_parser("show", parents=[common], help="pass rates, flaky rows and judged scores")
    show.add_argument("runs", nargs="*", metavar="RUN")
    show.set_defaults(handler=cmd_bench_show)

    gate = sub.add_parser("gate", parents=[common], help="apply campaign.toml's gate (exit 0 pass, 1 fail)")
    gate.add_argument("run", metavar="RUN")
    gate.add_argument("--checkpoint", type=int, metavar="STEP", help="gate a checkpoint's bench results")
    gate.set_defaults(handler=cmd_gate)

    dataset = sub.add_parser("dataset", help="build training datasets")
    actions = dataset.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    har = actions.add_parser("harvest", parents=[common], help="fresh failures + anchors from a run's results")
    har.add_argument("--from", dest="source", required=True, metavar="RUN")
    har.add_argument("--refs", required=True, metavar="REFS_JSONL", help="task_id, prompt, completion per line")
    har.add_argument("--anchors", type=int, default=20, metavar="N", help="passed rows kept as anchors (default 20)")
    har.add_argument("--seed", type=int, default=0, help="seed of the anchor sample")
    har.add_argument("--out", required=True, metavar="FILE")
    har.set_defaults(handler=cmd_dataset_harvest)
