-- Rows down, runs across: for each row i ($tasks[i], in bench $benches[i], or in any bench when
-- that is NULL) and each run of $runs, whether the run's first-sample verdict passed it in any
-- such bench (the gate's rule for anchors); passed is NULL when the run never evaluated it.
WITH
    r AS (SELECT unnest($runs::VARCHAR[]) AS run, generate_subscripts($runs::VARCHAR[], 1) AS col),
    a AS (
        SELECT unnest($tasks::VARCHAR[]) AS task_id, unnest($benches::VARCHAR[]) AS bench,
               generate_subscripts($tasks::VARCHAR[], 1) AS row_number
    )
SELECT a.row_number, r.col, bool_or(v.passed) AS passed
FROM a CROSS JOIN r
LEFT JOIN task_verdicts v
    ON v.run = r.run AND v.task_id = a.task_id AND (a.bench IS NULL OR v.bench = a.bench)
GROUP BY a.row_number, r.col
ORDER BY a.row_number, r.col
