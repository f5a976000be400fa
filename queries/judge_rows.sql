-- Judged benches: each row's weighted overall from the category weights declared in
-- campaign.toml ($categories and $weights, two lists of the same length), never the judge's
-- own overall. A row missing a declared category has no overall (NULL) rather than a
-- silently re-weighted one. $runs: a list of run refs, or NULL for all.
WITH
    w AS (SELECT unnest($categories::VARCHAR[]) AS name, unnest($weights::DOUBLE[]) AS weight),
    r AS (
        SELECT run, bench, task_id, sample, category, scores
        FROM bench_rows
        WHERE scores IS NOT NULL AND ($runs::VARCHAR[] IS NULL OR list_contains($runs::VARCHAR[], run))
    ),
    s AS (
        SELECT r.run, r.bench, r.task_id, r.sample, r.category, w.name, w.weight,
               TRY_CAST(json_extract(r.scores, '$."' || w.name || '"') AS DOUBLE) AS value
        FROM r CROSS JOIN w
    )
SELECT
    run, bench, task_id, sample, category,
    CASE WHEN count(value) = count(*) THEN sum(weight * value) / sum(weight) END AS overall,
    map(list(name ORDER BY name), list(value ORDER BY name)) AS scores
FROM s
GROUP BY run, bench, task_id, sample, category
ORDER BY run, bench, length(task_id), task_id, sample
