-- Per-task eval rewards from runs' metrics (keys `eval/<task>`, as TRL and the V4.1 handoff
-- log them), read from the run_metrics table (run, step, metric, value) tunedeck fills from
-- metrics.jsonl. For each run and task: the last value, the best value and its step, and the
-- delta of the last value against the frozen $baseline run (NULL when it lacks the task).
WITH
    m AS (SELECT * FROM run_metrics WHERE metric LIKE 'eval/%' AND isfinite(value)),
    per AS (
        SELECT run, metric,
               arg_max(value, step) AS last, max(step) AS last_step,
               max(value) AS best, arg_max(step, value) AS best_step, count(*) AS points
        FROM m
        GROUP BY run, metric
    )
SELECT p.run, p.metric, p.last, p.last_step, p.best, p.best_step, p.points,
       p.last - b.last AS delta
FROM per p LEFT JOIN per b ON b.metric = p.metric AND b.run = $baseline
ORDER BY p.run, p.metric
