"""The one way a step says "nothing to do until then": the asset waits with a wake-up in the store."""

from __future__ import annotations

__all__ = ["Parked"]


class Parked(Exception):
    """The asset waits until ``due`` (a time) for ``reason``; a callback or a job's exit may wake it sooner.

    Not an error: it neither counts against the retry budget nor ends a wait of the asset's own.
    """

    def __init__(self, due: float, reason: str, *, progressed: bool = False) -> None:
        super().__init__(reason)
        self.due = due
        self.reason = reason
        self.progressed = progressed  # the step did something (a job handed out, a result applied)
