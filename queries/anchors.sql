-- Gate anchors: for each task id in $anchors, whether $run passed it in any bench.
-- passed is NULL when the run has no row with that task id at all.
WITH a AS (SELECT unnest($anchors::VARCHAR[]) AS task_id, generate_subscripts($anchors::VARCHAR[], 1) AS position)
SELECT a.task_id, bool_or(v.passed) AS passed, list(v.bench ORDER BY v.bench) FILTER (WHERE v.bench IS NOT NULL) AS benches
FROM a LEFT JOIN task_verdicts v ON v.task_id = a.task_id AND v.run = $run
GROUP BY a.task_id, a.position
ORDER BY a.position
