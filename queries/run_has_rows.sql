-- Whether $run has any bench row at all: one row when it has, none when it has not.
SELECT 1 AS found FROM bench_rows WHERE run = $run LIMIT 1
