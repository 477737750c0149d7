"""The job machine: the table is what the processing issue documents, apply follows it for every (state,
trigger), and any sequence of triggers keeps the invariants."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration.errors import IllegalTransition
from integration.state_machines import (
    DIAGRAM_END,
    JOB_ACTIVE_STATES,
    JOB_DIAGRAM_BEGIN,
    JOB_MACHINE,
    JOB_TERMINAL_STATES,
    JobState,
    JobTrigger,
    apply_job,
    mermaid_diagram,
)

W, SU, Q, R, D, F, L, C = (
    JobState.WAITING, JobState.SUBMITTED, JobState.QUEUED, JobState.RUNNING, JobState.DONE, JobState.FAILED,
    JobState.LOST, JobState.CANCELLED,
)  # fmt: skip

#: Written out independently of the table: (state, trigger) -> target. Everything else is illegal.
EXPECTED: dict[tuple[JobState, JobTrigger], JobState] = {
    (W, JobTrigger.SUBMIT): SU,
    (SU, JobTrigger.QUEUE): Q,
    (SU, JobTrigger.START): R,
    (Q, JobTrigger.START): R,
    (L, JobTrigger.START): R,
    **{(s, JobTrigger.FINISH): D for s in (SU, Q, R, L)},
    **{(s, JobTrigger.FAIL): F for s in (SU, Q, R, L)},
    **{(s, JobTrigger.LOSE): L for s in (SU, Q, R)},
    (F, JobTrigger.RETRY): W,
    (L, JobTrigger.RETRY): W,
    **{(s, JobTrigger.CANCEL): C for s in (W, SU, Q, R, F, L)},
}


@pytest.mark.parametrize("state", list(JobState))
@pytest.mark.parametrize("trigger", list(JobTrigger))
def test_every_state_and_trigger(state: JobState, trigger: JobTrigger) -> None:
    expected = EXPECTED.get((state, trigger))
    if expected is None:
        with pytest.raises(IllegalTransition):
            apply_job(state, trigger, reason="because")
    else:
        assert apply_job(state, trigger, reason="because") == expected


def test_plan_creates_a_waiting_job_and_nothing_else_creates_one() -> None:
    assert apply_job(None, JobTrigger.PLAN) == W
    for trigger in set(JobTrigger) - {JobTrigger.PLAN}:
        with pytest.raises(IllegalTransition):
            apply_job(None, trigger)
    for state in JobState:
        with pytest.raises(IllegalTransition):
            apply_job(state, JobTrigger.PLAN)


def test_a_retry_needs_a_reason() -> None:
    with pytest.raises(IllegalTransition):
        apply_job(F, JobTrigger.RETRY)
    assert apply_job(F, JobTrigger.RETRY, reason="attempt 2 of 3: exit status 1") == W


def test_a_late_duplicate_for_a_done_job_is_no_transition() -> None:
    for trigger in (JobTrigger.FINISH, JobTrigger.START, JobTrigger.FAIL, JobTrigger.QUEUE):
        with pytest.raises(IllegalTransition):
            apply_job(D, trigger)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list(JobTrigger)), max_size=40))
def test_any_sequence_keeps_the_invariants(triggers: list[JobTrigger]) -> None:
    """Terminal states are never left; a job gets back to waiting only through failed or lost, so an attempt
    that may still run on a node (submitted/queued/running) is never followed by another one."""
    state = apply_job(None, JobTrigger.PLAN)
    for trigger in triggers:
        try:
            new = apply_job(state, trigger, reason="test")
        except IllegalTransition:
            continue
        assert state not in JOB_TERMINAL_STATES
        if new == W:
            assert state in (F, L)
        if state in JOB_ACTIVE_STATES and new == W:
            pytest.fail("an attempt still in flight was replaced by a new one")
        state = new


def test_the_doc_embeds_the_generated_job_diagram() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "state-machine.md"
    embedded = doc.read_text(encoding="utf-8").split(JOB_DIAGRAM_BEGIN, 1)[1].split(DIAGRAM_END, 1)[0].strip()
    assert embedded == mermaid_diagram(JOB_MACHINE), "regenerate:\n" + mermaid_diagram(JOB_MACHINE)
