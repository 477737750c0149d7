"""The parent-asset lifecycle: states, triggers, the transition table and who drives each state, as data.

The table is the single source of truth for where an asset may go; :data:`DRIVERS` is the single source of
truth for who moves it on from each state (the dispatcher, ``integration status``, the demo and the admin
REPL read it from there). Only ``store/`` persists a transition.
"""

from __future__ import annotations

import enum

from integration.state_machines._machine import PREVIOUS, MachineSpec, Outcome, Row

__all__ = [
    "ACTIVE_STATES",
    "ASSET_MACHINE",
    "BACKWARD_TRIGGERS",
    "DRIVERS",
    "NEEDS_HUMAN_STATES",
    "RETRY_TARGETS",
    "TABLE",
    "TERMINAL_STATES",
    "AssetState",
    "AssetTrigger",
    "Driver",
    "Transition",
    "apply",
    "is_forward",
    "states_driven_by",
]


class AssetState(enum.StrEnum):
    """Where a parent asset (the original image and its siblings) is in its journey."""

    DETECTED = "detected"  # files seen in a stable session folder on the N-Drive
    INGESTED = "ingested"  # copied to local storage, CRC-32 verified, metadata recorded
    CREATED_IN_ARS = "created_in_ars"  # ARS asset exists (its share open, or opened again before uploading)
    UPLOADED = "uploaded"  # every file is in the ARS share with a matching CRC-32
    SYNCING = "syncing"  # synchronize called; waiting for ARS to persist to ERDA
    SYNCED = "synced"  # ARS reports ERDA_SYNCHRONISED and holds our CRC-32 for every file
    SHARE_OPEN = "share_open"  # share re-opened for the HPC (driven by the HPC issue)
    ON_HPC = "on_hpc"  # the asset loader has the files on the cluster
    PROCESSING = "processing"  # pipeline jobs are running
    PROCESSED = "processed"  # every job done, results pushed to ARS
    FINALIZED = "finalized"  # shares closed, temporary copies deleted; nothing left to do
    QUARANTINED = "quarantined"  # bad input; a human must fix the data (reason recorded)
    FAILED = "failed"  # retries exhausted; a human must look (reason recorded)
    PAUSED = "paused"  # infrastructure down; resumes by itself when its lane is back


class AssetTrigger(enum.StrEnum):
    """Events that move an asset."""

    DETECT = "detect"  # a settled session folder holds the asset's files (creates the asset)
    INGEST = "ingest"  # local copy verified and recorded
    CREATE = "create"  # ARS confirmed the asset (created, or found ours by reconciliation)
    UPLOAD = "upload"  # the last file's upload was confirmed
    START_SYNC = "start_sync"  # ARS accepted synchronize
    CONFIRM_SYNC = "confirm_sync"  # ARS says synchronised and the CRC-32s match
    RESYNC = "resync"  # ERDA failed or got stuck: synchronize again (backward in spirit, needs a reason)
    REUPLOAD = "reupload"  # ARS lost or rejected the files: upload again (backward, needs a reason)
    OPEN_SHARE = "open_share"
    SEND_TO_HPC = "send_to_hpc"
    START_PROCESSING = "start_processing"
    FINISH_PROCESSING = "finish_processing"
    FINALIZE = "finalize"
    QUARANTINE = "quarantine"  # data error
    FAIL = "fail"  # retries exhausted
    PAUSE = "pause"  # the lane this asset needs is down
    RESUME = "resume"  # the lane is back: return to the state recorded at pause time
    REDELIVER = "redeliver"  # the digitiser delivered corrected files again: start over from them
    RETRY = "retry"  # operator; ARS does not have it: create it again from the local copy
    RETRY_UPLOAD = "retry_upload"  # operator; ARS has the asset but not all our bytes: upload them
    RETRY_SYNC = "retry_sync"  # operator; ARS has all our bytes, not (yet) in ERDA: synchronize
    RETRY_POLL = "retry_poll"  # operator; ARS is synchronising it: wait for ERDA
    RETRY_SYNCED = "retry_synced"  # operator; ARS holds every file SYNCHRONIZED with our CRC-32


class Driver(enum.StrEnum):
    """Who moves an asset on from a state."""

    WATCHER = "ndrive-watcher"  # the N-Drive watcher, while importing
    ASSET_ACTOR = "asset-actor"  # an asset actor, started by the dispatcher
    SYNC_POLLER = "sync-poller"  # the sync poller, when the asset's poll is due
    OPERATOR = "operator"  # a human: `integration retry`, or a corrected re-delivery
    NOBODY = "nobody"  # terminal


#: Who drives each state. Every state has exactly one driver.
DRIVERS: dict[AssetState, Driver] = {
    AssetState.DETECTED: Driver.WATCHER,
    AssetState.INGESTED: Driver.ASSET_ACTOR,
    AssetState.CREATED_IN_ARS: Driver.ASSET_ACTOR,
    AssetState.UPLOADED: Driver.ASSET_ACTOR,
    AssetState.PAUSED: Driver.ASSET_ACTOR,
    AssetState.SYNCING: Driver.SYNC_POLLER,
    AssetState.SYNCED: Driver.ASSET_ACTOR,
    AssetState.SHARE_OPEN: Driver.ASSET_ACTOR,
    AssetState.ON_HPC: Driver.ASSET_ACTOR,
    AssetState.PROCESSING: Driver.ASSET_ACTOR,
    AssetState.PROCESSED: Driver.ASSET_ACTOR,
    AssetState.FINALIZED: Driver.NOBODY,
    AssetState.QUARANTINED: Driver.OPERATOR,
    AssetState.FAILED: Driver.OPERATOR,
}


def states_driven_by(driver: Driver) -> frozenset[AssetState]:
    """The states ``driver`` moves assets out of."""
    return frozenset(state for state, who in DRIVERS.items() if who is driver)


ACTIVE_STATES: frozenset[AssetState] = frozenset(
    {
        AssetState.DETECTED,
        AssetState.INGESTED,
        AssetState.CREATED_IN_ARS,
        AssetState.UPLOADED,
        AssetState.SYNCING,
        AssetState.SYNCED,
        AssetState.SHARE_OPEN,
        AssetState.ON_HPC,
        AssetState.PROCESSING,
        AssetState.PROCESSED,
    }
)
#: States no trigger leaves.
TERMINAL_STATES: frozenset[AssetState] = frozenset({AssetState.FINALIZED})
#: States that wait for a human (shown by `integration status`, left by `integration retry`).
NEEDS_HUMAN_STATES: frozenset[AssetState] = states_driven_by(Driver.OPERATOR)
#: Triggers that may move an asset back along the happy path; each needs a reason.
BACKWARD_TRIGGERS: frozenset[AssetTrigger] = frozenset(
    {
        AssetTrigger.RESYNC,
        AssetTrigger.REUPLOAD,
        AssetTrigger.RESUME,
        AssetTrigger.REDELIVER,
        AssetTrigger.RETRY,
        AssetTrigger.RETRY_UPLOAD,
        AssetTrigger.RETRY_SYNC,
        AssetTrigger.RETRY_POLL,
        AssetTrigger.RETRY_SYNCED,
    }
)

_HAPPY_PATH: tuple[AssetState, ...] = (
    AssetState.DETECTED,
    AssetState.INGESTED,
    AssetState.CREATED_IN_ARS,
    AssetState.UPLOADED,
    AssetState.SYNCING,
    AssetState.SYNCED,
    AssetState.SHARE_OPEN,
    AssetState.ON_HPC,
    AssetState.PROCESSING,
    AssetState.PROCESSED,
    AssetState.FINALIZED,
)
_RANK: dict[AssetState, int] = {state: rank for rank, state in enumerate(_HAPPY_PATH)}

Transition = Row[AssetState, AssetTrigger]

_A = AssetState
_T = AssetTrigger
_NOT_SYNCED = (_A.DETECTED, _A.INGESTED, _A.CREATED_IN_ARS, _A.UPLOADED, _A.SYNCING)
_HUMAN = (_A.FAILED, _A.QUARANTINED)

TABLE: tuple[Transition, ...] = (
    Transition(_T.DETECT, (), _A.DETECTED, "files found in a settled session folder"),
    Transition(_T.INGEST, (_A.DETECTED,), _A.INGESTED, "copied to local storage and recorded"),
    Transition(_T.CREATE, (_A.INGESTED,), _A.CREATED_IN_ARS, "ARS asset created (or ours found)"),
    Transition(_T.UPLOAD, (_A.CREATED_IN_ARS,), _A.UPLOADED, "all files uploaded, CRC-32 accepted"),
    Transition(_T.START_SYNC, (_A.UPLOADED,), _A.SYNCING, "synchronize accepted by ARS"),
    Transition(_T.CONFIRM_SYNC, (_A.SYNCING,), _A.SYNCED, "ERDA synchronised, CRC-32 verified"),
    Transition(_T.RESYNC, (_A.SYNCING,), _A.UPLOADED, "ERDA failed or stuck: synchronize again"),
    Transition(_T.REUPLOAD, (_A.UPLOADED, _A.SYNCING), _A.CREATED_IN_ARS, "ARS lacks our files: upload again"),
    Transition(_T.OPEN_SHARE, (_A.SYNCED,), _A.SHARE_OPEN, "share re-opened for processing"),
    Transition(_T.SEND_TO_HPC, (_A.SHARE_OPEN,), _A.ON_HPC, "asset loader has the files"),
    Transition(_T.START_PROCESSING, (_A.ON_HPC,), _A.PROCESSING, "first pipeline job submitted"),
    Transition(_T.FINISH_PROCESSING, (_A.PROCESSING,), _A.PROCESSED, "all jobs done"),
    Transition(_T.FINALIZE, (_A.PROCESSED,), _A.FINALIZED, "shares closed, temporary copies deleted"),
    Transition(_T.QUARANTINE, (*_NOT_SYNCED, _A.PAUSED), _A.QUARANTINED, "bad input, explained"),
    Transition(_T.FAIL, (*sorted(ACTIVE_STATES), _A.PAUSED), _A.FAILED, "retries exhausted, explained"),
    Transition(_T.PAUSE, tuple(sorted(ACTIVE_STATES)), _A.PAUSED, "a lane it needs is down"),
    Transition(_T.RESUME, (_A.PAUSED,), PREVIOUS, "the lane is back"),
    Transition(_T.REDELIVER, _HUMAN, _A.INGESTED, "corrected files delivered again replace the old ones"),
    Transition(_T.RETRY, _HUMAN, _A.INGESTED, "operator: ARS does not have it, create it from the local copy"),
    Transition(_T.RETRY_UPLOAD, _HUMAN, _A.CREATED_IN_ARS, "operator: ARS has it, upload what it lacks"),
    Transition(_T.RETRY_SYNC, _HUMAN, _A.UPLOADED, "operator: ARS has every file, synchronize"),
    Transition(_T.RETRY_POLL, _HUMAN, _A.SYNCING, "operator: ARS is synchronising, wait for ERDA"),
    Transition(_T.RETRY_SYNCED, _HUMAN, _A.SYNCED, "operator: ARS holds every file in ERDA with our CRC-32"),
)

#: Where an operator's retry can take an asset, after reconciling with ARS: state -> trigger.
RETRY_TARGETS: dict[AssetState, AssetTrigger] = {
    AssetState.INGESTED: AssetTrigger.RETRY,
    AssetState.CREATED_IN_ARS: AssetTrigger.RETRY_UPLOAD,
    AssetState.UPLOADED: AssetTrigger.RETRY_SYNC,
    AssetState.SYNCING: AssetTrigger.RETRY_POLL,
    AssetState.SYNCED: AssetTrigger.RETRY_SYNCED,
}

ASSET_MACHINE: MachineSpec[AssetState, AssetTrigger] = MachineSpec(
    kind="asset",
    states=AssetState,
    triggers=AssetTrigger,
    rows=TABLE,
    backward=BACKWARD_TRIGGERS,
    terminal=TERMINAL_STATES,
    pause=AssetTrigger.PAUSE,
    resumable=ACTIVE_STATES,
)


def is_forward(source: AssetState, dest: AssetState) -> bool:
    """True when ``dest`` is not earlier than ``source`` on the happy path (error states count as forward)."""
    if source not in _RANK or dest not in _RANK:
        return True
    return _RANK[dest] >= _RANK[source]


def apply(
    state: AssetState | None,
    trigger: AssetTrigger,
    *,
    reason: str = "",
    resume_state: AssetState | None = None,
    guid: str | None = None,
) -> Outcome[AssetState]:
    """Where ``trigger`` takes an asset in ``state`` (see :meth:`MachineSpec.apply`)."""
    return ASSET_MACHINE.apply(state, trigger, reason=reason, resume_state=resume_state, entity=guid)
