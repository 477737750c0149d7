"""The N-Drive adapter: find session folders, check their assets, and leave notes for the digitisers.

Layout: ``<ndrive root>/<workstation folder>/<session folder>/`` holding, per asset, ``<guid>.json``,
``<guid>.<file_format>`` (the converted image) and optional raw siblings ``<guid>.<raw ext>``.

Every function here is synchronous and blocking; the watcher calls them through ``trio.to_thread.run_sync``.
Bad input never raises: it becomes an :class:`IntakeRejection` with a reason a digitiser can act on, written
next to the files by :func:`write_error_note` (or, for a folder that cannot be examined at all, a plan with a
``folder_problem``, written by :func:`write_session_note`). Errors are classified by scope: the N-Drive mount
failing or its root missing raises :class:`~integration.errors.NdriveUnavailable` (pause the intake lane); one
session folder that cannot be read or changed raises :class:`~integration.errors.TransientError` (try it again
later). Nothing here deletes or modifies an asset's files; the only changes on the N-Drive are notes and the
``imported_`` rename of a session folder.
"""

from integration.adapters.ndrive._errors import MOUNT_ERRNOS, raise_if_mount_error
from integration.adapters.ndrive._model import (
    AssetCandidate,
    FileState,
    IntakeRejection,
    IntakeRules,
    SessionPlan,
    SessionSnapshot,
)
from integration.adapters.ndrive._names import SESSION_NOTE_NAME
from integration.adapters.ndrive._notes import write_error_note, write_session_note
from integration.adapters.ndrive._plan import plan_session
from integration.adapters.ndrive._rename import (
    find_imported_folder,
    mark_session_imported,
    plan_imported_name,
    rename_outcome,
    rename_session,
)
from integration.adapters.ndrive._scan import list_session_folders, missing_workstations, snapshot_session

__all__ = [
    "MOUNT_ERRNOS",
    "SESSION_NOTE_NAME",
    "AssetCandidate",
    "FileState",
    "IntakeRejection",
    "IntakeRules",
    "SessionPlan",
    "SessionSnapshot",
    "find_imported_folder",
    "list_session_folders",
    "mark_session_imported",
    "missing_workstations",
    "plan_imported_name",
    "plan_session",
    "raise_if_mount_error",
    "rename_outcome",
    "rename_session",
    "snapshot_session",
    "write_error_note",
    "write_session_note",
]
