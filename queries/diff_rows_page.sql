-- One page of diff_rows_filtered (queries/diff_rows.sql), ordered by $sort: 'bench' (bench, then
-- task ids in natural order, length first), 'task_id' (natural order, then bench) or 'klass'
-- (kept, lost, gained, still_failing, only_candidate, only_baseline, then as 'bench').
SELECT bench, task_id, klass, candidate_passed, baseline_passed, flaky, error
FROM diff_rows_filtered
ORDER BY
    CASE WHEN $sort = 'klass' THEN
        list_position(['kept', 'lost', 'gained', 'still_failing', 'only_candidate', 'only_baseline'], klass)
    END,
    CASE WHEN $sort = 'task_id' THEN length(task_id) END,
    CASE WHEN $sort = 'task_id' THEN task_id END,
    bench, length(task_id), task_id
LIMIT $limit OFFSET $offset
