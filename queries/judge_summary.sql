-- Judged benches per run and prompt category (category NULL = the run's whole bench): mean
-- weighted overall over first samples, rows without a complete set of scores counted apart.
-- `whole` marks the per-bench line (a NULL category alone could be an uncategorised row).
-- Reads the judged_rows view (queries/judge_rows.sql).
WITH first AS (
    SELECT * FROM judged_rows
    QUALIFY row_number() OVER (PARTITION BY run, bench, task_id ORDER BY sample) = 1
)
SELECT
    run, bench, category,
    grouping(category) = 1 AS whole,
    count(*) AS rows,
    avg(overall) AS overall,
    count(*) FILTER (WHERE overall IS NULL) AS incomplete
FROM first
GROUP BY GROUPING SETS ((run, bench, category), (run, bench))
ORDER BY run, bench, category NULLS FIRST
