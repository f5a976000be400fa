"""Decisions: decision trees that recommend the next run, and the production registry (promote / revert).

Above the bench layer (a tree reads pass rates, diffs and the gate; promotion runs the gate) and
below the service and the CLI, which both answer with the same models (``engine.api``).
"""
