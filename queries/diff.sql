-- Row-by-row diff of $candidate against $baseline per (bench, task_id):
-- kept (pass -> pass), lost (pass -> fail), gained (fail -> pass), still_failing (fail -> fail),
-- and rows only one side evaluated. Ordered by bench, then task ids in natural order
-- (length first, so MBPP/17 sorts before MBPP/105 without parsing numbers).
WITH
    c AS (SELECT bench, task_id, passed, flaky FROM task_verdicts WHERE run = $candidate),
    b AS (SELECT bench, task_id, passed, flaky FROM task_verdicts WHERE run = $baseline)
SELECT * FROM (
SELECT
    coalesce(c.bench, b.bench) AS bench,
    coalesce(c.task_id, b.task_id) AS task_id,
    CASE
        WHEN c.passed IS NULL THEN 'only_baseline'
        WHEN b.passed IS NULL THEN 'only_candidate'
        WHEN b.passed AND c.passed THEN 'kept'
        WHEN b.passed THEN 'lost'
        WHEN c.passed THEN 'gained'
        ELSE 'still_failing'
    END AS class,
    coalesce(c.flaky, false) AS candidate_flaky,
    coalesce(b.flaky, false) AS baseline_flaky
FROM c FULL OUTER JOIN b ON c.bench = b.bench AND c.task_id = b.task_id
)
ORDER BY bench, length(task_id), task_id
