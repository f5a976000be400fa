-- The rows $run passes, as "<bench>:<task_id>" keys.
SELECT bench || ':' || task_id AS key
FROM task_verdicts
WHERE run = $run AND passed
ORDER BY bench, length(task_id), task_id
