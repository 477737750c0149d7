"""The parent-asset lifecycle: states, triggers and the transition table, as data.

The table is the single source of truth. :func:`apply` answers "where does ``trigger`` take an asset in
``state``?" or raises :class:`~integration.errors.IllegalTransition`; a ``transitions.Machine`` is built
from the same table (:func:`build_machine`) and is what :func:`apply` consults, so the library and the
table can never disagree. Only ``store/`` persists the result.
"""

from __future__ import annotations

import enum
from functools import cache

import msgspec
from transitions import Machine

from integration.errors import IllegalTransition

__all__ = [
    "ACTIVE_STATES",
    "BACKWARD_TRIGGERS",
    "PREVIOUS",
    "TABLE",
    "TERMINAL_STATES",
    "AssetState",
    "AssetTrigger",
    "Outcome",
    "Transition",
    "apply",
    "build_machine",
    "is_forward",
]


class AssetState(enum.StrEnum):
    """Where a parent asset (the original image and its siblings) is in its journey."""

    DETECTED = "detected"  # files seen in a stable session folder on the N-Drive
    INGESTED = "ingested"  # copied to local storage, CRC-32 verified, metadata recorded
    CREATED_IN_ARS = "created_in_ars"  # ARS asset exists and its share is open
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

    INGEST = "ingest"  # local copy verified and recorded
    CREATE = "create"  # ARS confirmed the asset (created, or found by reconciliation)
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
    RETRY = "retry"  # operator: try a failed/quarantined asset again from ingested (needs a reason)


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
#: Triggers that may move an asset back along the happy path; each needs a reason.
BACKWARD_TRIGGERS: frozenset[AssetTrigger] = frozenset(
    {AssetTrigger.RESYNC, AssetTrigger.REUPLOAD, AssetTrigger.RESUME, AssetTrigger.RETRY}
)
#: Pseudo-target of RESUME: the state recorded when the asset was paused.
PREVIOUS = "previous"

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


class Transition(msgspec.Struct, frozen=True):
    """One row of the table: ``trigger`` moves an asset from any of ``sources`` to ``dest``."""

    trigger: AssetTrigger
    sources: tuple[AssetState, ...]
    dest: AssetState | str  # a state, or PREVIOUS for RESUME
    doc: str


_A = AssetState
_T = AssetTrigger
_NOT_SYNCED = (_A.DETECTED, _A.INGESTED, _A.CREATED_IN_ARS, _A.UPLOADED, _A.SYNCING)

TABLE: tuple[Transition, ...] = (
    Transition(_T.INGEST, (_A.DETECTED,), _A.INGESTED, "copied to local storage and recorded"),
    Transition(_T.CREATE, (_A.INGESTED,), _A.CREATED_IN_ARS, "ARS asset created (or found)"),
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
    Transition(_T.RETRY, (_A.FAILED, _A.QUARANTINED), _A.INGESTED, "operator retries from the local copy"),
)


class Outcome(msgspec.Struct, frozen=True):
    """The result of :func:`apply`: the new state and the state to return to on RESUME (for PAUSE)."""

    state: AssetState
    resume_state: AssetState | None = None


def is_forward(source: AssetState, dest: AssetState) -> bool:
    """True when ``dest`` is not earlier than ``source`` on the happy path (error states count as forward)."""
    if source not in _RANK or dest not in _RANK:
        return True
    return _RANK[dest] >= _RANK[source]


@cache
def build_machine() -> Machine:
    """A ``transitions.Machine`` with every state and row of :data:`TABLE` (no automatic transitions)."""
    machine = Machine(
        model=None,
        states=[state.value for state in AssetState],
        initial=AssetState.DETECTED.value,
        auto_transitions=False,
    )
    for row in TABLE:
        dest = AssetState.PAUSED.value if row.dest == PREVIOUS else str(row.dest)
        machine.add_transition(row.trigger.value, [s.value for s in row.sources], dest)
    return machine


@cache
def _lookup() -> dict[tuple[AssetState, AssetTrigger], AssetState | str]:
    machine = build_machine()
    dest_of = {row.trigger: row.dest for row in TABLE}
    lookup: dict[tuple[AssetState, AssetTrigger], AssetState | str] = {}
    for trigger in AssetTrigger:
        for state in AssetState:
            if machine.get_transitions(trigger=trigger.value, source=state.value):
                lookup[(state, trigger)] = dest_of[trigger]
    return lookup


def apply(
    state: AssetState,
    trigger: AssetTrigger,
    *,
    reason: str = "",
    resume_state: AssetState | None = None,
    guid: str | None = None,
) -> Outcome:
    """Where ``trigger`` takes an asset in ``state``.

    Raises :class:`IllegalTransition` when the table has no such row, when a backward trigger comes without a
    ``reason``, or when RESUME lacks the ``resume_state`` recorded at pause time.
    """
    dest = _lookup().get((state, trigger))
    if dest is None:
        raise IllegalTransition(state.value, trigger.value, guid=guid)
    if trigger in BACKWARD_TRIGGERS and not reason.strip():
        raise IllegalTransition(state.value, f"{trigger.value} (without a reason)", guid=guid)
    if dest == PREVIOUS:
        if resume_state is None or resume_state not in ACTIVE_STATES:
            raise IllegalTransition(state.value, f"{trigger.value} (no state to resume to)", guid=guid)
        return Outcome(resume_state)
    new_state = AssetState(dest)
    return Outcome(new_state, resume_state=state if new_state is AssetState.PAUSED else None)
