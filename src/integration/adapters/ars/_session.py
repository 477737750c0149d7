"""One authenticated exchange with ARS, and the retry loop around whole operations.

Layering (like httpx's client / transport split): :class:`Session` knows tokens, 401 handling, the capacity
limiter, named timeouts, back-off and counters; :class:`~integration.adapters.ars.ArsClient` knows the ARS
endpoints and what their answers mean.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import msgspec
import stamina
import structlog
import trio

from integration.adapters.ars._errors import _map_httpx_errors, error_for_response, unsuccessful
from integration.adapters.ars._token import TokenSource
from integration.config import ArsConfig, RetryConfig
from integration.errors import ArsTransientError, ArsUnavailable, IntegrationError

__all__ = ["ContentFactory", "Outgoing", "Session"]

log = structlog.get_logger()

T = TypeVar("T")
#: Makes a fresh request body for each send (a stream can be sent only once; a 401 resends it). It becomes
#: ``request.stream`` as it is, so httpx does not wrap it in an async generator that a timeout would abandon.
ContentFactory = Callable[[], httpx.AsyncByteStream]


@dataclass(frozen=True, kw_only=True)
class Outgoing:
    """A request to send: where, what, and the operation/guid that name it in errors and logs."""

    method: str
    url: str
    operation: str
    guid: str | None = None
    params: Mapping[str, str | int] | None = None
    json: Any = None
    content: ContentFactory | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float | None = None  # None: ars.request_timeout_s


class Session:
    """Sends requests with a bearer token under the limiter and the named timeout; retries operations."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        config: ArsConfig,
        secret: str,
        retry: RetryConfig,
        limiter: trio.CapacityLimiter | None,
    ) -> None:
        self._http = http
        self._config = config
        self._retry = retry
        self._limiter = limiter
        self.tokens = TokenSource(http, config=config, secret=secret)
        self.requests = 0
        self.retries = 0
        self.failures = 0

    async def call(self, operation: str, guid: str | None, attempt: Callable[[int], Awaitable[T]]) -> T:
        """Run ``attempt(number)`` until it succeeds, retrying ``ArsTransientError`` with back-off.

        Raises ``ArsUnavailable`` (chaining the last transient error) once ``retry.attempts`` are spent;
        any other error is raised at once.
        """
        try:
            return await self._retrying(operation, guid, attempt)
        except IntegrationError:
            self.failures += 1
            raise

    async def send(self, outgoing: Outgoing) -> httpx.Response:
        """One exchange; a 401 drops the token and resends once with a new one. The answer is not checked."""
        token = await self.tokens.get()
        response = await self._exchange(outgoing, token)
        if response.status_code == 401:
            self.tokens.invalidate(token)
            response = await self._exchange(outgoing, await self.tokens.get())
        return response

    def checked(self, response: httpx.Response, *, operation: str, guid: str | None = None) -> httpx.Response:
        """``response`` if it is a success, else raise the error it means."""
        if unsuccessful(response):
            raise error_for_response(response, operation=operation, guid=guid)
        return response

    def decode(self, response: httpx.Response, into: type[T], *, operation: str, guid: str | None = None) -> T:
        """The checked answer decoded into ``into``; unreadable JSON is transient."""
        self.checked(response, operation=operation, guid=guid)
        with _map_httpx_errors(operation=operation, guid=guid):
            return msgspec.json.decode(response.content, type=into)

    async def _exchange(self, outgoing: Outgoing, token: str) -> httpx.Response:
        timeout = outgoing.timeout_s or self._config.request_timeout_s
        with _map_httpx_errors(operation=outgoing.operation, guid=outgoing.guid):
            request = self._build(outgoing, token, timeout)
        limit = self._limiter if self._limiter is not None else contextlib.nullcontext()
        async with limit:
            self.requests += 1
            with _map_httpx_errors(operation=outgoing.operation, guid=outgoing.guid), trio.fail_after(timeout):
                return await self._http.send(request)

    def _build(self, outgoing: Outgoing, token: str, timeout: float) -> httpx.Request:
        request = self._http.build_request(
            outgoing.method,
            outgoing.url,
            params=outgoing.params,
            json=outgoing.json,
            headers={**outgoing.headers, "Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        if outgoing.content is None:
            return request
        # A streamed body, used as it is; the caller put Content-Length in outgoing.headers.
        return httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            stream=outgoing.content(),
            extensions=request.extensions,
        )

    async def _retrying(self, operation: str, guid: str | None, attempt: Callable[[int], Awaitable[T]]) -> T:
        policy = self._retry
        try:
            async for trial in stamina.retry_context(
                on=ArsTransientError,
                attempts=policy.attempts,
                timeout=None,  # the budget is attempts x back-off; stamina's timeout uses the wall clock
                wait_initial=policy.initial_s,
                wait_max=policy.max_s,
                wait_jitter=policy.jitter_s,
            ):
                with trial:
                    try:
                        return await attempt(trial.num)
                    except ArsTransientError as exc:
                        if trial.num < policy.attempts:
                            self.retries += 1
                            log.warning(
                                "ars_request_retry", operation=operation, guid=guid, attempt=trial.num, error=str(exc)
                            )
                        raise
        except ArsTransientError as exc:
            log.warning("ars_unavailable", operation=operation, guid=guid, attempts=policy.attempts, error=str(exc))
            raise ArsUnavailable(f"ARS {operation} failed {policy.attempts} times: {exc}", guid=guid) from exc
        raise AssertionError("stamina ended without a result or an error")  # pragma: no cover
