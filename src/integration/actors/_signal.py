"""A signal one task sets and another waits for, with a time limit: how actors wake each other up."""

from __future__ import annotations

import math

import trio

__all__ = ["Signal"]


class Signal:
    """Set by producers ("there may be new work"), waited for by one consumer, then reset.

    A ``set`` while nobody waits is remembered until the next :meth:`wait`, so no wake-up is lost.
    """

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        """Wake the waiting task (or the next one to wait)."""
        self._event.set()

    async def wait(self, timeout_s: float = math.inf) -> bool:
        """Wait until set or ``timeout_s`` passed; True when it was set. Resets the signal either way."""
        with trio.move_on_after(max(0.0, timeout_s)):
            await self._event.wait()
        was_set = self._event.is_set()
        self._event = trio.Event()
        return was_set
