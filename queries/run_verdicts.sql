-- Every verdict of $run, ordered by bench, then task ids in natural order (length first).
SELECT bench, task_id, passed
FROM task_verdicts
WHERE run = $run
ORDER BY bench, length(task_id), task_id
