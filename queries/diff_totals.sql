-- Per-bench totals of the diff of $candidate against $baseline: pass counts on each side
-- (over each side's own rows), the four classes over the rows both evaluated, and the
-- pass-rate delta. Wall time is the sum of the rows' latencies when they are known.
WITH
    c AS (SELECT bench, task_id, passed, flaky, latency_ms FROM task_verdicts WHERE run = $candidate),
    b AS (SELECT bench, task_id, passed, flaky, latency_ms FROM task_verdicts WHERE run = $baseline),
    j AS (
        SELECT coalesce(c.bench, b.bench) AS bench, c.passed AS cp, b.passed AS bp,
               c.flaky AS cf, b.flaky AS bf, c.latency_ms AS cl, b.latency_ms AS bl
        FROM c FULL OUTER JOIN b ON c.bench = b.bench AND c.task_id = b.task_id
    )
SELECT
    bench,
    count(bp) AS baseline_total,
    count(*) FILTER (WHERE bp) AS baseline_passed,
    count(cp) AS candidate_total,
    count(*) FILTER (WHERE cp) AS candidate_passed,
    count(*) FILTER (WHERE bp AND cp) AS kept,
    count(*) FILTER (WHERE bp AND NOT cp) AS lost,
    count(*) FILTER (WHERE NOT bp AND cp) AS gained,
    count(*) FILTER (WHERE NOT bp AND NOT cp) AS still_failing,
    count(*) FILTER (WHERE bp IS NULL) AS only_candidate,
    count(*) FILTER (WHERE cp IS NULL) AS only_baseline,
    count(*) FILTER (WHERE cf OR bf) AS flaky,
    count(*) FILTER (WHERE cp) / nullif(count(cp), 0) - count(*) FILTER (WHERE bp) / nullif(count(bp), 0) AS delta,
    sum(bl) AS baseline_latency_ms,
    sum(cl) AS candidate_latency_ms
FROM j
GROUP BY bench
ORDER BY bench
