"""The N-Drive adapter: find session folders, check their assets, and leave notes for the digitisers.

Layout: ``<ndrive root>/<workstation folder>/<session folder>/`` holding, per asset, ``<guid>.json``,
``<guid>.<file_format>`` (the converted image) and optional raw siblings ``<guid>.<raw ext>``.

Every function here is synchronous and blocking; the watcher calls them through ``trio.to_thread.run_sync``.
Bad input never raises: it becomes an :class:`IntakeRejection` with a reason a digitiser can act on, written
next to the files by :func:`write_error_note`. Only an N-Drive folder that cannot be read or changed raises
:class:`~integration.errors.TransientError`. Nothing here deletes or modifies an asset's files; the only
changes on the N-Drive are error notes and the ``imported_`` rename of a session folder.
"""

from integration.adapters.ndrive._model import (
    AssetCandidate,
    FileState,
    IntakeRejection,
    IntakeRules,
    SessionPlan,
    SessionSnapshot,
)
from integration.adapters.ndrive._notes import mark_session_imported, write_error_note
from integration.adapters.ndrive._plan import plan_session
from integration.adapters.ndrive._scan import list_session_folders, snapshot_session

__all__ = [
    "AssetCandidate",
    "FileState",
    "IntakeRejection",
    "IntakeRules",
    "SessionPlan",
    "SessionSnapshot",
    "list_session_folders",
    "mark_session_imported",
    "plan_session",
    "snapshot_session",
    "write_error_note",
]
