-- Every ref (RUN or RUN@STEP) with bench results, sorted.
SELECT DISTINCT run FROM task_verdicts ORDER BY run
