"""The derivative machine: every (state, trigger) as the processing issue documents it, the invariants under any
sequence, and the generated diagram in docs/state-machine.md."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration.errors import IllegalTransition
from integration.state_machines import (
    DERIVATIVE_DIAGRAM_BEGIN,
    DERIVATIVE_MACHINE,
    DIAGRAM_END,
    DerivativeState,
    DerivativeTrigger,
    apply_derivative,
    mermaid_diagram,
)

R, C, U, S, Y, Z, F = (
    DerivativeState.REGISTERED, DerivativeState.CREATED_IN_ARS, DerivativeState.UPLOADED, DerivativeState.SYNCING,
    DerivativeState.SYNCED, DerivativeState.FINALIZED, DerivativeState.FAILED,
)  # fmt: skip
T = DerivativeTrigger

#: Written out independently of the table. Everything else is illegal.
EXPECTED: dict[tuple[DerivativeState, DerivativeTrigger], DerivativeState] = {
    (R, T.CREATE): C,
    (C, T.UPLOAD): U,
    (U, T.START_SYNC): S,
    (S, T.CONFIRM_SYNC): Y,
    (U, T.REUPLOAD): C,
    (S, T.REUPLOAD): C,
    (Y, T.FINALIZE): Z,
    **{(s, T.FAIL): F for s in (R, C, U, S)},
}


@pytest.mark.parametrize("state", list(DerivativeState))
@pytest.mark.parametrize("trigger", list(DerivativeTrigger))
def test_every_state_and_trigger(state: DerivativeState, trigger: DerivativeTrigger) -> None:
    expected = EXPECTED.get((state, trigger))
    if expected is None:
        with pytest.raises(IllegalTransition):
            apply_derivative(state, trigger, reason="because")
    else:
        assert apply_derivative(state, trigger, reason="because") == expected


def test_only_register_creates_one() -> None:
    assert apply_derivative(None, T.REGISTER) == R
    for trigger in set(T) - {T.REGISTER}:
        with pytest.raises(IllegalTransition):
            apply_derivative(None, trigger)


def test_a_reupload_needs_a_reason() -> None:
    with pytest.raises(IllegalTransition):
        apply_derivative(S, T.REUPLOAD)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list(DerivativeTrigger)), max_size=30))
def test_any_sequence_never_leaves_a_terminal_state_and_finalizes_only_from_synced(triggers: list[T]) -> None:
    state = apply_derivative(None, T.REGISTER)
    for trigger in triggers:
        try:
            new = apply_derivative(state, trigger, reason="test")
        except IllegalTransition:
            continue
        assert state not in (Z, F)
        if new == Z:
            assert state == Y  # only what ERDA holds is ever finalized
        state = new


def test_the_doc_embeds_the_generated_diagram() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "state-machine.md"
    embedded = doc.read_text(encoding="utf-8").split(DERIVATIVE_DIAGRAM_BEGIN, 1)[1].split(DIAGRAM_END, 1)[0].strip()
    assert embedded == mermaid_diagram(DERIVATIVE_MACHINE), "regenerate:\n" + mermaid_diagram(DERIVATIVE_MACHINE)
