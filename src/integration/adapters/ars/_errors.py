"""The one place where httpx exceptions and ARS answers become :mod:`integration.errors` classes.

What an answer *means* is decided by the table in :mod:`._classify`; this module reads the answer into an
:class:`~._classify.Answer` and builds the exception the verdict names, with a reason a human can act on
(it ends up in ``integration status``).
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import msgspec
import trio

from integration.adapters.ars._classify import NO_CODE, Answer, Outcome, Verdict, classify
from integration.adapters.ars._models import Reply, TokenErrorReply
from integration.config import ArsConfig
from integration.errors import (
    ArsConflict,
    ArsCrcMismatch,
    ArsCredentialsRefused,
    ArsDiskFull,
    ArsForbidden,
    ArsRejected,
    ArsRouteNotFound,
    ArsShareClosed,
    ArsTransientError,
    AssetWaits,
    ConflictKind,
    DataError,
    GroupHeld,
    IntegrationError,
    StorageUnavailable,
)

__all__ = [
    "_map_httpx_errors",
    "answer_of",
    "error_for_response",
    "read_reply",
    "secret_error",
    "token_error",
    "unsuccessful",
    "verdict_for",
]

#: ``HttpAllocationStatus`` -> the HTTP code ARS would answer for it (ars-api.md §5.6).
_ALLOCATION_HTTP = {
    "BAD_REQUEST": 400,
    "DISK_FULL": 403,
    "SHARE_NOT_FOUND": 404,
    "UNKNOWN_ERROR": 500,
    "INTERNAL_ERROR": 500,
    "UPSTREAM_ERROR": 503,
}
_TEXT_LIMIT = 300  # characters of a raw (non-JSON) body kept in a message
#: errnos that mean the local disk itself fails, not one file (the storage lane pauses).
_DISK_FAILING = frozenset({errno.EIO, errno.EROFS, errno.ENODEV, errno.ENXIO, errno.ESTALE})


@contextmanager
def _map_httpx_errors(*, operation: str, guid: str | None = None) -> Iterator[None]:
    """Re-raise httpx, timeout, decoding and local-file errors of one exchange as our own classes."""
    service = "Keycloak" if operation == "token" else "ARS"
    try:
        yield
    except trio.TooSlowError as exc:
        raise ArsTransientError(f"{service} {operation}: no answer in time", guid=guid) from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:  # every request would fail the same way
        raise ArsRouteNotFound(
            f"{service} {operation}: {exc}: check ars.base_url and ars.token_url", url="", guid=guid
        ) from exc
    except httpx.HTTPError as exc:  # connection refused/reset, protocol errors, httpx's own timeouts
        raise ArsTransientError(f"{service} {operation}: {type(exc).__name__}: {exc}", guid=guid) from exc
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:  # e.g. a proxy's HTML page with 200
        raise ArsTransientError(f"{service} {operation}: unreadable answer: {exc}", guid=guid) from exc
    except OSError as exc:  # only the local copy being uploaded is read inside an exchange
        if exc.errno in _DISK_FAILING:  # the local disk fails: every upload would (storage lane)
            raise StorageUnavailable(
                f"the local storage cannot be read ({exc.strerror or exc}) while uploading: check the disk",
                path=str(exc.filename or ""),
                confirm=True,
            ) from exc
        raise DataError(f"ARS {operation}: cannot read the local copy: {exc}", guid=guid) from exc


def unsuccessful(response: httpx.Response) -> bool:
    """True unless the answer is 2xx *and* carries no failed share allocation."""
    if not response.is_success:
        return True
    reply = read_reply(response.content)
    return reply is not None and reply.allocation_status not in (None, "SUCCESS")


def read_reply(content: bytes) -> Reply | None:
    """The answer as a :class:`Reply`, or ``None`` when it is no JSON object (empty, text, HTML, a list)."""
    try:
        return msgspec.json.decode(content, type=Reply)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


def answer_of(response: httpx.Response, *, operation: str, requested_mb: int | None = None) -> Answer:
    """What the classification table matches on, read from an unsuccessful answer."""
    if operation == "token":
        return _token_answer(response)
    reply = read_reply(response.content)
    share = reply.share if reply is not None else None
    allocation = share.http_allocation_status if share is not None else None
    status = response.status_code
    if response.is_success and allocation not in (None, "SUCCESS"):
        status = _ALLOCATION_HTTP.get(str(allocation), 500)
    code = (reply.error_code if reply is not None else None) or (allocation if allocation != "SUCCESS" else None)
    if reply is not None and (reply.error_code or reply.error_message is not None):  # an error envelope
        message = reply.error_message or ""
    elif share is not None:
        message = share.allocation_status_text or ""
    else:
        message = _raw_text(response)
    return Answer(
        operation=operation,
        status=status,
        code=code or NO_CODE,
        message=message,
        remaining_mb=share.remaining_mb if share is not None else None,
        requested_mb=requested_mb,
        total_mb=share.total_mb if share is not None else None,
    )


def verdict_for(
    response: httpx.Response, *, operation: str, config: ArsConfig, requested_mb: int | None = None
) -> Verdict:
    """The table's verdict on ``response``."""
    answer = answer_of(response, operation=operation, requested_mb=requested_mb)
    return classify(answer, room_mb=config.disk_full_room_mb)


def error_for_response(
    response: httpx.Response,
    *,
    operation: str,
    config: ArsConfig,
    guid: str | None = None,
    target: str | None = None,
    requested_mb: int | None = None,
) -> IntegrationError:
    """The error an unsuccessful ARS/file-proxy answer means for the caller (see :mod:`._classify`).

    ``target`` is the ``institution/collection`` the request reads or writes, named in a refusal of rights.
    """
    answer = answer_of(response, operation=operation, requested_mb=requested_mb)
    verdict = classify(answer, room_mb=config.disk_full_room_mb)
    return _build(_Facts(verdict=verdict, answer=answer, response=response, config=config, guid=guid, target=target))


def token_error(response: httpx.Response, *, config: ArsConfig, secret_rereadable: bool) -> IntegrationError:
    """The error a failed Keycloak token request means: bad credentials, a wrong token URL, or Keycloak down."""
    answer = _token_answer(response)
    verdict = classify(answer, room_mb=config.disk_full_room_mb)
    if verdict.outcome is Outcome.CREDENTIALS:
        refusal = f"{answer.status}: {answer.code or answer.message or 'no reason given'}"
        return _credentials(f"Keycloak refused the client credentials ({refusal})", config, secret_rereadable)
    return _build(_Facts(verdict=verdict, answer=answer, response=response, config=config, guid=None, target=None))


def secret_error(exc: Exception, *, config: ArsConfig, secret_rereadable: bool) -> ArsCredentialsRefused:
    """The client secret cannot be read (a missing file, an unset variable): every token request fails."""
    return _credentials(f"the ARS client secret cannot be read ({exc})", config, secret_rereadable)


def _credentials(what: str, config: ArsConfig, rereadable: bool) -> ArsCredentialsRefused:
    source = config.secret_source()
    if rereadable:
        fix = "it is re-read on every token request, so fixing the file is enough"
    else:
        fix = "fix it and restart the daemon (a running daemon cannot re-read its environment or configuration)"
    reason = f"{what}: check ars.client_id ({config.client_id!r}) and the secret in {source} — {fix}"
    return ArsCredentialsRefused(reason, restart_needed=not rereadable)


@dataclass(frozen=True, kw_only=True)
class _Facts:
    """Everything an error's message is made of."""

    verdict: Verdict
    answer: Answer
    response: httpx.Response
    config: ArsConfig
    guid: str | None
    target: str | None

    @property
    def refusal(self) -> str:
        said = self.answer.message or self.response.reason_phrase
        return f"ARS refused {self.answer.operation} ({self.answer.status}: {said})"


def _build(facts: _Facts) -> IntegrationError:
    kind = _CONFLICT_KINDS.get(facts.verdict.outcome)
    if kind is not None:
        answer = facts.answer
        return ArsConflict(
            facts.refusal, status_code=answer.status, error_message=answer.message, guid=facts.guid, kind=kind
        )
    return _BUILDERS[facts.verdict.outcome](facts)


def _token_refused(facts: _Facts) -> IntegrationError:
    return ArsCredentialsRefused(
        f"ARS refused a token Keycloak just issued (401 for {_request_line(facts.response)}): check that "
        f"ars.token_url ({facts.config.token_url}) is the Keycloak realm this ARS trusts"
    )


def _forbidden(facts: _Facts) -> IntegrationError:
    answer = facts.answer
    right = f"the right to write to {facts.target}" if facts.target else "a right on the institution/collection"
    return ArsForbidden(
        f"ARS refused {answer.operation} ({answer.status}): the client {facts.config.client_id} lacks the role "
        f"service-user or {right}",
        status_code=answer.status,
        guid=facts.guid,
    )


def _route_not_found(facts: _Facts) -> IntegrationError:
    answer, response, config = facts.answer, facts.response, facts.config
    moved = response.headers.get("Location")
    where = _request_line(response) + (f" (redirected to {moved})" if moved else "")
    if answer.operation == "token":
        reason = f"Keycloak answered {answer.status} for {where}: check ars.token_url (now {config.token_url})"
    else:
        reason = (
            f"ARS answered {answer.status} for {where}: check ars.base_url (the ARS host only, without /ars/api; "
            f"now {config.base_url})"
        )
    url = str(response.request.url) if _has_request(response) else ""
    return ArsRouteNotFound(reason, url=url, guid=facts.guid)


def _disk_full(facts: _Facts) -> IntegrationError:
    remaining = facts.answer.remaining_mb
    free = "remaining space not reported" if remaining is None else f"{remaining} MB remaining"
    return ArsDiskFull(
        f"ARS has no disk space for new shares (DISK_FULL, {free}): free space on the file proxy's share disk; "
        "waiting assets resume by themselves",
        guid=facts.guid,
        remaining_mb=remaining,
        requested_mb=facts.answer.requested_mb,
    )


def _too_big(facts: _Facts) -> IntegrationError:
    answer, wait_s = facts.answer, facts.verdict.wait_s
    return AssetWaits(
        f"ARS has {answer.remaining_mb} MB free, not enough for the {answer.requested_mb} MB this asset asks "
        f"(DISK_FULL): it waits {wait_s:g} s for space to be freed",
        guid=facts.guid,
        retry_after_s=wait_s,
    )


def _never_fits(facts: _Facts) -> IntegrationError:
    answer = facts.answer
    return ArsRejected(
        f"the asset needs a share of {answer.requested_mb} MB (its files plus ars.allocation_headroom_*), but "
        f"ARS's share disk holds {answer.total_mb} MB in all (DISK_FULL): it can never be stored this way; the "
        "data manager must raise the share disk (or lower the headroom if the files alone fit), then "
        "`integration retry` it",
        status_code=answer.status,
        error_message=answer.message,
        guid=facts.guid,
    )


def _group(facts: _Facts) -> IntegrationError:
    rule = facts.verdict.rule
    assert rule.group_kind is not None, "every GROUP row names its group kind"
    return GroupHeld(
        f"{facts.refusal}: {rule.why}; the {rule.group_kind}'s assets are held until then",
        group_kind=rule.group_kind,
        group_value=facts.verdict.group_value,
        status_code=facts.answer.status,
        error_message=facts.answer.message,
        guid=facts.guid,
    )


def _waits(facts: _Facts) -> IntegrationError:
    wait_s = facts.verdict.wait_s
    return AssetWaits(
        f"{facts.refusal}: {facts.verdict.rule.why}; the asset waits {wait_s:g} s",
        guid=facts.guid,
        retry_after_s=wait_s,
    )


def _crc_mismatch(facts: _Facts) -> IntegrationError:
    reply = read_reply(facts.response.content)
    crcs = f"expected {reply.expected_crc}, ARS computed {reply.actual_crc}" if reply else facts.answer.message
    return ArsCrcMismatch(
        f"ARS {facts.answer.operation}: CRC-32 mismatch ({crcs})", status_code=facts.answer.status, guid=facts.guid
    )


def _transient(facts: _Facts) -> IntegrationError:
    answer = facts.answer
    who = "Keycloak token endpoint" if answer.operation == "token" else f"ARS {answer.operation}"
    said = answer.message or facts.response.reason_phrase
    return ArsTransientError(f"{who} answered {answer.status}: {said}", status_code=answer.status, guid=facts.guid)


def _share_closed(facts: _Facts) -> IntegrationError:
    return ArsShareClosed(
        f"{facts.refusal}: {facts.verdict.rule.why}",
        status_code=facts.answer.status,
        error_message=facts.answer.message,
        guid=facts.guid,
    )


def _rejected(facts: _Facts) -> IntegrationError:
    """REJECTED, and ABSENT asked of an operation that does not expect it (the table never does that)."""
    rule = facts.verdict.rule
    specific = rule.message is not None or rule.operations is not None or rule.code is not None
    text = f"{facts.refusal}: {rule.why}" if specific and rule.why else facts.refusal
    return ArsRejected(text, status_code=facts.answer.status, error_message=facts.answer.message, guid=facts.guid)


_CONFLICT_KINDS: dict[Outcome, ConflictKind] = {
    Outcome.EXISTS: "exists",
    Outcome.BEING_PROCESSED: "being_processed",
    Outcome.CHECKED_OUT: "checked_out",
}
_BUILDERS: dict[Outcome, Callable[[_Facts], IntegrationError]] = {
    Outcome.CREDENTIALS: _token_refused,
    Outcome.FORBIDDEN: _forbidden,
    Outcome.ROUTE_NOT_FOUND: _route_not_found,
    Outcome.DISK_FULL: _disk_full,
    Outcome.TOO_BIG: _too_big,
    Outcome.NEVER_FITS: _never_fits,
    Outcome.GROUP: _group,
    Outcome.WAITS: _waits,
    Outcome.CRC_MISMATCH: _crc_mismatch,
    Outcome.TRANSIENT: _transient,
    Outcome.REJECTED: _rejected,
    Outcome.SHARE_CLOSED: _share_closed,
    Outcome.ABSENT: _rejected,
}


def _token_answer(response: httpx.Response) -> Answer:
    try:
        reply = msgspec.json.decode(response.content, type=TokenErrorReply)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        reply = TokenErrorReply()
    return Answer(
        operation="token",
        status=response.status_code,
        code=reply.error,
        message=reply.error_description or reply.error or _raw_text(response),
    )


def _raw_text(response: httpx.Response) -> str:
    try:
        text = response.content.decode("utf-8", errors="replace")
    except httpx.ResponseNotRead:  # pragma: no cover - every answer here has been read
        text = ""
    return " ".join(text.split())[:_TEXT_LIMIT]


def _has_request(response: httpx.Response) -> bool:
    try:
        response.request  # noqa: B018 - httpx raises when the answer was made without a request
    except RuntimeError:
        return False
    return True


def _request_line(response: httpx.Response) -> str:
    if not _has_request(response):
        return "the request"
    return f"{response.request.method} {response.request.url.path}"
