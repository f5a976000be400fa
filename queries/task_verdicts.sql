-- One verdict per (run, bench, task_id), the view every other query reads.
-- The lowest `sample` decides whether the task passed (it is the evaluation a one-sample
-- bench would have made); samples that disagree with each other make the task flaky.
-- A judge error (the judge's answer could not be read) is no evaluation of the model: it is
-- left out here ($judge_error: the prefix of its `error`), so it never counts as a failed row,
-- a LOST row or a flaky one.
SELECT
    run,
    bench,
    task_id,
    arg_min(passed, sample) AS passed,
    arg_min(error, sample) AS error,
    count(*) AS samples,
    count(*) FILTER (WHERE passed) AS samples_passed,
    count(DISTINCT passed) > 1 AS flaky,
    -- In sample order: a plain sum of doubles depends on the order DuckDB's threads meet the rows,
    -- so two builds from the same files differed in the last bit; the cache must be what a rebuild makes.
    sum(latency_ms ORDER BY sample) AS latency_ms
FROM bench_rows
WHERE error IS NULL OR NOT starts_with(error, $judge_error)
GROUP BY run, bench, task_id
