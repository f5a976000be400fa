-- Pass rate per run and bench. $runs: a list of run refs, or NULL for every run.
-- total counts distinct task ids; passed counts tasks whose first sample passed.
SELECT
    run,
    bench,
    count(*) AS total,
    count(*) FILTER (WHERE passed) AS passed,
    count(*) FILTER (WHERE passed) / count(*) AS pass_rate,
    count(*) FILTER (WHERE flaky) AS flaky,
    sum(samples) AS rows,
    sum(latency_ms) AS latency_ms
FROM task_verdicts
WHERE $runs::VARCHAR[] IS NULL OR list_contains($runs::VARCHAR[], run)
GROUP BY run, bench
ORDER BY run, bench
