"""The two translations of ``OSError`` in this adapter, each in one place.

* :func:`map_os_errors`: the session or workstation folder itself failed (the N-Drive is unreachable, a
  permission changed): :class:`TransientError`, the watcher tries again later.
* :func:`file_problems_as_rejection`: one file of an asset cannot be examined: that asset is rejected with a
  plain reason (:class:`Rejected`, which never leaves this package), its neighbours are unaffected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from integration.adapters.ndrive._names import printable
from integration.errors import DataError, TransientError

__all__ = ["Rejected", "file_problems_as_rejection", "map_os_errors"]


class Rejected(DataError):
    """Internal: a check failed with ``reason``; turned into an ``IntakeRejection`` before leaving the package."""


@contextlib.contextmanager
def map_os_errors(path: Path) -> Iterator[None]:
    """Translate ``OSError`` on an N-Drive folder into :class:`TransientError` naming the path."""
    try:
        yield
    except OSError as exc:
        where = exc.filename if exc.filename is not None else path
        raise TransientError(f"N-Drive folder {where} cannot be read or changed: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def file_problems_as_rejection(path: Path) -> Iterator[None]:
    """Translate ``OSError`` on one file into :class:`Rejected` with a reason a digitiser can act on."""
    try:
        yield
    except OSError as exc:
        raise Rejected(
            f"The file {printable(path.name)} could not be read ({exc.strerror or exc}). Check that it is a "
            "complete, readable file, then upload the asset again in a new session folder."
        ) from exc
