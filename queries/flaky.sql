-- Tasks whose repeated samples disagree, per run. $runs: a list of run refs, or NULL for all.
SELECT run, bench, task_id, samples, samples_passed
FROM task_verdicts
WHERE flaky AND ($runs::VARCHAR[] IS NULL OR list_contains($runs::VARCHAR[], run))
ORDER BY run, bench, length(task_id), task_id
