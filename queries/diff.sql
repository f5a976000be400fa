-- Row-by-row diff over diff_joined: the row key, its class, and whether either side is flaky,
-- ordered by bench, then task ids in natural order (length first).
SELECT
    bench || ':' || task_id AS key,
    CASE
        WHEN cp IS NULL THEN 'only_baseline'
        WHEN bp IS NULL THEN 'only_candidate'
        WHEN bp AND cp THEN 'kept'
        WHEN bp THEN 'lost'
        WHEN cp THEN 'gained'
        ELSE 'still_failing'
    END AS class,
    coalesce(cf, false) OR coalesce(bf, false) AS flaky
FROM diff_joined
ORDER BY bench, length(task_id), task_id
