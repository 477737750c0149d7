"""One exception tree for the whole package.

Every error the integration raises is an :class:`IntegrationError`. Adapters translate foreign exceptions
(httpx, OSError, sqlite3, ...) into these classes at their edge, in one place each, so nothing above
``adapters/`` ever catches a library's exception.

Each class has a *scope* (:class:`Scope`): would the next asset get the same answer? That decides what the
caller does, before the kind of error does::

    IntegrationError
    ├── ConfigError              the configuration is wrong; fix the file, nothing ran
    ├── TransientError           ASSET  retry this one call/asset with capped exponential back-off and jitter
    │   ├── ArsTransientError        5xx, 429, timeouts, connection reset (retried inside the ARS adapter)
    │   ├── ArsCrcMismatch           507: ARS computed another CRC-32; retried with back-off before quarantine
    │   ├── AssetWaits               this asset must wait (ARS de-dup block, too big for the free space)
    │   ├── DownloadFailed           a node could not fetch a file from its share link, or its CRC-32 differed
    │   └── NodeResourceError        a processing node ran out of memory or disk, or had an I/O error
    ├── InfrastructureError      SITE   a lane is down: pause it, resume by itself when the cause is gone
    │   ├── ArsUnavailable           ARS (or Keycloak) unreachable after the retry budget
    │   ├── ArsDiskFull              DISK_FULL with no room left for anyone
    │   ├── ArsCredentialsRefused    Keycloak refused the client id / secret
    │   ├── ArsForbidden             ARS refuses this client the rights it needs
    │   ├── ArsRouteNotFound         404 on a path that cannot be unknown: ars.base_url is wrong
    │   ├── NdriveUnavailable        the N-Drive mount fails (EIO, ESTALE, timeouts, vanished root)
    │   └── StorageUnavailable       the local storage disk is full or failing
    ├── GroupHeld                GROUP  every asset of one group gets this answer (a workstation out of
    │                                   service, an unknown collection/pipeline/file format): hold that group
    ├── PermanentError           ASSET  needs a human; retrying cannot help
    │   ├── DataError                bad input: the asset is quarantined with a plain reason
    │   │   ├── InvalidGuid
    │   │   ├── MetadataError
    │   │   ├── ImageUnreadable          an image module cannot decode the file (truncated, empty, too large)
    │   │   └── DownloadRefused          the share refuses the file (4xx): the link is wrong or the share closed
    │   └── ArsRejected              ARS refused a request about this asset's own data (4xx)
    │       ├── ArsConflict              "already exists" / "already being processed" / "already checked out"
    │       └── ArsShareClosed           the asset has no open share (upload, synchronize): open one first
    ├── IllegalTransition        a trigger that the state machine does not allow in this state
    │   └── RetriesExhausted         a job has had every attempt its configuration allows
    ├── StateConflict            the stored state is not the one the caller expected (lost race)
    │   ├── StaleAttempt             a job callback or step for an earlier attempt than the stored one
    │   └── UnknownJob               no such job (or no such asset) in the store
    └── DaemonRunning            another daemon holds the database (one daemon per database)

Every error carries its context (asset GUID, request) as attributes, not only in its message; a site error
carries a ``reason`` a human can act on.
"""

from __future__ import annotations

import enum
from typing import ClassVar, Literal

__all__ = [
    "ArsConflict",
    "ArsCrcMismatch",
    "ArsCredentialsRefused",
    "ArsDiskFull",
    "ArsForbidden",
    "ArsRejected",
    "ArsRouteNotFound",
    "ArsShareClosed",
    "ArsTransientError",
    "ArsUnavailable",
    "AssetWaits",
    "ConfigError",
    "ConflictKind",
    "DaemonRunning",
    "DataError",
    "DownloadFailed",
    "DownloadRefused",
    "GroupHeld",
    "GroupKind",
    "HpcUnavailable",
    "IllegalTransition",
    "ImageUnreadable",
    "InfrastructureError",
    "IntegrationError",
    "InvalidGuid",
    "MetadataError",
    "NdriveUnavailable",
    "NodeResourceError",
    "PermanentError",
    "RetriesExhausted",
    "Scope",
    "StaleAttempt",
    "StateConflict",
    "StorageUnavailable",
    "TransientError",
    "UnknownJob",
]


class Scope(enum.StrEnum):
    """Who else would get the same answer: that decides pause, hold or quarantine."""

    SITE = "site"  # every asset: pause the lane
    GROUP = "group"  # every asset of one group (a workstation, a collection, ...): hold the group
    ASSET = "asset"  # this asset only: retry it, or quarantine it


#: The kinds of group an ARS refusal can be about; the group's key is ``"<kind>:<value>"``.
GroupKind = Literal["workstation", "collection", "institution", "pipeline", "file_format"]
#: What an :class:`ArsConflict` says exists already.
ConflictKind = Literal["exists", "being_processed", "checked_out"]


class IntegrationError(Exception):
    """Root of every error raised by this package.

    ``guid`` names the asset concerned, when there is one.
    """

    scope: ClassVar[Scope] = Scope.ASSET

    def __init__(self, message: str, *, guid: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.guid = guid

    def __str__(self) -> str:
        return self.message


class ConfigError(IntegrationError):
    """The configuration cannot be used; ``problems`` lists every problem found, each with its key path."""

    scope = Scope.SITE

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class TransientError(IntegrationError):
    """A failure that may go away by itself: retry with back-off, waiting at least ``retry_after_s`` if given."""

    def __init__(self, message: str, *, guid: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message, guid=guid)
        self.retry_after_s = retry_after_s


class ArsTransientError(TransientError):
    """ARS answered 5xx/429 or did not answer in time."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        guid: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, guid=guid, retry_after_s=retry_after_s)
        self.status_code = status_code


class ArsCrcMismatch(TransientError):
    """ARS computed another CRC-32 than the one we sent (HTTP 507); nothing was stored.

    Usually bytes damaged on the way: upload again after a back-off (by the asset actor, not inside the ARS
    adapter); quarantine only when it persists.
    """

    def __init__(self, message: str, *, status_code: int = 507, guid: str | None = None) -> None:
        super().__init__(message, guid=guid)
        self.status_code = status_code


class AssetWaits(TransientError):
    """This asset must wait before its next try, for a reason that concerns it alone.

    Examples: ARS still blocks the GUID after a create that failed on its side (300 s), or ARS answered
    DISK_FULL while it has room for smaller assets. ``retry_after_s`` says how long at least; the wait does
    not count against the asset's retry budget.
    """


class DownloadFailed(TransientError):
    """A job could not fetch its file from the share link, or the bytes' CRC-32 differ from the expected one."""


class NodeResourceError(TransientError):
    """A processing node could not do the work right now: out of memory, disk full, an I/O error. The file is
    not to blame; the job is retried (on another node, if the executor can)."""


class InfrastructureError(IntegrationError):
    """A shared resource is down; the lane ``lane`` pauses and resumes by itself.

    ``reason`` says what a human can do about it; ``probe`` says how the lane learns that the cause is gone:
    ``"health"`` (ask the resource) or ``"asset"`` (one parked asset's own retry, e.g. for DISK_FULL, which no
    health check can see). ``confirm`` is True for an error that one asset or one folder may meet alone while
    the resource is fine (a request that keeps timing out, one unreadable folder): the lane pauses only when
    its health probe fails too. A refusal every asset would get (credentials, a missing role, a wrong URL, a
    full disk) pauses the lane at once: no health check can see it.
    """

    scope = Scope.SITE
    probe: Literal["health", "asset"] = "health"
    confirm: bool = False

    def __init__(
        self, message: str, *, lane: str, guid: str | None = None, probe: Literal["health", "asset"] | None = None
    ) -> None:
        super().__init__(message, guid=guid)
        self.lane = lane
        if probe is not None:
            self.probe = probe

    @property
    def reason(self) -> str:
        """What is wrong and what to do, in words for the data manager (the message by default)."""
        return self.message


class ArsUnavailable(InfrastructureError):
    """ARS (or its Keycloak) stayed unreachable after the retry budget was spent (confirmed by its health check)."""

    confirm = True

    def __init__(self, message: str, *, guid: str | None = None) -> None:
        super().__init__(message, lane="ars", guid=guid)


class ArsDiskFull(InfrastructureError):
    """ARS has no room left for new shares (``http_allocation_status`` DISK_FULL with little or nothing free).

    It pauses the ``ars-space`` lane only — what needs new share space (a create, a share opened again) — so
    uploads into open shares, synchronisation and polling go on and free the space. ``remaining_mb`` is what
    ARS reported as free (``None`` when it did not say), ``requested_mb`` what was asked.
    """

    probe = "asset"

    def __init__(
        self,
        message: str,
        *,
        guid: str | None = None,
        remaining_mb: int | None = None,
        requested_mb: int | None = None,
    ) -> None:
        super().__init__(message, lane="ars-space", guid=guid)
        self.remaining_mb = remaining_mb
        self.requested_mb = requested_mb


class ArsCredentialsRefused(InfrastructureError):
    """Keycloak refused the client credentials (401 or 400 from the token endpoint).

    ``restart_needed`` is True when the secret comes from an environment variable, which a running daemon
    cannot re-read; a secret file is re-read on every token request.
    """

    def __init__(self, message: str, *, restart_needed: bool = False) -> None:
        super().__init__(message, lane="ars")
        self.restart_needed = restart_needed


class ArsForbidden(InfrastructureError):
    """ARS refuses this client a right every asset needs (a missing role, no write right)."""

    def __init__(self, message: str, *, status_code: int, guid: str | None = None) -> None:
        super().__init__(message, lane="ars", guid=guid)
        self.status_code = status_code


class ArsRouteNotFound(InfrastructureError):
    """ARS answered 404 on a path that exists in every ARS: the configured URL is wrong."""

    def __init__(self, message: str, *, url: str, guid: str | None = None) -> None:
        super().__init__(message, lane="ars", guid=guid)
        self.url = url


class NdriveUnavailable(InfrastructureError):
    """The N-Drive mount itself fails (EIO, ESTALE, a hung call, the root vanished): pause the intake lane.

    Met in one folder while the mount's health probe answers, it is that folder's problem (``confirm``).
    """

    confirm = True

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message, lane="intake")
        self.path = path


class HpcUnavailable(InfrastructureError):
    """Jobs cannot run anywhere: the nodes' configuration is refused (their ARS secret, the callback token, an
    executor that cannot start jobs). Every asset would fail the same way: the ``hpc`` lane pauses, and one
    parked asset's next job is its probe."""

    def __init__(self, message: str, *, guid: str | None = None) -> None:
        super().__init__(message, lane="hpc", guid=guid, probe="asset")


class StorageUnavailable(InfrastructureError):
    """The local storage disk is full or failing: pause the storage lane (nothing is lost, nothing rejected).

    ``confirm`` for what one asset may meet alone (its local folder vanished, one unreadable file): the lane
    pauses only when the storage lane's health probe fails too. A full disk is not confirmed: the probe writes
    a small file, which a nearly full disk still takes.
    """

    def __init__(
        self, message: str, *, path: str, probe: Literal["health", "asset"] | None = None, confirm: bool = False
    ) -> None:
        super().__init__(message, lane="storage", probe=probe)
        self.path = path
        self.confirm = confirm


class GroupHeld(IntegrationError):
    """ARS gives every asset of one group this refusal: hold the group's assets, let the others go on.

    ``group_kind`` names the kind of group; ``group_value`` its name when the answer says it (``None``: take it
    from the asset, e.g. "Workstation [OUT_OF_SERVICE] is marked as out of service" names no workstation).
    """

    scope = Scope.GROUP

    def __init__(
        self,
        message: str,
        *,
        group_kind: GroupKind,
        group_value: str | None = None,
        status_code: int | None = None,
        error_message: str = "",
        guid: str | None = None,
    ) -> None:
        super().__init__(message, guid=guid)
        self.group_kind: GroupKind = group_kind
        self.group_value = group_value
        self.status_code = status_code
        self.error_message = error_message


class PermanentError(IntegrationError):
    """A failure that retrying cannot fix; a human must look at it."""


class DataError(PermanentError):
    """The asset's own files or metadata are wrong; it is quarantined with this reason."""


class InvalidGuid(DataError):
    """A text is not a well-formed DaSSCo GUID."""


class MetadataError(DataError):
    """A metadata JSON cannot be decoded or lacks required fields."""


class ImageUnreadable(DataError):
    """An image module cannot decode the file: truncated, empty, corrupt raw, or more pixels than allowed."""

    def __init__(self, message: str, *, path: str, guid: str | None = None) -> None:
        super().__init__(message, guid=guid)
        self.path = path


class DownloadRefused(DataError):
    """The share answered a download with a 4xx (other than 408/429): retrying the same link cannot help."""

    def __init__(self, message: str, *, status_code: int, url: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.url = url


class ArsRejected(PermanentError):
    """ARS refused a request about this asset; ``status_code`` and ``error_message`` are what it said."""

    def __init__(self, message: str, *, status_code: int, error_message: str = "", guid: str | None = None) -> None:
        super().__init__(message, guid=guid)
        self.status_code = status_code
        self.error_message = error_message


class ArsConflict(ArsRejected):
    """ARS says the asset (or its share) already exists or is on its way: reconcile, never create twice.

    ``kind``: ``exists`` (400 "Asset X already exists"), ``being_processed`` (403 "already being processed":
    a create in flight *or* one that failed on ARS's side within the last 300 s, so it does NOT prove the
    asset exists), ``checked_out`` (createShare: a share is already open).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_message: str = "",
        guid: str | None = None,
        kind: ConflictKind = "exists",
    ) -> None:
        super().__init__(message, status_code=status_code, error_message=error_message, guid=guid)
        self.kind: ConflictKind = kind


class ArsShareClosed(ArsRejected):
    """The asset has no writeable share in ARS ("There is no writeable directory for this asset", "No writeable
    share for asset found"): open one with createShare (or reconcile with the status) and try again."""


class IllegalTransition(IntegrationError):
    """``trigger`` is not allowed in ``state``."""

    def __init__(self, state: str, trigger: str, *, guid: str | None = None) -> None:
        super().__init__(f"trigger {trigger!r} is not allowed in state {state!r}", guid=guid)
        self.state = state
        self.trigger = trigger


class StateConflict(IntegrationError):
    """The stored state differs from the one the caller based its decision on."""

    def __init__(self, *, guid: str, expected: str, actual: str | None) -> None:
        super().__init__(f"asset {guid}: expected state {expected!r}, found {actual!r}", guid=guid)
        self.expected = expected
        self.actual = actual


class RetriesExhausted(IllegalTransition):
    """Job ``job`` of asset ``guid`` has had ``attempts`` attempts, all it may: its asset fails with its reason."""

    def __init__(self, *, guid: str, job: str, attempts: int) -> None:
        super().__init__("failed", f"retry ({attempts} attempt(s) used, none left)", guid=guid)
        self.job = job
        self.attempts = attempts


class StaleAttempt(StateConflict):
    """A step or callback for attempt ``attempt`` of job ``job``, while the store holds ``current``: ignore it."""

    def __init__(self, *, guid: str, job: str, attempt: int, current: int) -> None:
        super().__init__(guid=guid, expected=f"{job} attempt {attempt}", actual=f"{job} attempt {current}")
        self.job = job
        self.attempt = attempt
        self.current = current


class UnknownJob(StateConflict):
    """The store has no job ``job`` for asset ``guid`` (or no such asset)."""

    def __init__(self, *, guid: str, job: str) -> None:
        super().__init__(guid=guid, expected=f"a planned job {job!r}", actual=None)
        self.job = job


class DaemonRunning(IntegrationError):
    """Another daemon (``pid``, None if unknown) holds the database at ``path``: one daemon per database."""

    scope = Scope.SITE

    def __init__(self, *, path: str, pid: int | None) -> None:
        who = f"PID {pid}" if pid else "PID unknown"
        super().__init__(f"another daemon ({who}) holds {path}; stop it first, or give this one its own database")
        self.path = path
        self.pid = pid
