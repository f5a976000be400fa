"""``tunedeck demo``: the tiny-model campaign, its reverse task and its held-out suite."""
