-- One verdict per (run, bench, task_id), the view every other query reads.
-- The lowest `sample` decides whether the task passed (it is the evaluation a one-sample
-- bench would have made); samples that disagree with each other make the task flaky.
SELECT
    run,
    bench,
    task_id,
    arg_min(passed, sample) AS passed,
    arg_min(error, sample) AS error,
    count(*) AS samples,
    count(*) FILTER (WHERE passed) AS samples_passed,
    count(DISTINCT passed) > 1 AS flaky,
    sum(latency_ms) AS latency_ms
FROM bench_rows
GROUP BY run, bench, task_id
