"""The parent-asset machine: the table is complete, apply follows it, invariants hold for any sequence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration.errors import IllegalTransition
from integration.state_machines import (
    ACTIVE_STATES,
    ASSET_MACHINE,
    BACKWARD_TRIGGERS,
    DRIVERS,
    NEEDS_HUMAN_STATES,
    PREVIOUS,
    RETRY_TARGETS,
    TABLE,
    TERMINAL_STATES,
    AssetState,
    AssetTrigger,
    Driver,
    MachineSpec,
    Row,
    apply,
    is_forward,
)

#: The documented targets, written out independently of the table: (state, trigger) -> target.
EXPECTED: dict[tuple[AssetState, AssetTrigger], AssetState | str] = {
    (AssetState.DETECTED, AssetTrigger.INGEST): AssetState.INGESTED,
    (AssetState.INGESTED, AssetTrigger.CREATE): AssetState.CREATED_IN_ARS,
    (AssetState.CREATED_IN_ARS, AssetTrigger.UPLOAD): AssetState.UPLOADED,
    (AssetState.UPLOADED, AssetTrigger.START_SYNC): AssetState.SYNCING,
    (AssetState.SYNCING, AssetTrigger.CONFIRM_SYNC): AssetState.SYNCED,
    (AssetState.SYNCING, AssetTrigger.RESYNC): AssetState.UPLOADED,
    (AssetState.UPLOADED, AssetTrigger.REUPLOAD): AssetState.CREATED_IN_ARS,
    (AssetState.SYNCING, AssetTrigger.REUPLOAD): AssetState.CREATED_IN_ARS,
    (AssetState.SYNCED, AssetTrigger.OPEN_SHARE): AssetState.SHARE_OPEN,
    (AssetState.SHARE_OPEN, AssetTrigger.SEND_TO_HPC): AssetState.ON_HPC,
    (AssetState.ON_HPC, AssetTrigger.START_PROCESSING): AssetState.PROCESSING,
    (AssetState.PROCESSING, AssetTrigger.FINISH_PROCESSING): AssetState.PROCESSED,
    (AssetState.PROCESSED, AssetTrigger.FINALIZE): AssetState.FINALIZED,
    (AssetState.PAUSED, AssetTrigger.RESUME): PREVIOUS,
}
for _state in (AssetState.FAILED, AssetState.QUARANTINED):
    EXPECTED[(_state, AssetTrigger.RETRY)] = AssetState.INGESTED
    EXPECTED[(_state, AssetTrigger.REDELIVER)] = AssetState.INGESTED
    EXPECTED[(_state, AssetTrigger.RETRY_UPLOAD)] = AssetState.CREATED_IN_ARS
    EXPECTED[(_state, AssetTrigger.RETRY_SYNC)] = AssetState.UPLOADED
    EXPECTED[(_state, AssetTrigger.RETRY_POLL)] = AssetState.SYNCING
    EXPECTED[(_state, AssetTrigger.RETRY_SYNCED)] = AssetState.SYNCED
for _state in (
    AssetState.DETECTED,
    AssetState.INGESTED,
    AssetState.CREATED_IN_ARS,
    AssetState.UPLOADED,
    AssetState.SYNCING,
    AssetState.PAUSED,
):
    EXPECTED[(_state, AssetTrigger.QUARANTINE)] = AssetState.QUARANTINED
for _state in (*ACTIVE_STATES, AssetState.PAUSED):
    EXPECTED[(_state, AssetTrigger.FAIL)] = AssetState.FAILED
for _state in ACTIVE_STATES:
    EXPECTED[(_state, AssetTrigger.PAUSE)] = AssetState.PAUSED


@pytest.mark.parametrize("state", list(AssetState))
@pytest.mark.parametrize("trigger", list(AssetTrigger))
def test_every_pair_is_allowed_with_documented_target_or_rejected(state: AssetState, trigger: AssetTrigger) -> None:
    """Each (state, trigger) pair either moves to the documented target or raises IllegalTransition."""
    expected = EXPECTED.get((state, trigger))
    if expected is None:
        with pytest.raises(IllegalTransition):
            apply(state, trigger, reason="because", resume_state=AssetState.INGESTED)
        return
    outcome = apply(state, trigger, reason="because", resume_state=AssetState.UPLOADED)
    if expected == PREVIOUS:
        assert outcome.state is AssetState.UPLOADED
    else:
        assert outcome.state is expected


def test_only_detect_creates_an_asset() -> None:
    """An asset comes into existence by DETECT only; no other trigger applies to a new asset."""
    assert apply(None, AssetTrigger.DETECT).state is AssetState.DETECTED
    for trigger in AssetTrigger:
        if trigger is not AssetTrigger.DETECT:
            with pytest.raises(IllegalTransition):
                apply(None, trigger, reason="x")
    for state in AssetState:
        with pytest.raises(IllegalTransition):
            apply(state, AssetTrigger.DETECT, reason="x")


def test_every_state_has_exactly_one_driver() -> None:
    """The table of drivers names who moves each state on, and the human states are those of the operator."""
    assert set(DRIVERS) == set(AssetState)
    assert {s for s, d in DRIVERS.items() if d is Driver.OPERATOR} == NEEDS_HUMAN_STATES
    assert DRIVERS[AssetState.FINALIZED] is Driver.NOBODY


def test_every_retry_target_has_its_row_from_both_human_states() -> None:
    """Each place a reconciling retry can resume at is reachable from quarantined and failed."""
    for target, trigger in RETRY_TARGETS.items():
        for state in NEEDS_HUMAN_STATES:
            assert apply(state, trigger, reason="operator").state is target


def test_machine_spec_refuses_a_broken_table() -> None:
    """Two rows for one trigger, a row leaving a terminal state, or an unknown state are refused at build time."""
    good = Row(AssetTrigger.INGEST, (AssetState.DETECTED,), AssetState.INGESTED, "x")
    twice = (good, Row(AssetTrigger.INGEST, (AssetState.INGESTED,), AssetState.UPLOADED, "y"))
    leaves = (Row(AssetTrigger.FAIL, (AssetState.FINALIZED,), AssetState.FAILED, "z"),)
    for rows in (twice, leaves):
        with pytest.raises(ValueError):
            MachineSpec(
                kind="test",
                states=AssetState,
                triggers=AssetTrigger,
                rows=rows,
                backward=frozenset(),
                terminal=frozenset({AssetState.FINALIZED}),
            )


def test_table_and_transitions_machine_agree() -> None:
    """The transitions.Machine built from the table has exactly the table's edges."""
    machine = ASSET_MACHINE.machine
    for row in TABLE:
        for source in row.sources:
            assert machine.get_transitions(trigger=row.trigger.value, source=source.value)
    rows = sum(len(row.sources) for row in TABLE)
    assert rows == len(EXPECTED)


def test_pause_records_where_to_resume() -> None:
    """PAUSE remembers the state it left; RESUME needs it and goes back there."""
    outcome = apply(AssetState.SYNCING, AssetTrigger.PAUSE, reason="ARS down")
    assert outcome.state is AssetState.PAUSED
    assert outcome.resume_state is AssetState.SYNCING
    with pytest.raises(IllegalTransition):
        apply(AssetState.PAUSED, AssetTrigger.RESUME, reason="back", resume_state=None)


@pytest.mark.parametrize("trigger", sorted(BACKWARD_TRIGGERS))
def test_backward_triggers_need_a_reason(trigger: AssetTrigger) -> None:
    """A backward move without a reason is refused."""
    source = next(row.sources[0] for row in TABLE if row.trigger is trigger)
    with pytest.raises(IllegalTransition, match="without a reason"):
        apply(source, trigger, reason="  ", resume_state=AssetState.UPLOADED)


def test_nothing_leaves_a_terminal_state() -> None:
    """No trigger moves an asset out of a terminal state."""
    for state in TERMINAL_STATES:
        for trigger in AssetTrigger:
            with pytest.raises(IllegalTransition):
                apply(state, trigger, reason="x", resume_state=AssetState.INGESTED)


@settings(max_examples=300, deadline=None)
@given(
    triggers=st.lists(st.sampled_from(list(AssetTrigger)), max_size=60),
    reasons=st.lists(st.sampled_from(["", "ERDA failed", "lane back"]), min_size=60, max_size=60),
)
def test_random_sequences_keep_the_invariants(triggers: list[AssetTrigger], reasons: list[str]) -> None:
    """For any event sequence: backward moves only by backward triggers with a reason; terminal stays terminal."""
    state = AssetState.DETECTED
    resume: AssetState | None = None
    for trigger, reason in zip(triggers, reasons, strict=False):
        try:
            outcome = apply(state, trigger, reason=reason, resume_state=resume)
        except IllegalTransition:
            continue
        assert state not in TERMINAL_STATES
        if not is_forward(state, outcome.state):
            assert trigger in BACKWARD_TRIGGERS
            assert reason.strip()
        if outcome.state is AssetState.PAUSED:
            resume = outcome.resume_state
            assert resume is state
        state = outcome.state
