-- $candidate and $baseline side by side per (bench, task_id) (full outer join of their verdicts).
WITH
    c AS (SELECT bench, task_id, passed, flaky, latency_ms FROM task_verdicts WHERE run = $candidate),
    b AS (SELECT bench, task_id, passed, flaky, latency_ms FROM task_verdicts WHERE run = $baseline)
SELECT coalesce(c.bench, b.bench) AS bench, coalesce(c.task_id, b.task_id) AS task_id,
       c.passed AS cp, b.passed AS bp, c.flaky AS cf, b.flaky AS bf, c.latency_ms AS cl, b.latency_ms AS bl
FROM c FULL OUTER JOIN b ON c.bench = b.bench AND c.task_id = b.task_id
