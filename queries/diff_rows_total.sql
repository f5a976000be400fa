-- How many rows diff_rows_filtered (queries/diff_rows.sql) holds: the total over every page.
SELECT count(*) AS total FROM diff_rows_filtered
