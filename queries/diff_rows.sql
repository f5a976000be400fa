-- The diff's rows of $candidate against $baseline, one per (bench, task_id), with the filters of
-- GET /bench/rows applied: $klasses (a list of classes, NULL for all), $benches (a list of bench
-- names, NULL for all) and $q (a case-insensitive substring of the task id or the candidate's
-- error, NULL for none). Materialised into diff_rows_filtered for diff_rows_page and diff_rows_total.
WITH
    c AS (SELECT bench, task_id, passed, flaky, error FROM task_verdicts WHERE run = $candidate),
    b AS (SELECT bench, task_id, passed, flaky FROM task_verdicts WHERE run = $baseline),
    j AS (
        SELECT coalesce(c.bench, b.bench) AS bench, coalesce(c.task_id, b.task_id) AS task_id,
               c.passed AS candidate_passed, b.passed AS baseline_passed,
               coalesce(c.flaky, false) OR coalesce(b.flaky, false) AS flaky,
               CASE WHEN NOT c.passed THEN c.error END AS error
        FROM c FULL OUTER JOIN b ON c.bench = b.bench AND c.task_id = b.task_id
    ),
    classified AS (
        SELECT bench, task_id,
               CASE
                   WHEN candidate_passed IS NULL THEN 'only_baseline'
                   WHEN baseline_passed IS NULL THEN 'only_candidate'
                   WHEN baseline_passed AND candidate_passed THEN 'kept'
                   WHEN baseline_passed THEN 'lost'
                   WHEN candidate_passed THEN 'gained'
                   ELSE 'still_failing'
               END AS klass,
               candidate_passed, baseline_passed, flaky, error
        FROM j
    )
SELECT *
FROM classified
WHERE ($klasses::VARCHAR[] IS NULL OR list_contains($klasses::VARCHAR[], klass))
  AND ($benches::VARCHAR[] IS NULL OR list_contains($benches::VARCHAR[], bench))
  AND ($q::VARCHAR IS NULL
       OR contains(lower(task_id), lower($q::VARCHAR))
       OR contains(lower(coalesce(error, '')), lower($q::VARCHAR)))
