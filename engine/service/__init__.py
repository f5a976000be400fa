"""The engine service: owns the runs of one campaign; the TUI and the CLI are its clients.

It never imports torch: training, merging and generation happen in worker processes that
it spawns in sessions of their own, so they outlive it and a new service re-adopts them.
"""
