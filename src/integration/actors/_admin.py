"""The way out for humans: ``integration retry`` and ``integration ack``, and the actor that serves them.

``retry`` moves a quarantined or failed asset on by *reconciling first*: it asks ARS what it holds (the asset,
its files and their CRC-32s, its status) and resumes at the state that matches — ``ingested`` (ARS does not
know it), ``created_in_ars`` (ARS lacks some of our bytes), ``uploaded`` (ARS has them all, not synchronised),
``syncing`` (ARS is synchronising), ``synced`` (ERDA holds every file with our CRC-32). It never creates an
asset ARS already has, and refuses when ARS holds someone else's asset under the GUID.

``ack`` closes intake rejections a human has dealt with, so "needs a human" can become empty again.

While a daemon runs, the commands only add a request row (:mod:`integration.store`); this module's
:func:`run_admin_requests` picks it up within ``daemon.admin_poll_s`` and answers it, so every change goes
through the daemon. With no daemon running, the commands call :func:`retry_assets` / :func:`acknowledge`
directly (holding the daemon lock meanwhile).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec
import structlog
import trio

from integration.actors._ars_steps import RECONCILE_FILES, UPDATE_METADATA, create_body, find_ours
from integration.actors._heartbeats import Heartbeats
from integration.adapters.ars import ArsClient
from integration.domain import FileKind
from integration.errors import DataError, InfrastructureError, IntegrationError, StateConflict, TransientError
from integration.state_machines import NEEDS_HUMAN_STATES, RETRY_TARGETS, AssetState
from integration.store import AssetRecord, RequestRecord, Store, Wake

__all__ = [
    "AckRequest",
    "AckResult",
    "RetryRequest",
    "RetryResult",
    "acknowledge",
    "retry_assets",
    "run_admin_requests",
]

log = structlog.get_logger()

ACTOR = "admin-requests"
_PAGE = 1000


class RetryRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What ``integration retry`` asks for."""

    guids: list[str] = []
    all_quarantined: bool = False
    all_failed: bool = False
    reason: str
    by: str


class RetryResult(msgspec.Struct, frozen=True, kw_only=True):
    """What happened to one asset of a retry."""

    guid: str
    outcome: Literal["moved", "unchanged", "unknown", "refused"]
    state: str
    message: str


class AckRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What ``integration ack`` asks for."""

    ids: list[int] = []
    session: str | None = None
    all: bool = False
    reason: str
    by: str


class AckResult(msgspec.Struct, frozen=True, kw_only=True):
    """The rejections an ``ack`` closed."""

    acknowledged: list[int]


#: Hands an asset to the dispatcher (the daemon) — or nothing, when no daemon runs (its wake-up waits).
Wake_ = Callable[[str, str], Awaitable[None]]


async def retry_assets(
    request: RetryRequest,
    *,
    store: Store,
    ars: ArsClient,
    wake: Wake_ | None = None,
    wake_poller: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[RetryResult]:
    """Reconcile each asset of ``request`` with ARS and move it on; one result per asset.

    One asset's refusal (ARS holds someone else's asset, refuses its metadata) is that asset's result. When
    ARS cannot be asked at all, the assets not yet tried get an ``unchanged`` result saying why — or, when
    that happens at the first asset, :class:`InfrastructureError` is raised (nothing was changed).
    ``wake`` hands moved assets to the dispatcher, ``wake_poller`` tells the sync poller of assets moved to
    ``syncing`` (both None without a daemon: the wake-ups wait in the store).
    """
    guids = list(dict.fromkeys(request.guids))
    for state, wanted in ((AssetState.QUARANTINED, request.all_quarantined), (AssetState.FAILED, request.all_failed)):
        if wanted:
            guids += [g for g in await _all_in(store, state) if g not in guids]
    results: list[RetryResult] = []
    for index, guid in enumerate(guids):
        with structlog.contextvars.bound_contextvars(asset_guid=guid):
            try:
                result = await _retry_one(guid, request, store=store, ars=ars, now=clock())
            except InfrastructureError as exc:
                if not results:
                    raise
                log.warning("retry_stopped", error=exc.reason, not_tried=len(guids) - index)
                return results + [await _not_tried(g, store, exc.reason) for g in guids[index:]]
            except TransientError as exc:  # ARS answered, slowly or oddly, for this asset: it stays as it was
                result = await _not_tried(guid, store, f"{exc} — run the retry again")
            except IntegrationError as exc:  # ARS refused this asset's request
                result = await _refused(guid, store, str(exc))
            except Exception as exc:  # a bug must not lose the report of the assets already moved
                log.exception("retry_crashed")
                result = await _refused(guid, store, f"unexpected {type(exc).__name__}: {exc}")
        results.append(result)
        if result.outcome == "moved":
            if result.state == AssetState.SYNCING.value and wake_poller is not None:
                wake_poller()
            elif wake is not None:
                await wake(guid, f"retry by {request.by}")
    return results


async def _refused(guid: str, store: Store, why: str) -> RetryResult:
    record = await store.assets.get(guid)
    return RetryResult(guid=guid, outcome="refused", state=record.state.value if record else "", message=why)


async def _not_tried(guid: str, store: Store, reason: str) -> RetryResult:
    record = await store.assets.get(guid)
    state = record.state.value if record else ""
    return RetryResult(guid=guid, outcome="unchanged", state=state, message=f"not moved: {reason}")


async def _all_in(store: Store, state: AssetState) -> list[str]:
    guids: list[str] = []
    after = ""
    while page := await store.assets.in_states([state], after=after, limit=_PAGE):
        guids += [r.guid for r in page]
        after = page[-1].guid
    return guids


async def _retry_one(guid: str, request: RetryRequest, *, store: Store, ars: ArsClient, now: float) -> RetryResult:
    record = await store.assets.get(guid)
    if record is None:
        return RetryResult(guid=guid, outcome="unknown", state="", message="no asset with this GUID is recorded")
    if record.state not in NEEDS_HUMAN_STATES:
        return RetryResult(
            guid=guid, outcome="unchanged", state=record.state.value, message="not quarantined or failed: nothing to do"
        )
    try:
        target, uploaded, found = await _reconcile(record, ars, store)
    except DataError as exc:
        return RetryResult(guid=guid, outcome="refused", state=record.state.value, message=str(exc))
    actor = f"operator:{request.by}"
    if target is not AssetState.INGESTED and record.has_intent(UPDATE_METADATA):
        await ars.update_asset(guid, await create_body(record, store))  # the corrected metadata replaces ARS's
        await store.assets.settle_intent(guid, UPDATE_METADATA, "ARS metadata replaced", actor=actor)
        found += "; its metadata replaced by ours"
    wake_at = Wake(  # synced too: processing drives it on
        kind="sync_poll" if target is AssetState.SYNCING else "dispatch", due=now, reason=f"retry by {request.by}"
    )
    stale_files = target is AssetState.CREATED_IN_ARS
    try:
        # One transaction: which files ARS holds, the move, and (with files not ours in ARS) the intent to
        # reconcile them — a crash leaves either the old state or all of it.
        moved = await store.assets.transition(
            guid,
            RETRY_TARGETS[target],
            expected=record.state,
            reason=f"{request.reason} — reconciled with ARS: {found}",
            actor=actor,
            updates={
                "attempts": 0,
                "crc_mismatches": 0,
                "resyncs": 0,
                "in_ars": target is not AssetState.INGESTED,
            },
            wake=wake_at,
            settle=None if stale_files else (RECONCILE_FILES, "ARS holds only our files"),
            uploaded=uploaded,
            then_open=RECONCILE_FILES if stale_files else None,
        )
    except StateConflict as exc:
        return RetryResult(guid=guid, outcome="unchanged", state=exc.actual or "", message="it moved meanwhile")
    log.info("asset_retried", to=moved.state.value, by=request.by)
    return RetryResult(guid=guid, outcome="moved", state=moved.state.value, message=found)


async def _reconcile(record: AssetRecord, ars: ArsClient, store: Store) -> tuple[AssetState, set[str], str]:
    """Where the asset should resume, which of its files ARS holds with our CRC-32, and what was found."""
    guid = record.guid
    status = await ars.get_status(guid)
    if status is None:
        return AssetState.INGESTED, set(), "ARS does not know the asset; it is created again from the local copy"
    await find_ours(record, ars)  # raises DataError when ARS holds someone else's asset under the GUID
    ours = {
        f.record.name: f.record.crc32 for f in await store.assets.files(guid) if f.record.kind is not FileKind.METADATA
    }
    held = {f.name: f for f in await ars.list_files(guid) if not f.delete_after_sync}
    matching = {name for name, crc in ours.items() if name in held and held[name].crc == crc}
    stale = sorted(set(held) - set(ours))
    if stale:  # files of an earlier delivery: the upload step deletes them before anything is synchronised
        have = f"ARS status {status.status}, {len(matching)} of {len(ours)} file(s) with our CRC-32"
        return AssetState.CREATED_IN_ARS, matching, f"{have}, and {len(stale)} not ours ({', '.join(stale)})"
    every = matching == set(ours)
    in_erda = every and all(held[name].sync_status == "SYNCHRONIZED" for name in ours)
    have = f"ARS status {status.status}, {len(matching)} of {len(ours)} file(s) with our CRC-32"
    if status.is_synced and in_erda:
        return AssetState.SYNCED, matching, f"{have}, all in ERDA"
    if in_erda and status.share_allocation_mb is not None and await store.jobs.of_asset(guid):
        # its processing share is still open: never synchronized again (it holds nothing new); processing resumes
        return AssetState.SYNCED, matching, f"{have}, all in ERDA; its processing share is open, processing resumes"
    if every and status.status == "ASSET_RECEIVED":
        return AssetState.SYNCING, matching, f"{have}; ARS is synchronising"
    if every and (status.is_sync_failed or status.share_allocation_mb is not None):
        return AssetState.UPLOADED, matching, f"{have}; synchronizing again"
    return AssetState.CREATED_IN_ARS, matching, f"{have}; uploading the rest"


async def acknowledge(request: AckRequest, *, store: Store) -> AckResult:
    """Close the open rejections ``request`` names; returns their ids."""
    closed = await store.intake.acknowledge(
        ids=request.ids, session=request.session, every=request.all, reason=request.reason, actor=request.by
    )
    log.info("rejections_acknowledged", ids=closed, by=request.by)
    return AckResult(acknowledged=closed)


async def run_admin_requests(
    *,
    store: Store,
    ars: ArsClient,
    wake: Wake_,
    wake_poller: Callable[[], None],
    heartbeats: Heartbeats,
    interval_s: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run forever: answer pending operator requests, looking every ``interval_s``."""
    task_status.started()
    while True:
        heartbeats.beat(ACTOR)
        for request in await store.requests.pending():
            ok, result = await _answer(request, store=store, ars=ars, wake=wake, wake_poller=wake_poller)
            await store.requests.finish(request.id, ok=ok, result=msgspec.json.encode(result).decode())
        await trio.sleep(interval_s)


async def _answer(
    request: RequestRecord, *, store: Store, ars: ArsClient, wake: Wake_, wake_poller: Callable[[], None]
) -> tuple[bool, object]:
    try:
        if request.kind == "retry":
            body = msgspec.json.decode(request.body, type=RetryRequest)
            return True, await retry_assets(body, store=store, ars=ars, wake=wake, wake_poller=wake_poller)
        if request.kind == "ack":
            return True, await acknowledge(msgspec.json.decode(request.body, type=AckRequest), store=store)
        return False, {"error": f"unknown request kind {request.kind!r}"}
    except msgspec.DecodeError as exc:
        return False, {"error": f"unreadable request: {exc}"}
    except InfrastructureError as exc:
        return False, {"error": f"nothing was changed: {exc.reason}"}
    except IntegrationError as exc:
        return False, {"error": str(exc)}
    except Exception as exc:  # an operator's request must get an answer, never crash the daemon
        log.exception("admin_request_crashed", request=request.id)
        return False, {"error": f"unexpected {type(exc).__name__}: {exc}"}
