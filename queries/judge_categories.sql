-- Judged benches: the mean of each score category per run and bench (first samples).
-- Reads the judged_rows view (queries/judge_rows.sql).
WITH first AS (
    SELECT * FROM judged_rows
    QUALIFY row_number() OVER (PARTITION BY run, bench, task_id ORDER BY sample) = 1
),
cells AS (SELECT run, bench, unnest(map_keys(scores)) AS name, unnest(map_values(scores)) AS value FROM first)
SELECT run, bench, name, avg(value) AS mean, count(value) AS n
FROM cells
GROUP BY run, bench, name
ORDER BY run, bench, name
