"""The asset actor: moves one parent asset forward, ingested → syncing, while it can move.

Before each step it asks the lanes whether it may go: a closed lane (ARS, local storage) or a held group
(its workstation, collection, ...) parks the asset in the store and frees the actor slot. Each step
(:mod:`._ars_steps`) brackets its ARS side effect with a persisted intent, so a crash is settled by asking ARS.

Errors are classified by scope first (would the next asset get the same answer?), never swallowed:

- site (``InfrastructureError``): the lane pauses with a reason a human can act on; the asset waits for it;
- group (``GroupHeld``): that group is held; the asset waits for it; other groups go on;
- this asset must wait (``AssetWaits``): a wake-up later, outside the retry budget;
- transient (``TransientError``, ``ArsCrcMismatch``): retried with capped back-off; ``failed`` (or, for CRC
  mismatches, ``quarantined``) once the budget is spent;
- data (``DataError``, ``ArsRejected``): ``quarantined`` with ARS's or our own words;
- anything unexpected: logged with the GUID and retried with back-off like a transient error.

When the asset was a lane's or hold's probe, any answer but that same "no" reopens it.
"""

from __future__ import annotations

import math
import random
from typing import Any

import structlog

from integration.actors._ars_steps import ACTOR, step
from integration.actors._deps import AssetDeps
from integration.actors._jobs_driver import JobsGaveUp
from integration.actors._lanes import Lane
from integration.actors._parked import Parked
from integration.actors._processing import ON_HPC_STATES, PROCESSING_STATES, abandon_processing, processing_step
from integration.adapters.ars import file_format_names
from integration.domain import FileKind
from integration.errors import (
    ArsCrcMismatch,
    ArsRejected,
    AssetWaits,
    DataError,
    GroupHeld,
    InfrastructureError,
    StaleAttempt,
    StateConflict,
    TransientError,
    UnknownJob,
)
from integration.state_machines import TABLE, AssetState, AssetTrigger, Driver, states_driven_by
from integration.store import AssetRecord, Wake

__all__ = ["DRIVABLE", "drive_asset", "fail_asset", "group_key", "quarantine_asset"]

log = structlog.get_logger()

#: States an asset actor moves assets out of (read from the table of drivers).
DRIVABLE = states_driven_by(Driver.ASSET_ACTOR)
_QUARANTINABLE = frozenset(next(row.sources for row in TABLE if row.trigger is AssetTrigger.QUARANTINE))
#: The site lanes each step needs: a create needs new share space, an upload may open its share again, a
#: synchronize needs only ARS (and frees share space: it must go on while ``ars-space`` is paused).
_LANES: dict[AssetState, tuple[str, ...]] = {
    AssetState.INGESTED: ("ars", "ars-space", "storage"),
    AssetState.CREATED_IN_ARS: ("ars", "storage"),
    AssetState.UPLOADED: ("ars",),
    AssetState.SYNCED: ("ars", "ars-space", "hpc"),  # re-opening a share needs share space, and jobs to run
    AssetState.SHARE_OPEN: ("ars", "hpc"),
    AssetState.ON_HPC: ("ars", "hpc"),
    AssetState.PROCESSING: ("ars", "hpc"),
    AssetState.PROCESSED: ("ars", "storage", "intake"),  # finalising deletes the local and N-Drive copies
}


async def drive_asset(guid: str, deps: AssetDeps) -> None:
    """Move ``guid`` forward until it waits (syncing, a lane, a hold, a back-off), ends, or needs a human."""
    with structlog.contextvars.bound_contextvars(asset_guid=guid):
        record = await deps.store.assets.get(guid)
        began = deps.clock()
        while record is not None and record.state in DRIVABLE:
            lanes = _LANES.get(record.resume_state or record.state, ("ars", "ars-space", "storage"))
            blocking = deps.lanes.blocking(guid, lanes, await _hold_keys(record, deps))
            if blocking is not None:
                await _park(record, blocking, deps)
                return
            resuming = record.state is AssetState.PAUSED  # a resume asks nobody: it answers no probe
            try:
                record = await (processing_step if record.state in PROCESSING_STATES else step)(record, deps)
            except Parked as exc:  # nothing to do until then (a callback or a job's exit wakes it sooner)
                if exc.progressed:
                    await _probes_answered(guid, deps, "its step went through")
                await _park_until(guid, deps, exc, began=began)
                return
            except (StaleAttempt, UnknownJob) as exc:  # a job row changed under the step (not the asset's state)
                await _retry_later(guid, deps, f"its jobs changed while it was looked at: {exc}")
                return
            except JobsGaveUp as exc:
                await _probes_answered(guid, deps, "it got an answer about the asset itself")
                await fail_asset(guid, deps, exc.reason, actor=ACTOR)
                return
            except StateConflict as exc:  # another task moved it; look again
                log.info("asset_state_moved_elsewhere", expected=exc.expected, actual=exc.actual)
                before = record.state
                record = await deps.store.assets.get(guid)
                if record is not None and record.state is before:  # nothing moved it: never loop on the same step
                    await _retry_later(guid, deps, f"a conflict without a change of state: {exc}")
                    return
                continue
            except InfrastructureError as exc:
                await _site_error(guid, exc, deps)
                return
            except GroupHeld as exc:
                await _group_held(guid, exc, deps)
                return
            except AssetWaits as exc:  # inconclusive for a probe: the asset waits on its own, the lane stays
                await _wait(guid, deps, exc)
                return
            except ArsCrcMismatch as exc:
                await _probes_answered(guid, deps, "an upload reached ARS")
                await _crc_mismatch(guid, deps, exc)
                return
            except TransientError as exc:
                await _probes_answered(guid, deps, f"it got another answer: {exc}")
                await _retry_later(guid, deps, str(exc), at_least_s=exc.retry_after_s or 0.0)
                return
            except (DataError, ArsRejected) as exc:
                await _probes_answered(guid, deps, "it got an answer about the asset itself")
                await quarantine_asset(guid, deps, str(exc))
                return
            except Exception as exc:
                log.exception("asset_step_crashed", state=record.state.value)
                await _retry_later(guid, deps, f"unexpected {type(exc).__name__}: {exc}")
                return
            if not resuming:
                await _probes_answered(guid, deps, "its step went through")


async def _hold_keys(record: AssetRecord, deps: AssetDeps) -> list[str]:
    """The group holds that concern the asset (only computed while some group is held)."""
    if not deps.lanes.holds:
        return []
    keys = [group_key(kind, record, None) for kind in ("workstation", "collection", "institution", "pipeline")]
    files = await deps.store.assets.files(record.guid)
    extensions = [f.record.name.rsplit(".", 1)[-1] for f in files if f.record.kind is not FileKind.METADATA]
    return keys + [f"hold:file_format:{name}" for name in file_format_names(extensions)]


def group_key(kind: str, record: AssetRecord, value: str | None) -> str:
    """The hold key of ``record``'s group of ``kind`` (``value`` when the answer named it)."""
    names = {
        "workstation": f"{record.institution}/{record.workstation}",
        "collection": f"{record.institution}/{record.collection}",
        "institution": record.institution,
        "pipeline": f"{record.institution}/{record.pipeline}",
    }
    return f"hold:{kind}:{value or names.get(kind, '')}"


async def _park(record: AssetRecord, lane: Lane, deps: AssetDeps) -> None:
    """Make the asset wait for ``lane`` in the store (no actor slot held)."""
    reason = f"waiting for {lane.describe()}: {lane.reason}"
    wake = Wake(kind="wait", lane=lane.name, reason=reason)
    if record.wake is not None and record.wake.kind == "wait" and record.wake.lane == lane.name:
        return
    if lane.kind == "lane" and record.state is not AssetState.PAUSED:
        await deps.store.assets.transition(
            record.guid, AssetTrigger.PAUSE, expected=record.state, reason=reason, actor=ACTOR, wake=wake
        )
        await _unless_reopened(record.guid, lane, deps)
        return
    await deps.store.assets.update(record.guid, expected=record.state, wake=wake)
    if lane.kind == "group":
        await deps.store.assets.note(record.guid, reason, actor=ACTOR, trigger="held")
    await _unless_reopened(record.guid, lane, deps)


async def _unless_reopened(guid: str, lane: Lane, deps: AssetDeps) -> None:
    """A lane may reopen while an asset is being parked on it (after its release): wake the asset then."""
    if not lane.paused or (lane.kind == "group" and deps.lanes.holds.get(lane.name) is not lane):
        await deps.store.wakeups.wake_now(guid, reason=f"{lane.describe()} reopened while it was parked")
        deps.wake_timer()


async def _site_error(guid: str, exc: InfrastructureError, deps: AssetDeps) -> None:
    lane = deps.lanes.lane(exc.lane)
    if exc.confirm and lane.probe_guid != guid and not await lane.confirm_down(deps.health.get(exc.lane)):
        # The resource answers its health probe: the failure concerns this asset (one unreadable file, one
        # request that keeps failing), not everyone. Retry it with back-off; its budget ends in `failed`.
        await _retry_later(guid, deps, f"{exc.reason} (yet {lane.describe()} answers: only this asset is affected)")
        return
    for other in deps.lanes.probing(guid):
        if other is not lane:
            await deps.lanes.resume(other, "its probe got past it", actor=ACTOR)
    if lane.paused and lane.probe_guid == guid:
        await lane.probe_failed(exc.reason, actor=ACTOR)
    else:
        await lane.pause(exc.reason, probe=exc.probe, actor=ACTOR, probe_guid=guid if exc.probe == "asset" else None)
    record = await deps.store.assets.get(guid)
    if record is not None and record.state in DRIVABLE:
        await _park(record, lane, deps)


async def _group_held(guid: str, exc: GroupHeld, deps: AssetDeps) -> None:
    record = await deps.store.assets.get(guid)
    if record is None:
        return
    key = group_key(exc.group_kind, record, exc.group_value)
    for other in deps.lanes.probing(guid):
        if other.name != key:
            await deps.lanes.resume(other, "its probe got past it", actor=ACTOR)
    hold = deps.lanes.holds.get(key)
    reason = f"ARS refuses every asset of {key.removeprefix('hold:').replace(':', ' ', 1)}: {exc}"
    if hold is not None and hold.paused and hold.probe_guid == guid:
        await hold.probe_failed(reason, actor=ACTOR)
    else:
        hold = await deps.lanes.hold(key, reason, probe_guid=guid, actor=ACTOR)
    log.warning("asset_group_held", group=key, reason=str(exc))
    if record.state in DRIVABLE:
        await _park(record, hold, deps)


async def _probes_answered(guid: str, deps: AssetDeps, why: str) -> None:
    """Reopen every lane and hold this asset was probing: it did not get their "no" again."""
    for lane in deps.lanes.probing(guid):
        await deps.lanes.resume(lane, f"asset {guid} {why}", actor=ACTOR)


async def _wait(guid: str, deps: AssetDeps, exc: AssetWaits) -> None:
    """A wait of the asset's own (not counted against its retry budget), growing while it lasts."""
    record = await deps.store.assets.get(guid)
    if record is None or record.state not in DRIVABLE:
        return
    now = deps.clock()
    since = record.waiting_since if record.waiting_since is not None else now
    if now - since > deps.config.ars.max_wait_s:
        await fail_asset(guid, deps, f"waited {now - since:.0f} s on its own and gave up: {exc}", actor=ACTOR)
        return
    if record.waiting_since is None:  # the start of a wait is an event: every wait can be explained
        await deps.store.assets.note(guid, f"waits on its own: {exc}", actor=ACTOR, trigger="waits")
    retry = deps.config.retry
    delay = exc.retry_after_s or min(retry.max_s * 10, max(retry.initial_s, (now - since) / 2))
    log.info("asset_waits", reason=str(exc), retry_in_s=round(delay, 2))
    await _again_in(record, deps, delay, f"waits: {exc}", waiting_since=since)


async def _park_until(guid: str, deps: AssetDeps, exc: Parked, *, began: float) -> None:
    """Store the next look; a wake-up written while this look ran (a callback that found no free actor) is
    earlier and is kept."""
    record = await deps.store.assets.get(guid)
    if record is None or record.state not in DRIVABLE:
        return
    wake = record.wake
    if wake is not None and wake.kind == "dispatch" and wake.due is not None and began <= wake.due <= exc.due:
        return
    if math.isinf(exc.due):  # at rest: nothing will ever be due (e.g. processing switched off)
        await deps.store.assets.update(guid, expected=record.state, wake=None, reason=exc.reason)
        return
    delay = max(0.0, exc.due - deps.clock())
    progress = {"attempts": 0, "waiting_since": None} if exc.progressed else {}  # a step forward ends a bad patch
    await _again_in(record, deps, delay, exc.reason, **progress)


async def _crc_mismatch(guid: str, deps: AssetDeps, exc: ArsCrcMismatch) -> None:
    record = await deps.store.assets.get(guid)
    if record is None or record.state not in DRIVABLE:
        return
    limit = deps.config.ars.crc_mismatch_retries
    count = record.crc_mismatches + 1
    if count > limit:
        await quarantine_asset(guid, deps, f"ARS received other bytes than we sent {count} times in a row: {exc}")
        return
    delay = _backoff(deps, count)
    log.warning("ars_crc_mismatch", count=count, limit=limit, retry_in_s=round(delay, 2))
    await _again_in(record, deps, delay, f"CRC-32 mismatch {count}/{limit}: {exc}", crc_mismatches=count)


async def _retry_later(guid: str, deps: AssetDeps, reason: str, *, at_least_s: float = 0.0) -> None:
    """Schedule another try with capped exponential back-off, or fail the asset once the budget is spent."""
    record = await deps.store.assets.get(guid)
    if record is None or record.state not in DRIVABLE:
        return
    attempts = record.attempts + 1
    if attempts > deps.config.retry.attempts:
        await fail_asset(guid, deps, f"gave up after {record.attempts} attempts: {reason}", actor=ACTOR)
        return
    delay = max(at_least_s, _backoff(deps, attempts))
    log.warning("asset_retry_scheduled", attempt=attempts, delay_s=round(delay, 2), reason=reason)
    await _again_in(record, deps, delay, f"retry {attempts}: {reason}", attempts=attempts)


async def _again_in(record: AssetRecord, deps: AssetDeps, delay: float, why: str, **columns: Any) -> None:
    """Hand the asset to its actor again in ``delay`` s (a dispatch wake-up), setting ``columns`` with it."""
    await deps.store.assets.update(
        record.guid,
        expected=record.state,
        wake=Wake(kind="dispatch", due=deps.clock() + delay, reason=why),
        **columns,
    )
    deps.wake_timer()


def _backoff(deps: AssetDeps, attempt: int) -> float:
    retry = deps.config.retry
    return min(retry.max_s, retry.initial_s * math.pow(2, attempt - 1)) + random.uniform(0, retry.jitter_s)


async def quarantine_asset(guid: str, deps: AssetDeps, reason: str) -> None:
    """Move the asset to ``quarantined`` with ``reason`` (saying when ARS already holds it)."""
    record = await deps.store.assets.get(guid)
    if record is None or record.state in (AssetState.QUARANTINED, AssetState.FINALIZED):
        return
    if record.state not in _QUARANTINABLE:  # synced in ARS already: a human looks at a failed asset instead
        await fail_asset(guid, deps, reason, actor=ACTOR)
        return
    if record.in_ars:
        reason += f" — the asset exists in ARS; `integration retry {guid}` continues from what ARS holds"
    log.warning("asset_quarantined", reason=reason)
    await deps.store.assets.transition(guid, AssetTrigger.QUARANTINE, expected=record.state, reason=reason, actor=ACTOR)


async def fail_asset(guid: str, deps: AssetDeps, reason: str, *, actor: str) -> None:
    """Move the asset to ``failed`` with ``reason`` (a human must look); clears its wake-up."""
    record = await deps.store.assets.get(guid)
    if record is None or record.state in (AssetState.FAILED, AssetState.FINALIZED):
        return
    if record.in_ars:
        reason += f" — the asset exists in ARS; `integration retry {guid}` continues from what ARS holds"
    if (record.resume_state or record.state) in ON_HPC_STATES:  # it holds a share and maybe jobs: let them go
        await abandon_processing(guid, deps)
    log.error("asset_failed", reason=reason)
    await deps.store.assets.transition(guid, AssetTrigger.FAIL, expected=record.state, reason=reason, actor=actor)
