"""Run control: a run's state from its files, launching workers, the reaper, watch-rule evaluation."""
