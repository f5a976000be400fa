"""Promote a run to production, revert to the one before, and the history: registry.jsonl is the truth.

Each change holds the registry lock (an flock in ``.tunedeck/registry.lock``, across processes)
around read-log, decide, append, replace: it replays registry.jsonl (engine.decisions.registry_log),
runs its checks, appends one whole synced line, then replaces production.json atomically (or removes
it when nothing is left in production). A process killed between the append and the replace leaves
production.json one change behind the log; the next change (or ``rebuild``) brings it up to date. A
production.json that agrees with neither (edited by hand) is refused until ``rebuild`` rewrites it
from the log — its content is a user's, and is not overwritten silently.

Promote runs the gate first (campaign.toml [gate]; a run without bench results fails it with the
gate's own words), then checks the artifact (registry_artifact), so a failing gate is what a person
hears first. ``force`` overrides the gate only, and only with a reason. Promoting exactly what is
in production already (same run, artifact and hash) is refused as ``unchanged``: nothing to log.
Revert undoes the latest promote not yet undone, so repeated reverts walk back through history;
undoing the first promote of a campaign that had no production removes production.json.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from engine.api import (
    GateAnchors,
    GateResult,
    GateSummary,
    ProductionPointer,
    ProductionState,
    RegistryEntry,
    RegistryHistory,
    RegistryResult,
)
from engine.api.registry import MAX_REASON, Refusal, RegistryAction
from engine.bench.answers import gate as evaluate_gate
from engine.decisions.registry_artifact import ArtifactRefused, locate, recheck
from engine.decisions.registry_log import Replayed, append_entry, cut_torn_tail, kind_of, replay
from engine.errors import ConfigError, NotFoundError, TunedeckError
from engine.store.campaign import Campaign
from engine.store.locks import LockHeld
from engine.store.names import validate_run_name
from engine.store.production import (
    production_path,
    read_production,
    registry_lock,
    registry_path,
    write_production,
)
from engine.store.safe_paths import refuse_symlinks

LOCK_WAIT_S = 60.0  # a promote hashes its artifact under the lock: a large merged model takes a while
MAX_GATE_REASON = 2000  # characters of one gate reason kept in a line (a lost-rows list can be huge)


class Refused(Exception):
    """A check refused the change; nothing was written."""

    def __init__(self, kind: Refusal, message: str, gate: GateResult | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.gate = kind, message, gate


# -- reading ---------------------------------------------------------------------------------


def file_pointer(campaign: Campaign) -> ProductionPointer | None:
    """production.json as a pointer (a hand-written one may lack every key but ``run``)."""
    path = refuse_symlinks(production_path(campaign))
    pointer = read_production(campaign)
    if pointer is None:
        return None
    for key in ("artifact", "sha256", "promoted_at"):
        if not isinstance(pointer.get(key), str | None):
            raise ConfigError("expected a string", path=path, field=key)
    artifact = pointer.get("artifact")
    return ProductionPointer(
        run=pointer["run"], artifact=artifact, kind=kind_of(artifact),
        sha256=pointer.get("sha256"), promoted_at=pointer.get("promoted_at"),
    )  # fmt: skip


def _same(a: ProductionPointer | None, b: ProductionPointer | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.run, a.artifact, a.sha256) == (b.run, b.artifact, b.sha256)


def _name(pointer: ProductionPointer | None) -> str:
    return "nothing" if pointer is None else pointer.run


def _sync_note(on_disk: ProductionPointer | None, log: Replayed) -> tuple[bool, str | None]:
    """Whether production.json is what the log implies, and a note when it is not (or there is no log)."""
    if not log.entries:
        if on_disk is None:
            return True, "nothing promoted yet"
        return True, "no registry.jsonl yet: production.json is the starting state"
    if _same(on_disk, log.production):
        return True, None
    if _same(on_disk, log.before_last):
        return False, (
            "production.json is one change behind registry.jsonl (a promote or revert was interrupted): "
            "the next promote or revert, or 'tunedeck history --rebuild', brings it up to date"
        )
    return False, (
        f"production.json ({_name(on_disk)}) disagrees with registry.jsonl ({_name(log.production)}): "
        "edited by hand? 'tunedeck history --rebuild' rewrites it from the log"
    )


def production_state(campaign: Campaign) -> ProductionState:
    """production.json, and whether it agrees with registry.jsonl."""
    on_disk = file_pointer(campaign)
    in_sync, note = _sync_note(on_disk, replay(registry_path(campaign), on_disk))
    return ProductionState(production=on_disk, in_sync=in_sync, note=note)


def history(campaign: Campaign) -> RegistryHistory:
    """The log, oldest first, with production.json as it is."""
    on_disk = file_pointer(campaign)
    log = replay(registry_path(campaign), on_disk)
    in_sync, note = _sync_note(on_disk, log)
    return RegistryHistory(
        production=on_disk, in_sync=in_sync, note=note, entries=log.entries, can_revert=bool(log.undoable)
    )


# -- the locked section ----------------------------------------------------------------------


@contextmanager
def _locked(campaign: Campaign, *, dry_run: bool, wait_s: float) -> Iterator[None]:
    """The registry lock, except for a dry run (which writes nothing)."""
    if dry_run:
        yield
        return
    lock = registry_lock(campaign)
    try:
        lock.acquire(wait_s=wait_s)
    except LockHeld as exc:
        raise Refused("busy", f"{exc.message}: try again in a moment") from None
    try:
        yield
    finally:
        lock.release()


def _load(campaign: Campaign, *, dry_run: bool, warnings: list[str]) -> Replayed:
    """The log replayed, after repairing what a killed writer left (not on a dry run)."""
    path = registry_path(campaign)
    refuse_symlinks(path)
    if not dry_run and (cut := cut_torn_tail(path)):
        warnings.append(f"cut a torn last line ({cut} bytes, a writer killed mid-write) off {path.name}")
    on_disk = file_pointer(campaign)
    log = replay(path, on_disk)
    in_sync, note = _sync_note(on_disk, log)
    if in_sync:
        return log
    if not _same(on_disk, log.before_last):
        raise Refused("out_of_sync", f"refused: {note}")
    if not dry_run:
        write_production(campaign, _pointer_json(log.production))
    warnings.append("production.json was one change behind registry.jsonl (an interrupted change): brought up to date")
    return log


def _pointer_json(pointer: ProductionPointer | None) -> dict[str, object] | None:
    return None if pointer is None else pointer.model_dump(mode="json")


def _who() -> tuple[str, str]:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no passwd entry for this uid (a container)
        user = f"uid {os.getuid()}"
    return user, socket.gethostname()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _entry(
    log: Replayed, action: RegistryAction, to: ProductionPointer | None, *, gate: GateSummary | None,
    reason: str | None, undoes: int | None,
) -> RegistryEntry:  # fmt: skip
    user, host = _who()
    before = log.production
    return RegistryEntry(
        seq=log.next_seq, time=_now(), user=user, host=host, action=action,
        from_run=before.run if before else None, from_artifact=before.artifact if before else None,
        from_sha256=before.sha256 if before else None,
        to_run=to.run if to else None, to_artifact=to.artifact if to else None, to_sha256=to.sha256 if to else None,
        gate=gate, reason=reason, undoes=undoes,
    )  # fmt: skip


def _commit(campaign: Campaign, entry: RegistryEntry, after: ProductionPointer | None) -> ProductionPointer | None:
    """Append the line, then replace production.json; production as it now is."""
    if after is not None:
        after = after.model_copy(update={"promoted_at": entry.time})
    append_entry(registry_path(campaign), entry)
    write_production(campaign, _pointer_json(after))
    return after


# -- checks ----------------------------------------------------------------------------------


def check_reason(reason: str | None, *, force: bool, field: str = "--reason") -> str | None:
    """The reason stripped; refused when empty, too long, or missing on a force."""
    if reason is not None:
        reason = reason.strip()
        if not reason:
            raise TunedeckError("is empty: say why in a few words, or leave it out", field=field)
        if len(reason) > MAX_REASON:
            raise TunedeckError(
                f"is {len(reason):,} characters, over the {MAX_REASON:,} a reason may hold", field=field
            )
    if force and reason is None:
        raise TunedeckError(
            "needs a reason (--reason TEXT): say why the gate is overridden; it is logged", field="--force"
        )
    return reason


def _gate(campaign: Campaign, run: str, warnings: list[str]) -> GateResult | None:
    """campaign.toml's gate on ``run`` (None without [gate]); a gate that cannot be applied fails."""
    if campaign.config.gate is None:
        return None
    try:
        result, skipped = evaluate_gate(campaign, run)
    except NotFoundError as exc:  # no bench results for the run, or for production (max_lost)
        empty = GateAnchors(total=0, passed=0, failed=[], missing=[])
        return GateResult(
            run=run, passed=False, anchors=empty, lost=[], production=None, pass_rates={}, reasons=[str(exc)], notes=[]
        )
    warnings.extend(f"bench: skipped {line}" for line in skipped)
    return result


def _gate_summary(result: GateResult | None, *, forced: bool) -> GateSummary:
    if result is None:
        return GateSummary(verdict="no gate", reasons=[], forced=False)
    reasons = [r if len(r) <= MAX_GATE_REASON else r[:MAX_GATE_REASON] + " ..." for r in result.reasons]
    return GateSummary(
        verdict="passed" if result.passed else "failed", reasons=reasons, forced=forced and not result.passed
    )


def _refused(
    campaign: Campaign, action: RegistryAction, exc: Refused, *, dry_run: bool, warnings: list[str]
) -> RegistryResult:
    return RegistryResult(
        action=action, done=False, dry_run=dry_run, refused=exc.kind, message=exc.message, gate=exc.gate, entry=None,
        production=_production_quietly(campaign), warnings=warnings,
    )  # fmt: skip


# -- the operations --------------------------------------------------------------------------


def promote(
    campaign: Campaign, run: str, *, artifact: str = "merged", reason: str | None = None, force: bool = False,
    dry_run: bool = False, wait_s: float = LOCK_WAIT_S,
) -> RegistryResult:  # fmt: skip
    """Put ``run``'s merged model or adapter in production, if its gate passes (or ``force`` with a reason)."""
    validate_run_name(run, field="RUN")
    campaign.load_run(run)  # an unknown run (or a broken run.toml) is bad input, before anything else
    if artifact not in ("merged", "adapter"):
        raise TunedeckError(f"{artifact!r}: choose merged or adapter", field="--artifact")
    reason = check_reason(reason, force=force)
    warnings: list[str] = []
    try:
        with _locked(campaign, dry_run=dry_run, wait_s=wait_s):
            log = _load(campaign, dry_run=dry_run, warnings=warnings)
            return _promote_locked(campaign, log, run, artifact, reason, force, dry_run, warnings)
    except Refused as exc:
        return _refused(campaign, "promote", exc, dry_run=dry_run, warnings=warnings)


def _promote_locked(
    campaign: Campaign, log: Replayed, run: str, kind: str, reason: str | None, force: bool, dry_run: bool,
    warnings: list[str],
) -> RegistryResult:  # fmt: skip
    gate = _gate(campaign, run, warnings)
    if gate is not None and not gate.passed and not force:
        raise Refused(
            "gate",
            f"refused: the gate failed for {run} ({'; '.join(gate.reasons)}); nothing changed "
            "(--force --reason TEXT overrides it)",
            gate,
        )
    try:
        found = locate(campaign, run, kind)
    except ArtifactRefused as exc:
        raise Refused("artifact", f"refused: {exc}", gate) from None
    now = log.production
    if now is not None and (now.run, now.artifact, now.sha256) == (run, found.path, found.sha256):
        raise Refused("unchanged", f"{run} is already in production ({found.path}, same content): nothing to do", gate)
    summary = _gate_summary(gate, forced=force)
    after = ProductionPointer(run=run, artifact=found.path, kind=kind, sha256=found.sha256, promoted_at=None)
    entry = _entry(log, "promote", after, gate=summary, reason=reason, undoes=None)
    production = after.model_copy(update={"promoted_at": entry.time}) if dry_run else _commit(campaign, entry, after)
    verdict = summary.verdict + (", forced" if summary.forced else "")
    message = (
        f"{'would promote' if dry_run else 'promoted'} {run} ({found.path}, sha256 {found.sha256[:12]}) "
        f"over {_name(now)}; gate: {verdict}"
    )
    return RegistryResult(
        action="promote", done=not dry_run, dry_run=dry_run, refused=None, message=message, gate=gate, entry=entry,
        production=production, warnings=warnings,
    )  # fmt: skip


def revert(
    campaign: Campaign, *, reason: str | None = None, dry_run: bool = False, wait_s: float = LOCK_WAIT_S
) -> RegistryResult:
    """Undo the latest promote not yet undone: production goes back to what that promote replaced."""
    reason = check_reason(reason, force=False)
    warnings: list[str] = []
    try:
        with _locked(campaign, dry_run=dry_run, wait_s=wait_s):
            log = _load(campaign, dry_run=dry_run, warnings=warnings)
            if not log.undoable:
                what = "every promote in registry.jsonl is undone" if log.entries else "no promote is recorded"
                raise Refused("nothing_to_undo", f"nothing to revert: {what}")
            seq, previous = log.undoable[-1]
            if previous is not None and (note := recheck(campaign, previous.artifact, previous.sha256)):
                warnings.append(note)
            entry = _entry(log, "revert", previous, gate=None, reason=reason, undoes=seq)
            if dry_run:
                production = previous.model_copy(update={"promoted_at": entry.time}) if previous else None
            else:
                production = _commit(campaign, entry, previous)
    except Refused as exc:
        return _refused(campaign, "revert", exc, dry_run=dry_run, warnings=warnings)
    gone = "no production (production.json removed)" if production is None else f"{production.run}"
    message = (
        f"{'would revert' if dry_run else 'reverted'} promote #{seq}: production {_name(log.production)} -> {gone}"
    )
    return RegistryResult(
        action="revert", done=not dry_run, dry_run=dry_run, refused=None, message=message, gate=None, entry=entry,
        production=production, warnings=warnings,
    )  # fmt: skip


def rebuild(campaign: Campaign, *, wait_s: float = LOCK_WAIT_S) -> tuple[ProductionState, bool]:
    """Rewrite production.json from registry.jsonl; whether anything was rewritten (no log: nothing is)."""
    try:
        with _locked(campaign, dry_run=False, wait_s=wait_s):
            path = registry_path(campaign)
            cut_torn_tail(path)
            log = replay(path, file_pointer(campaign))
            changed = bool(log.entries) and not _same(file_pointer(campaign), log.production)
            if changed:
                write_production(campaign, _pointer_json(log.production))
    except Refused as exc:
        raise TunedeckError(exc.message) from None
    return production_state(campaign), changed


def _production_quietly(campaign: Campaign) -> ProductionPointer | None:
    """production.json for a refusal's answer, or None when it cannot be read (that is the refusal)."""
    try:
        return file_pointer(campaign)
    except TunedeckError:
        return None
