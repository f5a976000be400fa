"""Benchmark: the TUI's monitor endpoints on big runs, through the real app in process (ASGI).

    python tests/perf/bench_monitor_routes.py [--steps 1000000] [--rows 1000000] [--repeats 20] [--json]

- ``GET /runs/{run}/series`` on a metrics.jsonl of ``--steps`` steps (loss, grad_norm with one spike,
  ts): the first request (cold: the column index is built from the file), then warm requests at full
  zoom-out (200 and 4000 buckets) and zoomed in, then the first request after 1,000 appended lines;
  ``GET /runs/{run}/metric-names`` warm; ``GET /runs/summary`` cold and warm.
- ``GET /bench/rows`` on the ``--rows``-row campaign tests/perf/bench_diff.py generates (cand against
  base): the first page (the DuckDB cache is built first, timed apart), a deep page, filtered pages
  (``klass=lost``, ``q=``), and the same first page on a 2,000-row campaign for comparison.

Figures are medians (and minimums) over ``--repeats`` calls, in ms. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_diff import generate  # noqa: E402

from engine.bench.db import opened  # noqa: E402
from engine.service.app import create_app  # noqa: E402
from engine.store.campaign import Campaign  # noqa: E402

SPIKE = 50.0


def metrics_campaign(root: Path, steps: int) -> Campaign:
    campaign = Campaign.create(root, "perf")
    (campaign.root / "datasets").mkdir(exist_ok=True)
    (campaign.root / "datasets" / "train.jsonl").write_text('{"prompt": "a", "completion": "b"}\n', encoding="utf-8")
    run = campaign.run("long")
    run.root.mkdir(parents=True)
    run.run_toml.write_text('dataset = "datasets/train.jsonl"\n', encoding="utf-8")
    spike = steps * 2 // 3
    with open(run.metrics, "w", encoding="utf-8") as out:
        for step in range(1, steps + 1):
            grad = SPIKE if step == spike else 1.0 + (step % 7) * 0.01
            out.write(f'{{"step":{step},"loss":{2.0 - step * 1e-6:.6f},"grad_norm":{grad},"ts":{step}.5}}\n')
    return Campaign.open(campaign.root)


def append_steps(path: Path, first: int, count: int) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        for step in range(first, first + count):
            handle.write(f'{{"step":{step},"loss":1.0,"grad_norm":1.0,"ts":{step}.5}}\n')


async def timed(call: Callable[[], Awaitable[httpx.Response]]) -> float:
    started = time.perf_counter()
    response = await call()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{response.request.url}: {response.status_code} {response.text[:200]}")
    return elapsed


async def repeated(call: Callable[[], Awaitable[httpx.Response]], repeats: int) -> dict[str, float]:
    times = [await timed(call) for _ in range(repeats)]
    return {"median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2)}


async def series_figures(root: Path, steps: int, repeats: int) -> dict[str, Any]:
    campaign = metrics_campaign(root / "metrics", steps)
    out: dict[str, Any] = {"steps": steps, "bytes": campaign.run("long").metrics.stat().st_size}
    transport = httpx.ASGITransport(app=create_app(campaign))
    async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:

        def get(**params: Any) -> Callable[[], Awaitable[httpx.Response]]:
            return lambda: client.get("/runs/long/series", params={"metric": "grad_norm", **params})

        out["series_cold_ms"] = round(await timed(get(buckets=200)), 1)
        out["series_warm_200"] = await repeated(get(buckets=200), repeats)
        out["series_warm_4000"] = await repeated(get(buckets=4000), repeats)
        out["series_warm_zoom_1000_steps"] = await repeated(get(start=steps // 2, end=steps // 2 + 1000), repeats)
        out["metric_names_warm"] = await repeated(lambda: client.get("/runs/long/metric-names"), repeats)
        append_steps(campaign.run("long").metrics, steps + 1, 1000)
        out["series_after_1000_appended_ms"] = round(await timed(get(buckets=200)), 2)
        out["summary_cold_ms"] = round(await timed(lambda: client.get("/runs/summary")), 1)
        out["summary_warm"] = await repeated(lambda: client.get("/runs/summary"), repeats)
    return out


async def rows_figures(root: Path, rows: int, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, count in (("big", rows), ("small", 2000)):
        folder = root / f"bench-{label}"
        options = {"samples": [5, 4, 3, 2], "lost": 0.05, "gained": 0.05, "flaky": 0.03, "only": 0.001}
        generate(folder, rows=count, seed=20260502, **options)
        campaign = Campaign.open(folder)
        started = time.perf_counter()
        with opened(campaign):
            pass
        figures: dict[str, Any] = {"rows": count, "cache_build_ms": round((time.perf_counter() - started) * 1000, 1)}
        transport = httpx.ASGITransport(app=create_app(campaign))
        async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:

            def page(**params: Any) -> Callable[[], Awaitable[httpx.Response]]:
                return lambda: client.get("/bench/rows", params={"candidate": "cand", "against": "base", **params})

            total = (await page()()).json()["total"]
            figures["diff_rows_total"] = total
            figures["first_page_100"] = await repeated(page(), repeats)
            figures["deep_page_100"] = await repeated(page(offset=max(0, total - 150)), repeats)
            figures["lost_page_sorted_by_task_id"] = await repeated(page(klass="lost", sort="task_id"), repeats)
            figures["q_substring_page"] = await repeated(page(q="timed out"), repeats)
        out[label] = figures
    return out


def report(result: dict[str, Any]) -> str:
    s, r = result["series"], result["rows"]
    lines = [
        f"series on {s['steps']:,} steps ({s['bytes'] / 1e6:.0f} MB): cold {s['series_cold_ms']:.0f} ms, "
        f"warm 200 buckets {s['series_warm_200']['median_ms']} ms, "
        f"4000 buckets {s['series_warm_4000']['median_ms']} ms, "
        f"zoom 1000 steps {s['series_warm_zoom_1000_steps']['median_ms']} ms, "
        f"after 1000 appended lines {s['series_after_1000_appended_ms']} ms",
        f"metric-names warm {s['metric_names_warm']['median_ms']} ms; "
        f"summary cold {s['summary_cold_ms']} ms, warm {s['summary_warm']['median_ms']} ms",
    ]
    for label in ("big", "small"):
        f = r[label]
        lines.append(
            f"bench rows, {f['rows']:,}-row campaign ({f['diff_rows_total']:,} diff rows; cache built in "
            f"{f['cache_build_ms']:.0f} ms): first page {f['first_page_100']['median_ms']} ms, deep page "
            f"{f['deep_page_100']['median_ms']} ms, "
            f"lost by task_id {f['lost_page_sorted_by_task_id']['median_ms']} ms, "
            f"q= {f['q_substring_page']['median_ms']} ms"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="td-bench-monitor-"))
    try:
        result = {
            "series": asyncio.run(series_figures(root, args.steps, args.repeats)),
            "rows": asyncio.run(rows_figures(root, args.rows, args.repeats)),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
