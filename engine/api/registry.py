"""The registry: the production pointer, the promote / revert log, and what a promote or revert did.

The same models answer ``tunedeck promote|revert|history --json`` and the service's
``/production`` and ``/registry`` routes. A refused promote or revert is not an error of the
request: it is a ``RegistryResult`` with ``done = false`` and ``refused`` saying which check
refused it (the CLI exits 1, the service answers 200).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.api.base import ApiModel
from engine.api.bench import GateResult

RegistryAction = Literal["promote", "revert"]
ArtifactKind = Literal["merged", "adapter"]
GateVerdict = Literal["passed", "failed", "no gate"]
# Which check refused: the gate; the artifact (missing or not whole); the same artifact is already
# production; nothing left to revert; production.json edited by hand away from the log; the lock.
Refusal = Literal["gate", "artifact", "unchanged", "nothing_to_undo", "out_of_sync", "busy"]
MAX_REASON = 1000  # characters; a reason is a sentence or two, not a document


class ProductionPointer(ApiModel):
    """``production.json``: the run in production and the artifact serving it."""

    run: str
    artifact: str | None = Field(description="the model folder, relative to the campaign")
    kind: ArtifactKind | None = Field(description="merged model or adapter (on the run's base); None if unknown")
    sha256: str | None = Field(description="content hash of the artifact's files when it was promoted")
    promoted_at: str | None = Field(description="UTC ISO time it became production")


class GateSummary(ApiModel):
    """The gate as a registry line records it."""

    verdict: GateVerdict
    reasons: list[str] = Field(description="the failed rules, each naming its rows; empty when passed")
    forced: bool = Field(description="promoted despite a failed gate (--force with a reason)")


class RegistryEntry(ApiModel):
    """One line of ``registry.jsonl``: who changed production, when, from what to what, and why."""

    seq: int = Field(description="1 for the first line, then one more per line")
    time: str = Field(description="UTC ISO time")
    user: str
    host: str
    action: RegistryAction
    from_run: str | None = Field(description="production before (None: there was none)")
    from_artifact: str | None
    from_sha256: str | None
    to_run: str | None = Field(description="production after (None: a revert of the first promote)")
    to_artifact: str | None
    to_sha256: str | None
    gate: GateSummary | None = Field(description="promote only: a revert does not run the gate")
    reason: str | None
    undoes: int | None = Field(description="revert only: the seq of the promote it undoes")


class RegistryResult(ApiModel):
    """What ``promote`` or ``revert`` did (``done``), or would do (``dry_run``), or why it refused."""

    action: RegistryAction
    done: bool = Field(description="a line was appended and production.json replaced")
    dry_run: bool
    refused: Refusal | None
    message: str = Field(description="one line: what was done, or why nothing was")
    gate: GateResult | None = Field(description="promote on a campaign with [gate]: the gate's full answer")
    entry: RegistryEntry | None = Field(description="the line appended (dry run: the line it would append)")
    production: ProductionPointer | None = Field(description="production after the call")
    warnings: list[str]


class ProductionState(ApiModel):
    """``GET /production``: production.json, and whether it agrees with registry.jsonl."""

    production: ProductionPointer | None
    in_sync: bool = Field(description="production.json is what registry.jsonl implies")
    note: str | None = Field(description="why not in sync, or that there is no registry.jsonl yet")


class RegistryHistory(ApiModel):
    """``tunedeck history --json`` and ``GET /registry``: the log, oldest first, and production now."""

    production: ProductionPointer | None
    in_sync: bool
    note: str | None
    entries: list[RegistryEntry]
    can_revert: bool = Field(description="the log holds a promote not yet undone")


class PromoteRequest(ApiModel):
    """Body of ``POST /registry/promote``."""

    run: str = Field(min_length=1, max_length=200)
    artifact: ArtifactKind = "merged"
    reason: str | None = Field(None, max_length=MAX_REASON)
    force: bool = Field(False, description="promote despite a failed gate; needs a reason")
    dry_run: bool = Field(False, description="run every check, change nothing")


class RevertRequest(ApiModel):
    """Body of ``POST /registry/revert``."""

    reason: str | None = Field(None, max_length=MAX_REASON)
    dry_run: bool = False
