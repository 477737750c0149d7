"""One exception tree for the whole package.

Every error the integration raises is an :class:`IntegrationError`. Adapters translate foreign exceptions
(httpx, OSError, sqlite3, ...) into these classes at their edge, in one place each, so nothing above
``adapters/`` ever catches a library's exception. The class says what the caller should do::

    IntegrationError
    ├── ConfigError            the configuration is wrong; fix the file, nothing ran
    ├── TransientError         retry with capped exponential back-off and jitter
    │   └── ArsTransientError      5xx, 429, timeouts, connection reset
    ├── InfrastructureError    a lane (ARS, disk, cluster) is down: pause the lane, resume by itself
    │   ├── ArsUnavailable         ARS unreachable after retries
    │   └── ArsDiskFull            ARS answered DISK_FULL
    ├── PermanentError         needs a human; retrying cannot help
    │   ├── DataError              bad input: the asset is quarantined with a plain reason
    │   │   ├── InvalidGuid
    │   │   └── MetadataError
    │   └── ArsRejected            ARS refused the request (4xx) for a reason that is not transient
    │       ├── ArsConflict            "already exists" / "already being processed": reconcile, never re-create
    │       └── ArsCrcMismatch         507: the bytes ARS received do not have our CRC-32
    ├── IllegalTransition      a trigger that the state machine does not allow in this state
    └── StateConflict          the stored state is not the one the caller expected (lost race)

Every error carries its context (asset GUID, request) as attributes, not only in its message.
"""

from __future__ import annotations

__all__ = [
    "ArsConflict",
    "ArsCrcMismatch",
    "ArsDiskFull",
    "ArsRejected",
    "ArsTransientError",
    "ArsUnavailable",
    "ConfigError",
    "DataError",
    "IllegalTransition",
    "InfrastructureError",
    "IntegrationError",
    "InvalidGuid",
    "MetadataError",
    "PermanentError",
    "StateConflict",
    "TransientError",
]


class IntegrationError(Exception):
    """Root of every error raised by this package.

    ``guid`` names the asset concerned, when there is one.
    """

    def __init__(self, message: str, *, guid: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.guid = guid

    def __str__(self) -> str:
        return self.message


class ConfigError(IntegrationError):
    """The configuration cannot be used; ``problems`` lists every problem found, each with its key path."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class TransientError(IntegrationError):
    """A failure that may go away by itself: retry with back-off, waiting at least ``retry_after_s`` if given."""

    def __init__(self, message: str, *, guid: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message, guid=guid)
        self.retry_after_s = retry_after_s


class InfrastructureError(IntegrationError):
    """A shared resource is down; the lane that uses it pauses and resumes by itself."""

    def __init__(self, message: str, *, lane: str, guid: str | None = None) -> None:
        super().__init__(message, guid=guid)
        self.lane = lane


class PermanentError(IntegrationError):
    """A failure that retrying cannot fix; a human must look at it."""


class DataError(PermanentError):
    """The asset's own files or metadata are wrong; it is quarantined with this reason."""


class InvalidGuid(DataError):
    """A text is not a well-formed DaSSCo GUID."""


class MetadataError(DataError):
    """A metadata JSON cannot be decoded or lacks required fields."""


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


class ArsUnavailable(InfrastructureError):
    """ARS (or its Keycloak) stayed unreachable after the retry budget was spent."""

    def __init__(self, message: str, *, guid: str | None = None) -> None:
        super().__init__(message, lane="ars", guid=guid)


class ArsDiskFull(InfrastructureError):
    """ARS has no room for the requested allocation (``http_allocation_status`` DISK_FULL)."""

    def __init__(self, message: str, *, guid: str | None = None) -> None:
        super().__init__(message, lane="ars", guid=guid)


class ArsRejected(PermanentError):
    """ARS refused a request; ``status_code`` and ``error_message`` are what it said."""

    def __init__(self, message: str, *, status_code: int, error_message: str = "", guid: str | None = None) -> None:
        super().__init__(message, guid=guid)
        self.status_code = status_code
        self.error_message = error_message


class ArsConflict(ArsRejected):
    """ARS says the asset already exists or is being processed: reconcile with its status instead."""


class ArsCrcMismatch(ArsRejected):
    """ARS computed another CRC-32 than the one we sent (HTTP 507); nothing was stored."""


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
