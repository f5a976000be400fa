"""Registry endpoints of the engine service: production, the history, promote and revert (the Registry screen's).

The answers are the CLI's ``--json`` models from the same functions (engine.decisions.registry).
A refused promote or revert (the gate failed, no artifact, nothing to undo) answers **200** with a
``RegistryResult`` whose ``done`` is false and ``refused`` names the check — exactly what
``tunedeck promote --json`` prints with exit status 1 — so the TUI reads the gate's reasons from
one shape. Bad input (an unknown or invalid run, an empty reason, ``force`` without one) answers
4xx with a one-line ``detail``, as every route does. The routes are plain ``def``: FastAPI runs
them in its thread pool, so the lock wait, the gate's DuckDB and the artifact's hashing never
block the event loop.
"""

from __future__ import annotations

from fastapi import FastAPI

from engine.api import ProductionState, PromoteRequest, RegistryHistory, RegistryResult, RevertRequest
from engine.decisions import registry
from engine.store.campaign import Campaign


def add_registry_routes(app: FastAPI, campaign: Campaign) -> None:
    """GET /production, GET /registry, POST /registry/promote and POST /registry/revert."""

    @app.get("/production", response_model=ProductionState)
    def production() -> ProductionState:
        return registry.production_state(campaign)

    @app.get("/registry", response_model=RegistryHistory)
    def history() -> RegistryHistory:
        return registry.history(campaign)

    @app.post("/registry/promote", response_model=RegistryResult)
    def promote(request: PromoteRequest) -> RegistryResult:
        return registry.promote(
            campaign, request.run, artifact=request.artifact, reason=request.reason, force=request.force,
            dry_run=request.dry_run,
        )  # fmt: skip

    @app.post("/registry/revert", response_model=RegistryResult)
    def revert(request: RevertRequest) -> RegistryResult:
        return registry.revert(campaign, reason=request.reason, dry_run=request.dry_run)
