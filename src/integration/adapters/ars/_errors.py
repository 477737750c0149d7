"""The one place where httpx exceptions and ARS answers become :mod:`integration.errors` classes.

ARS and its file proxy disagree on status codes (ars-api.md §1, §12.7): the file proxy answers business
refusals with 400, ARS with 403; a create whose share allocation failed answers the *asset* body with the
allocation status inside. Classification therefore reads ``httpInfo.http_allocation_status`` first, then
the HTTP code, then (only for the two conflict texts) the error message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import msgspec
import trio

from integration.adapters.ars._models import Reply, TokenErrorReply
from integration.errors import (
    ArsConflict,
    ArsCrcMismatch,
    ArsDiskFull,
    ArsRejected,
    ArsTransientError,
    ConfigError,
    DataError,
    IntegrationError,
)

__all__ = ["_map_httpx_errors", "error_for_response", "read_reply", "token_error", "unsuccessful"]

#: ``HttpAllocationStatus`` -> the HTTP code ARS would answer for it (ars-api.md §5.6).
_ALLOCATION_HTTP = {
    "BAD_REQUEST": 400,
    "DISK_FULL": 403,
    "SHARE_NOT_FOUND": 404,
    "UNKNOWN_ERROR": 500,
    "INTERNAL_ERROR": 500,
    "UPSTREAM_ERROR": 503,
}
#: Texts of ARS's two refusals that mean "this asset is already there or on its way" (ars-api.md §15).
_CONFLICT_MARKERS = ("already exists", "already being processed")
_RETRYABLE_4XX = frozenset({408, 425, 429})


@contextmanager
def _map_httpx_errors(*, operation: str, guid: str | None = None) -> Iterator[None]:
    """Re-raise httpx, timeout, decoding and local-file errors of one exchange as our own classes."""
    try:
        yield
    except trio.TooSlowError as exc:
        raise ArsTransientError(f"ARS {operation}: no answer in time", guid=guid) from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise ConfigError(f"ARS {operation}: {exc} (check ars.base_url and ars.token_url)") from exc
    except httpx.HTTPError as exc:  # connection refused/reset, protocol errors, httpx's own timeouts
        raise ArsTransientError(f"ARS {operation}: {type(exc).__name__}: {exc}", guid=guid) from exc
    except msgspec.DecodeError as exc:  # e.g. a proxy's HTML error page with status 200
        raise ArsTransientError(f"ARS {operation}: unreadable answer: {exc}", guid=guid) from exc
    except OSError as exc:  # only the local copy being uploaded is read inside an exchange
        raise DataError(f"ARS {operation}: cannot read the local copy: {exc}", guid=guid) from exc


def unsuccessful(response: httpx.Response) -> bool:
    """True unless the answer is 2xx *and* carries no failed share allocation."""
    if not response.is_success:
        return True
    reply = read_reply(response.content)
    return reply is not None and reply.allocation_status not in (None, "SUCCESS")


def error_for_response(response: httpx.Response, *, operation: str, guid: str | None = None) -> IntegrationError:
    """The error an unsuccessful ARS/file-proxy answer means for the caller."""
    reply = read_reply(response.content)
    message = _message(reply, response)
    allocation = reply.allocation_status if reply else None
    status = response.status_code
    if allocation not in (None, "SUCCESS"):
        status = _ALLOCATION_HTTP.get(str(allocation), 500)
    text = f"ARS {operation} answered {status}: {message}"
    if allocation == "DISK_FULL":
        return ArsDiskFull(text, guid=guid)
    if status == 507:
        crcs = f"expected {reply.expected_crc}, ARS computed {reply.actual_crc}" if reply else message
        return ArsCrcMismatch(f"ARS {operation}: CRC-32 mismatch ({crcs})", status_code=507, guid=guid)
    if status in _RETRYABLE_4XX or status >= 500:
        return ArsTransientError(text, status_code=status, guid=guid)
    if status == 409 or any(marker in message for marker in _CONFLICT_MARKERS):
        return ArsConflict(text, status_code=status, error_message=message, guid=guid)
    return ArsRejected(text, status_code=status, error_message=message, guid=guid)


def token_error(response: httpx.Response) -> IntegrationError:
    """The error a failed Keycloak token request means: 5xx/429 transient, anything else needs a human."""
    status = response.status_code
    if status in _RETRYABLE_4XX or status >= 500:
        return ArsTransientError(f"Keycloak token endpoint answered {status}", status_code=status)
    try:
        reply = msgspec.json.decode(response.content, type=TokenErrorReply)
        message = reply.error_description or reply.error
    except msgspec.DecodeError:
        message = response.text[:200]
    return ArsRejected(
        f"Keycloak refused the client credentials ({status}: {message}); check ars.client_id and the secret",
        status_code=status,
        error_message=message,
    )


def read_reply(content: bytes) -> Reply | None:
    """The answer as a :class:`Reply`, or ``None`` when it is no JSON object (empty, text, HTML, a list)."""
    try:
        return msgspec.json.decode(content, type=Reply)
    except msgspec.DecodeError:
        return None


def _message(reply: Reply | None, response: httpx.Response) -> str:
    if reply is not None:
        if reply.error_message:
            return reply.error_message
        if reply.http_info and reply.http_info.allocation_status_text:
            return reply.http_info.allocation_status_text
        if reply.allocation_status:
            return reply.allocation_status
    return response.text[:200] or response.reason_phrase
