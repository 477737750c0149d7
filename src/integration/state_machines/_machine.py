"""The machine core: a transition table as data, and one pure ``apply`` for any kind of entity.

An entity kind (a parent asset today; jobs and derivative child assets next) declares its states and triggers
as enums and its rows as a literal table; :class:`MachineSpec` checks the table once, builds a
``transitions.Machine`` from it and answers every "where does this trigger take an entity in this state?"
from that machine, so the library and the table can never disagree. Only ``store/`` persists the result.

Why ``transitions`` and only for this: its model callbacks would run side effects from inside a transition,
but here the store owns persistence (state and event in one transaction) and the actors own side effects;
and its ``AsyncMachine`` does not run on trio. What it does well, and is used for, is validating a table
(unknown states, duplicate rows) and answering lookups.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from functools import cached_property
from typing import Generic, TypeVar

import msgspec
from transitions import Machine

from integration.errors import IllegalTransition

__all__ = ["PREVIOUS", "MachineSpec", "Outcome", "Row"]

S = TypeVar("S", bound=enum.StrEnum)
T = TypeVar("T", bound=enum.StrEnum)

#: Pseudo-target of a resume trigger: the state recorded when the entity was paused.
PREVIOUS = "previous"


class Row(msgspec.Struct, Generic[S, T], frozen=True):
    """One row of a table: ``trigger`` moves an entity from any of ``sources`` to ``dest``.

    Empty ``sources`` means "creates the entity" (it has no state before). ``dest`` is a state, or
    :data:`PREVIOUS` for a resume trigger.
    """

    trigger: T
    sources: tuple[S, ...]
    dest: S | str
    doc: str


class Outcome(msgspec.Struct, Generic[S], frozen=True):
    """The result of :meth:`MachineSpec.apply`: the new state, and the state to resume to (for a pause)."""

    state: S
    resume_state: S | None = None


class MachineSpec(Generic[S, T]):
    """A validated transition table for one entity kind, and its pure ``apply``.

    ``backward`` triggers move an entity back along its happy path and need a non-empty reason; ``pause``
    is the trigger whose target records a resume state; ``terminal`` states are never left.
    """

    def __init__(
        self,
        *,
        kind: str,
        states: type[S],
        triggers: type[T],
        rows: Iterable[Row[S, T]],
        backward: frozenset[T],
        terminal: frozenset[S],
        pause: T | None = None,
        resumable: frozenset[S] = frozenset(),
    ) -> None:
        self.kind = kind
        self.states = states
        self.triggers = triggers
        self.rows: tuple[Row[S, T], ...] = tuple(rows)
        self.backward = backward
        self.terminal = terminal
        self.pause = pause
        self.resumable = resumable
        self._check()

    def _check(self) -> None:
        seen: set[T] = set()
        for row in self.rows:
            if row.trigger in seen:
                raise ValueError(f"{self.kind}: trigger {row.trigger!r} has two rows; a trigger has one target")
            seen.add(row.trigger)
            for source in row.sources:
                if source in self.terminal:
                    raise ValueError(f"{self.kind}: {row.trigger!r} leaves the terminal state {source!r}")
        self.machine  # noqa: B018  (builds the transitions.Machine, which rejects unknown states)

    @cached_property
    def machine(self) -> Machine:
        """A ``transitions.Machine`` holding every state and every row (no automatic transitions)."""
        machine = Machine(
            model=None,
            states=[state.value for state in self.states],
            initial=None,
            auto_transitions=False,
        )
        for row in self.rows:
            if not row.sources:
                continue
            dest = row.sources[0].value if row.dest == PREVIOUS else str(row.dest)
            machine.add_transition(row.trigger.value, [s.value for s in row.sources], dest)
        return machine

    @cached_property
    def _lookup(self) -> dict[tuple[S | None, T], S | str]:
        dest_of = {row.trigger: row.dest for row in self.rows}
        lookup: dict[tuple[S | None, T], S | str] = {}
        for row in self.rows:
            if not row.sources:
                lookup[(None, row.trigger)] = row.dest
        for trigger in self.triggers:
            for state in self.states:
                if self.machine.get_transitions(trigger=trigger.value, source=state.value):
                    lookup[(state, trigger)] = dest_of[trigger]
        return lookup

    def allowed(self, state: S | None, trigger: T) -> bool:
        """Whether the table has a row for ``trigger`` in ``state`` (``None``: the entity does not exist yet)."""
        return (state, trigger) in self._lookup

    def triggers_from(self, state: S) -> list[T]:
        """The triggers that may move an entity out of ``state``, in table order."""
        return [row.trigger for row in self.rows if state in row.sources]

    def apply(
        self,
        state: S | None,
        trigger: T,
        *,
        reason: str = "",
        resume_state: S | None = None,
        entity: str | None = None,
    ) -> Outcome[S]:
        """Where ``trigger`` takes an entity in ``state`` (``None`` for a trigger that creates it).

        Raises :class:`IllegalTransition` when the table has no such row, when a backward trigger comes
        without a ``reason``, or when a resume lacks the ``resume_state`` recorded at pause time.
        """
        shown = state.value if state is not None else "(new)"
        dest = self._lookup.get((state, trigger))
        if dest is None:
            raise IllegalTransition(shown, trigger.value, guid=entity)
        if trigger in self.backward and not reason.strip():
            raise IllegalTransition(shown, f"{trigger.value} (without a reason)", guid=entity)
        if dest == PREVIOUS:
            if resume_state is None or resume_state not in self.resumable:
                raise IllegalTransition(shown, f"{trigger.value} (no state to resume to)", guid=entity)
            return Outcome(resume_state)
        new_state = self.states(dest)
        paused = self.pause is not None and trigger is self.pause
        return Outcome(new_state, resume_state=state if paused else None)
