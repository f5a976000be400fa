-- Metric values handed over as four lists of one length ($runs, $steps, $metrics, $values),
-- one (run, step, metric, value) row per position: the run_metrics table eval_rewards reads.
SELECT unnest($runs::VARCHAR[]) AS run,
       unnest($steps::BIGINT[]) AS step,
       unnest($metrics::VARCHAR[]) AS metric,
       unnest($values::DOUBLE[]) AS value
