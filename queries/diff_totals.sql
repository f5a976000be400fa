-- Per-bench totals over diff_joined.
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
FROM diff_joined
GROUP BY bench
ORDER BY bench
