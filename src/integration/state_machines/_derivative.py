"""The derivative lifecycle: one child asset made by the cropping & derivatives job, as a table.

A derivative is ``registered`` when the job that made it reports it (name, size, CRC-32, metadata); the
daemon creates it in ARS with the parent in ``parent_guids`` (``created_in_ars``: its own share is open); the
derivative-upload job on the node puts its file there and the daemon checks ARS holds our CRC-32
(``uploaded``); synchronize is accepted (``syncing``); ARS reports it in ERDA with our CRC-32 (``synced``); the
parent's finalising closes it (``finalized``). ``failed`` is a derivative ARS would not take or that could not
be made; it marks the parent ``ISSUE_WITH_MEDIA`` and never blocks finalising the rest.
"""

from __future__ import annotations

import enum

from integration.state_machines._machine import MachineSpec, Outcome, Row

__all__ = ["DERIVATIVE_MACHINE", "DERIVATIVE_TABLE", "DerivativeState", "DerivativeTrigger", "apply_derivative"]


class DerivativeState(enum.StrEnum):
    """Where one derivative child asset is."""

    REGISTERED = "registered"  # reported by the job that made it; not yet in ARS
    CREATED_IN_ARS = "created_in_ars"  # ARS has the child asset (parent_guids set), its share is open
    UPLOADED = "uploaded"  # its file is in its share with our CRC-32
    SYNCING = "syncing"  # synchronize accepted; waiting for ERDA
    SYNCED = "synced"  # ARS reports it in ERDA with our CRC-32
    FINALIZED = "finalized"  # the parent is finalized; nothing left to do
    FAILED = "failed"  # ARS refused it or its file never arrived (the parent is marked ISSUE_WITH_MEDIA)


class DerivativeTrigger(enum.StrEnum):
    REGISTER = "register"
    CREATE = "create"
    UPLOAD = "upload"
    START_SYNC = "start_sync"
    CONFIRM_SYNC = "confirm_sync"
    REUPLOAD = "reupload"  # ARS lacks its bytes (or ERDA failed): upload again (backward, needs a reason)
    FINALIZE = "finalize"
    FAIL = "fail"


_D = DerivativeState
_T = DerivativeTrigger

DERIVATIVE_TABLE: tuple[Row[DerivativeState, DerivativeTrigger], ...] = (
    Row(_T.REGISTER, (), _D.REGISTERED, "the derivatives job reported it"),
    Row(_T.CREATE, (_D.REGISTERED,), _D.CREATED_IN_ARS, "ARS created the child asset with its parent"),
    Row(_T.UPLOAD, (_D.CREATED_IN_ARS,), _D.UPLOADED, "its file is in its share with our CRC-32"),
    Row(_T.START_SYNC, (_D.UPLOADED,), _D.SYNCING, "synchronize accepted"),
    Row(_T.CONFIRM_SYNC, (_D.SYNCING,), _D.SYNCED, "in ERDA with our CRC-32"),
    Row(_T.REUPLOAD, (_D.UPLOADED, _D.SYNCING), _D.CREATED_IN_ARS, "ARS lacks its bytes: upload again"),
    Row(_T.FINALIZE, (_D.SYNCED,), _D.FINALIZED, "its parent was finalized"),
    Row(_T.FAIL, (_D.REGISTERED, _D.CREATED_IN_ARS, _D.UPLOADED, _D.SYNCING), _D.FAILED,
        "ARS refused it, or its file never arrived"),
)  # fmt: skip

DERIVATIVE_MACHINE: MachineSpec[DerivativeState, DerivativeTrigger] = MachineSpec(
    kind="derivative",
    states=DerivativeState,
    triggers=DerivativeTrigger,
    rows=DERIVATIVE_TABLE,
    backward=frozenset({DerivativeTrigger.REUPLOAD}),
    terminal=frozenset({DerivativeState.FINALIZED, DerivativeState.FAILED}),
)


def apply_derivative(
    state: DerivativeState | None, trigger: DerivativeTrigger, *, reason: str = "", guid: str | None = None
) -> DerivativeState:
    """Where ``trigger`` takes a derivative in ``state``; raises :class:`IllegalTransition` when forbidden."""
    outcome: Outcome[DerivativeState] = DERIVATIVE_MACHINE.apply(state, trigger, reason=reason, entity=guid)
    return outcome.state
