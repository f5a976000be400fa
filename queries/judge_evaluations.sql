-- Judged benches: every scored evaluation (all samples and repeats) with its weighted overall,
-- for the bootstrap intervals of engine.bench.noise. Reads the judged_rows table
-- (queries/judge_rows.sql); rows without a complete set of scores have no overall and are left out.
SELECT run, bench, task_id, coalesce(category, '(none)') AS category, sample, overall
FROM judged_rows
WHERE overall IS NOT NULL
ORDER BY run, bench, task_id, sample
