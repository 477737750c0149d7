"""ArsClient against a small fake ARS behind httpx.MockTransport: no sockets, no mocks, autojump clock for waits."""

from __future__ import annotations

import itertools
import json
import re
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from integration.adapters.ars import ArsClient, ArsFile, AssetStatus, CreatedAsset, open_ars_client
from integration.config import ArsConfig, RetryConfig
from integration.errors import (
    ArsConflict,
    ArsCrcMismatch,
    ArsDiskFull,
    ArsRejected,
    ArsTransientError,
    ArsUnavailable,
    DataError,
)

BASE = "http://ars.test"
TOKEN_URL = f"{BASE}/keycloak/realms/dassco/protocol/openid-connect/token"
SECRET = "s3cret-value"
GUID = "7e8-8-08-0c-1b-15-2-003-04-000-01e240"
CONFIG = ArsConfig(base_url=BASE, token_url=TOKEN_URL, client_id="integration", request_timeout_s=10.0)
RETRY = RetryConfig(attempts=3, initial_s=0.5, max_s=2.0, jitter_s=0.1)

Handler = Callable[[httpx.Request], httpx.Response] | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]

_ROUTES = (
    ("POST", re.compile(r"/keycloak/.*/token"), "token"),
    ("GET", re.compile(r"/ars/actuator/health"), "health"),
    ("POST", re.compile(r"/ars/api/v1/assetmetadata"), "create"),
    ("GET", re.compile(r"/ars/api/v1/assetmetadata/(?P<guid>[^/]+)"), "asset"),
    ("GET", re.compile(r"/ars/api/v1/assets/status/(?P<guid>[^/]+)"), "status"),
    ("GET", re.compile(r"/ars/api/v1/assets/inprogress"), "inprogress"),
    ("PUT", re.compile(r"/file_proxy/api/assetfiles/(?P<i>[^/]+)/(?P<c>[^/]+)/(?P<guid>[^/]+)/(?P<name>.+)"), "upload"),
    ("POST", re.compile(r"/file_proxy/api/shares/assets/(?P<guid>[^/]+)/synchronize"), "sync"),
    ("GET", re.compile(r"/file_proxy/api/assets/(?P<guid>[^/]+)/files"), "files"),
)


def _error(status: int, message: str) -> httpx.Response:
    envelope = {"type": "Error", "protocolVersion": "1.0", "errorCode": "BAD_REQUEST", "errorMessage": message}
    return httpx.Response(status, json=envelope)


@dataclass
class FakeArs:
    """Just enough ARS: tokens that expire, assets with a share, uploads with a CRC check, scripted failures."""

    token_lifetime: float = 300.0
    remaining_mb: int = 10_000
    healthy: bool = True
    commit_then_fail: bool = False  # scripted create failures happen after the asset was stored (lost answer)
    script: dict[str, list[int]] = field(default_factory=dict)  # route -> statuses answered before real work
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry on the trio clock
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    uploads: list[httpx.Request] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        route, args = self._route(request)
        self.hits[route] += 1
        if route == "token":
            return self._token(request)
        if route != "health" and not self._authorised(request):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if self.script.get(route):
            status = self.script[route].pop(0)
            if route == "create" and self.commit_then_fail:
                self._create(request)
            return httpx.Response(status, text="<html>gateway trouble</html>")
        handler: Callable[..., httpx.Response] = getattr(self, f"_{route}")
        return handler(request, **args)

    def add_asset(self, guid: str = GUID, *, status: str = "METADATA_RECEIVED", share_mb: int | None = 5) -> None:
        self.assets[guid] = {"status": status, "share_allocation_mb": share_mb, "body": {"asset_guid": guid}}
        self.files.setdefault(guid, {})

    def _route(self, request: httpx.Request) -> tuple[str, dict[str, str]]:
        for method, pattern, name in _ROUTES:
            match = pattern.fullmatch(request.url.path)
            if request.method == method and match:
                return name, match.groupdict()
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    def _authorised(self, request: httpx.Request) -> bool:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return self.tokens.get(token, -1.0) > trio.current_time()

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        if self.script.get("token"):
            return httpx.Response(self.script["token"].pop(0))
        if form != {
            "grant_type": "client_credentials",
            "client_id": "integration",
            "client_secret": SECRET,
            "scope": "openid",
        }:
            return httpx.Response(401, json={"error": "unauthorized_client", "error_description": "Invalid client"})
        token = f"token-{self.hits['token']}"
        self.tokens[token] = trio.current_time() + self.token_lifetime
        return httpx.Response(200, json={"access_token": token, "expires_in": self.token_lifetime})

    def _health(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if self.healthy else 503, json={"status": "UP" if self.healthy else "DOWN"})

    def _create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        guid, allocation = body["asset_guid"], int(request.url.params["allocation_mb"])
        if guid in self.assets:
            return _error(400, f"Asset {guid} already exists")
        if allocation > self.remaining_mb:
            info = {"path": None, "allocated_storage_mb": 0, "http_allocation_status": "DISK_FULL"}
            return httpx.Response(403, json={**body, "httpInfo": info})
        self.add_asset(guid, share_mb=allocation)
        self.assets[guid]["body"] = body
        path = f"/assetfiles/{body['institution']}/{body['collection']}/{guid}/"
        info = {
            "path": path,
            "hostname": "internal",
            "allocated_storage_mb": allocation,
            "http_allocation_status": "SUCCESS",
        }
        return httpx.Response(200, json={**body, "httpInfo": info, "internal_status": "METADATA_RECEIVED"})

    def _status_info(self, guid: str) -> dict[str, Any]:
        asset = self.assets[guid]
        return {"asset_guid": guid, "parent_guid": [], "error_timestamp": None, "status": asset["status"],
                "error_message": None, "share_allocation_mb": asset["share_allocation_mb"]}  # fmt: skip

    def _status(self, request: httpx.Request, guid: str) -> httpx.Response:
        return httpx.Response(200, json=self._status_info(guid)) if guid in self.assets else httpx.Response(404)

    def _asset(self, request: httpx.Request, guid: str) -> httpx.Response:
        return httpx.Response(200, json=self.assets[guid]["body"]) if guid in self.assets else httpx.Response(204)

    def _inprogress(self, request: httpx.Request) -> httpx.Response:
        assert request.url.params["onlyFailed"] == "false"
        return httpx.Response(200, json=[self._status_info(guid) for guid in self.assets])

    def _upload(self, request: httpx.Request, i: str, c: str, guid: str, name: str) -> httpx.Response:
        self.uploads.append(request)
        if guid not in self.assets or self.assets[guid]["share_allocation_mb"] is None:
            return _error(400, "There is no writeable directory for this asset")
        expected, actual = int(request.url.params["crc"]), zlib.crc32(request.content)
        if expected != actual:
            return httpx.Response(507, json={"expected_crc": expected, "actual_crc": actual})
        self.files[guid][name] = request.content
        return httpx.Response(200, json={"expected_crc": expected, "actual_crc": actual})

    def _sync(self, request: httpx.Request, guid: str) -> httpx.Response:
        if guid not in self.assets or self.assets[guid]["share_allocation_mb"] is None:
            return _error(400, "No writeable share for asset found")
        self.assets[guid]["status"] = "ASSET_RECEIVED"
        self.assets[guid]["synced_by"] = dict(request.url.params)
        return httpx.Response(204)

    def _files(self, request: httpx.Request, guid: str) -> httpx.Response:
        rows = [
            {"fileId": n, "assetGuid": guid, "path": f"/i/c/{guid}/{name}", "sizeBytes": len(data),
             "crc": zlib.crc32(data), "deleteAfterSync": False, "syncStatus": "NEW_FILE", "mime_type": "image/tiff"}
            for n, (name, data) in enumerate(self.files.get(guid, {}).items())
        ]  # fmt: skip
        return httpx.Response(200, json=rows)


def create_body(guid: str = GUID) -> dict[str, Any]:
    """A minimal E3 create body."""
    return {"asset_guid": guid, "asset_pid": f"urn:dassco:{guid}", "status": "WORKING_COPY", "institution": "NHMD",
            "collection": "Vascular plants", "pipeline": "PIPEHERB0001", "workstation": "WORKHERB0001",
            "digitiser": "jdoe"}  # fmt: skip


def answering(response: httpx.Response) -> Handler:
    """A handler that grants tokens and answers every other request with ``response``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if "keycloak" in request.url.path:
            return httpx.Response(200, json={"access_token": "t", "expires_in": 300})
        return response

    return handler


@asynccontextmanager
async def client_for(
    handler: Handler,
    *,
    retry: RetryConfig = RETRY,
    transport: httpx.AsyncBaseTransport | None = None,
    limiter: trio.CapacityLimiter | None = None,
) -> AsyncIterator[ArsClient]:
    """An ArsClient whose requests go to ``handler`` (or ``transport``)."""
    chosen = transport or httpx.MockTransport(handler)
    async with open_ars_client(CONFIG, retry, secret=SECRET, transport=chosen, limiter=limiter) as client:
        yield client


@pytest.fixture
def thread_safe_clock() -> trio.testing.MockClock:
    """Like autojump_clock, but jumps only after 50 ms of real idleness, so worker-thread file reads finish first."""
    return trio.testing.MockClock(autojump_threshold=0.05)


@pytest.fixture
def fake() -> FakeArs:
    """A fresh fake ARS."""
    return FakeArs()


@pytest.fixture
async def ars(fake: FakeArs) -> AsyncIterator[ArsClient]:
    """An ArsClient talking to ``fake``."""
    async with client_for(fake) as client:
        yield client


# --- tokens -------------------------------------------------------------------------------------------------


async def test_token_is_cached_between_calls(fake: FakeArs, ars: ArsClient) -> None:
    """Several calls within the token's lifetime fetch one token."""
    fake.add_asset()
    for _ in range(3):
        await ars.get_status(GUID)
    assert ars.statistics().token_fetches == 1
    assert fake.hits["token"] == 1


async def test_token_is_refreshed_before_expiry(fake: FakeArs, ars: ArsClient, autojump_clock: trio.abc.Clock) -> None:
    """The token is renewed token_refresh_margin_s before it expires, not after ARS rejects it."""
    fake.add_asset()
    await ars.get_status(GUID)
    await trio.sleep(fake.token_lifetime - CONFIG.token_refresh_margin_s - 1)
    await ars.get_status(GUID)
    assert ars.statistics().token_fetches == 1
    await trio.sleep(2)
    await ars.get_status(GUID)
    assert ars.statistics().token_fetches == 2
    assert fake.hits["status"] == 3  # no request was refused on the way


async def test_token_refused_by_ars_is_replaced_and_request_resent_once(fake: FakeArs, ars: ArsClient) -> None:
    """A 401 from ARS drops the cached token, fetches a new one and resends the request once."""
    fake.add_asset()
    await ars.get_status(GUID)
    fake.tokens.clear()  # e.g. Keycloak restarted: every issued token is now invalid
    status = await ars.get_status(GUID)
    assert status is not None
    stats = ars.statistics()
    assert (stats.token_fetches, stats.requests, stats.retries) == (2, 3, 0)


async def test_concurrent_callers_share_one_token_fetch(fake: FakeArs) -> None:
    """Tasks that need a token at the same time wait for a single Keycloak request."""
    fake.add_asset()

    async def slow_keycloak(request: httpx.Request) -> httpx.Response:
        if "keycloak" in request.url.path:
            await trio.sleep(0.01)
        return fake(request)

    async with client_for(slow_keycloak) as client, trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(client.get_status, GUID)
    assert fake.hits["token"] == 1


async def test_bad_credentials_are_rejected_without_retrying(fake: FakeArs) -> None:
    """Keycloak refusing the client secret raises ArsRejected at once: a human must fix the credentials."""
    async with open_ars_client(CONFIG, RETRY, secret="wrong", transport=httpx.MockTransport(fake)) as client:
        with pytest.raises(ArsRejected) as caught:
            await client.get_status(GUID)
    assert caught.value.status_code == 401
    assert caught.value.error_message == "Invalid client"
    assert fake.hits["token"] == 1


async def test_keycloak_down_is_transient_then_unavailable(fake: FakeArs, autojump_clock: trio.abc.Clock) -> None:
    """A token endpoint answering 503 is retried with back-off, then ArsUnavailable pauses the lane."""
    fake.script["token"] = [503] * RETRY.attempts
    async with client_for(fake) as client:
        with pytest.raises(ArsUnavailable) as caught:
            await client.get_status(GUID)
    assert isinstance(caught.value.__cause__, ArsTransientError)
    assert caught.value.lane == "ars"
    assert fake.hits["token"] == RETRY.attempts


# --- create ---------------------------------------------------------------------------------------------------


async def test_create_asset_opens_a_share(fake: FakeArs, ars: ArsClient) -> None:
    """A successful create returns the share path and allocation ARS reported."""
    created = await ars.create_asset(create_body(), allocation_mb=12)
    assert created == CreatedAsset(guid=GUID, share_path=f"/assetfiles/NHMD/Vascular plants/{GUID}/", allocated_mb=12)
    assert fake.assets[GUID]["body"]["digitiser"] == "jdoe"
    assert fake.hits["create"] == 1


async def test_create_after_lost_answer_reconciles_via_status(
    fake: FakeArs, ars: ArsClient, autojump_clock: trio.abc.Clock
) -> None:
    """A 504 whose asset was stored anyway is settled by asking the status: one POST, one asset, no duplicate."""
    fake.commit_then_fail = True
    fake.script["create"] = [504]
    created = await ars.create_asset(create_body(), allocation_mb=12)
    assert created == CreatedAsset(guid=GUID, share_path=None, allocated_mb=12)
    assert fake.hits["create"] == 1
    assert fake.hits["status"] == 1
    assert list(fake.assets) == [GUID]
    assert ars.statistics().retries == 1


async def test_create_after_failed_attempt_posts_again(
    fake: FakeArs, ars: ArsClient, autojump_clock: trio.abc.Clock
) -> None:
    """A 502 that stored nothing is followed by a status check (404) and a second POST that commits."""
    fake.script["create"] = [502]
    created = await ars.create_asset(create_body(), allocation_mb=12)
    assert created.share_path is not None
    assert (fake.hits["create"], fake.hits["status"]) == (2, 1)


async def test_create_finding_an_older_asset_is_a_conflict(
    fake: FakeArs, ars: ArsClient, autojump_clock: trio.abc.Clock
) -> None:
    """If the status after a lost answer shows an asset already further along, the caller must reconcile."""
    fake.script["create"] = [504]
    fake.add_asset(status="ERDA_SYNCHRONISED", share_mb=None)
    with pytest.raises(ArsConflict):
        await ars.create_asset(create_body(), allocation_mb=12)
    assert fake.hits["create"] == 1


async def test_create_duplicate_is_a_conflict(fake: FakeArs, ars: ArsClient) -> None:
    """ARS's 400 "Asset X already exists" raises ArsConflict, never a second create."""
    fake.add_asset()
    with pytest.raises(ArsConflict) as caught:
        await ars.create_asset(create_body(), allocation_mb=12)
    assert caught.value.status_code == 400
    assert caught.value.error_message == f"Asset {GUID} already exists"
    assert caught.value.guid == GUID
    assert fake.hits["create"] == 1


async def test_create_already_being_processed_is_a_conflict() -> None:
    """ARS's 403 "already being processed" (300 s de-dup window) raises ArsConflict."""
    async with client_for(answering(_error(403, f"Asset {GUID} is already being processed"))) as client:
        with pytest.raises(ArsConflict) as caught:
            await client.create_asset(create_body(), allocation_mb=12)
    assert caught.value.status_code == 403


async def test_create_disk_full_pauses_the_lane(fake: FakeArs, ars: ArsClient) -> None:
    """A 403 whose httpInfo says DISK_FULL raises ArsDiskFull (infrastructure), not a rejection."""
    fake.remaining_mb = 5
    with pytest.raises(ArsDiskFull) as caught:
        await ars.create_asset(create_body(), allocation_mb=12)
    assert caught.value.lane == "ars"
    assert GUID not in fake.assets


async def test_create_with_failed_allocation_under_200_is_a_failure() -> None:
    """Any http_allocation_status other than SUCCESS is a failure even when the HTTP status is 200."""
    info = {"allocated_storage_mb": 0, "http_allocation_status": "BAD_REQUEST", "allocation_status_text": "too small"}
    async with client_for(answering(httpx.Response(200, json={"asset_guid": GUID, "httpInfo": info}))) as client:
        with pytest.raises(ArsRejected) as caught:
            await client.create_asset(create_body(), allocation_mb=12)
    assert (caught.value.status_code, caught.value.error_message) == (400, "too small")
    assert not isinstance(caught.value, ArsConflict)


async def test_create_other_refusal_is_rejected() -> None:
    """A 4xx that is neither a conflict nor disk full raises ArsRejected carrying ARS's message."""
    async with client_for(answering(_error(400, "Pipeline doesnt exist in this institution"))) as client:
        with pytest.raises(ArsRejected) as caught:
            await client.create_asset(create_body(), allocation_mb=12)
    assert caught.value.error_message == "Pipeline doesnt exist in this institution"
    assert type(caught.value) is ArsRejected


async def test_create_refuses_a_zero_allocation_locally(ars: ArsClient, fake: FakeArs) -> None:
    """A non-positive allocation is a programming error caught before anything is sent."""
    with pytest.raises(ValueError, match="allocation_mb"):
        await ars.create_asset(create_body(), allocation_mb=0)
    assert not fake.hits


# --- retries --------------------------------------------------------------------------------------------------


async def test_5xx_burst_is_retried_until_success(
    fake: FakeArs, ars: ArsClient, autojump_clock: trio.abc.Clock
) -> None:
    """503 then 429 then 200: the caller sees only the answer; two retries are counted."""
    fake.add_asset()
    fake.script["status"] = [503, 429]
    start = trio.current_time()
    status = await ars.get_status(GUID)
    assert status is not None
    assert trio.current_time() - start >= RETRY.initial_s  # it did back off
    stats = ars.statistics()
    assert (stats.retries, stats.failures, fake.hits["status"]) == (2, 0, 3)


async def test_5xx_forever_raises_unavailable_after_attempts(
    fake: FakeArs, ars: ArsClient, autojump_clock: trio.abc.Clock
) -> None:
    """A server that keeps failing is tried exactly retry.attempts times, then ArsUnavailable chains the cause."""
    fake.add_asset()
    fake.script["status"] = [500] * 10
    with pytest.raises(ArsUnavailable) as caught:
        await ars.get_status(GUID)
    cause = caught.value.__cause__
    assert isinstance(cause, ArsTransientError)
    assert cause.status_code == 500
    assert caught.value.guid == GUID
    assert fake.hits["status"] == RETRY.attempts
    assert ars.statistics().failures == 1


async def test_back_off_grows_and_is_capped(fake: FakeArs, autojump_clock: trio.abc.Clock) -> None:
    """Waits between attempts follow initial_s * 2^n plus jitter, never above max_s."""
    retry = RetryConfig(attempts=5, initial_s=1.0, max_s=3.0, jitter_s=0.0)
    fake.add_asset()
    fake.script["status"] = [503] * 4
    times: list[float] = []

    def timed(request: httpx.Request) -> httpx.Response:
        if "status" in request.url.path:
            times.append(trio.current_time())
        return fake(request)

    async with client_for(timed, retry=retry) as client:
        await client.get_status(GUID)
    waits = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert waits == [1.0, 2.0, 3.0, 3.0]


async def test_connection_errors_are_transient(fake: FakeArs, autojump_clock: trio.abc.Clock) -> None:
    """A refused connection is retried like a 5xx; httpx's exception never reaches the caller."""
    fake.add_asset()
    failures = [httpx.ConnectError("connection refused")]

    def flaky(request: httpx.Request) -> httpx.Response:
        if "status" in request.url.path and failures:
            raise failures.pop()
        return fake(request)

    async with client_for(flaky) as client:
        assert await client.get_status(GUID) is not None
        assert client.statistics().retries == 1


async def test_hanging_ars_hits_the_named_timeout(fake: FakeArs, autojump_clock: trio.abc.Clock) -> None:
    """A request that never answers is cut by ars.request_timeout_s and counted as transient."""

    async def hanging(request: httpx.Request) -> httpx.Response:
        if "keycloak" not in request.url.path:
            await trio.sleep_forever()
        return fake(request)

    start = trio.current_time()
    async with client_for(hanging) as client:
        with pytest.raises(ArsUnavailable) as caught:
            await client.get_status(GUID)
    assert "no answer in time" in str(caught.value.__cause__)
    assert trio.current_time() - start >= RETRY.attempts * CONFIG.request_timeout_s


async def test_unreadable_answer_is_transient(fake: FakeArs, autojump_clock: trio.abc.Clock) -> None:
    """A 200 that is not the expected JSON (a proxy's HTML page) is retried, not crashed on."""
    fake.add_asset()
    pages = [httpx.Response(200, text="<html>maintenance</html>")]

    def proxy(request: httpx.Request) -> httpx.Response:
        if "status" in request.url.path and pages:
            return pages.pop()
        return fake(request)

    async with client_for(proxy) as client:
        assert await client.get_status(GUID) is not None


async def test_retries_are_logged_with_guid_and_never_the_secret(
    fake: FakeArs, ars: ArsClient, autojump_clock: trio.abc.Clock
) -> None:
    """Each scheduled retry logs ars_request_retry with the GUID; no event carries the secret or a token."""
    fake.add_asset()
    fake.script["status"] = [502]
    with capture_logs() as logs:
        await ars.get_status(GUID)
    retries = [entry for entry in logs if entry["event"] == "ars_request_retry"]
    assert len(retries) == 1
    assert retries[0]["guid"] == GUID
    assert SECRET not in repr(logs)
    assert "token-" not in repr(logs)


async def test_limiter_bounds_concurrent_requests(fake: FakeArs, autojump_clock: trio.abc.Clock) -> None:
    """With a CapacityLimiter of 1, requests to ARS never overlap."""
    fake.add_asset()
    in_flight, peak = 0, 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await trio.sleep(1)
        in_flight -= 1
        return fake(request)

    async with client_for(slow, limiter=trio.CapacityLimiter(1)) as client, trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(client.get_status, GUID)
    assert peak == 1


# --- reads ----------------------------------------------------------------------------------------------------


async def test_get_status_unknown_is_none(ars: ArsClient) -> None:
    """ARS's 404 for an unknown GUID is None, not an error."""
    assert await ars.get_status(GUID) is None


async def test_get_status_decodes_the_record(fake: FakeArs, ars: ArsClient) -> None:
    """The status record is decoded and its sync predicates read it."""
    fake.add_asset(status="ERDA_SYNCHRONISED", share_mb=None)
    status = await ars.get_status(GUID)
    assert status == AssetStatus(asset_guid=GUID, status="ERDA_SYNCHRONISED", parent_guid=[])
    assert status.is_synced
    assert not status.is_sync_failed


def test_status_predicates() -> None:
    """Synced needs a success status and a closed share; both old and new failure names count as failed."""
    assert not AssetStatus(asset_guid=GUID, status="ERDA_SYNCHRONISED", share_allocation_mb=5).is_synced
    assert AssetStatus(asset_guid=GUID, status="COMPLETED").is_synced
    assert AssetStatus(asset_guid=GUID, status="ERDA_ERROR").is_sync_failed
    assert AssetStatus(asset_guid=GUID, status="ERDA_FAILED").is_sync_failed
    assert not AssetStatus(asset_guid=GUID, status="ASSET_RECEIVED").is_sync_failed


async def test_get_asset_unknown_is_none_and_known_is_the_record(fake: FakeArs, ars: ArsClient) -> None:
    """GET asset answers 204 for an unknown GUID (None) and the JSON record otherwise."""
    assert await ars.get_asset(GUID) is None
    fake.add_asset()
    assert await ars.get_asset(GUID) == {"asset_guid": GUID}


async def test_list_in_progress(fake: FakeArs, ars: ArsClient) -> None:
    """In-progress assets come back as AssetStatus records."""
    fake.add_asset()
    fake.add_asset("other", status="ERDA_FAILED")
    listed = await ars.list_in_progress()
    assert [(s.asset_guid, s.status) for s in listed] == [(GUID, "METADATA_RECEIVED"), ("other", "ERDA_FAILED")]


async def test_list_files_decodes_camel_case(fake: FakeArs, ars: ArsClient) -> None:
    """The file proxy's camelCase rows (sizeBytes, syncStatus) decode into ArsFile."""
    fake.add_asset()
    fake.files[GUID]["a.tif"] = b"tiff bytes"
    files = await ars.list_files(GUID)
    assert files == [ArsFile(f"/i/c/{GUID}/a.tif", 10, zlib.crc32(b"tiff bytes"), "NEW_FILE")]


async def test_probe_true_when_token_and_health_ok(ars: ArsClient) -> None:
    """probe is True when a token can be had and the health endpoint answers 2xx."""
    assert await ars.probe() is True


async def test_probe_false_when_unhealthy(fake: FakeArs, ars: ArsClient) -> None:
    """probe is False when ARS's health endpoint says it is down."""
    fake.healthy = False
    assert await ars.probe() is False


async def test_probe_false_when_keycloak_refuses(fake: FakeArs) -> None:
    """probe is False (not an exception) when no token can be had."""
    async with open_ars_client(CONFIG, RETRY, secret="wrong", transport=httpx.MockTransport(fake)) as client:
        assert await client.probe() is False


async def test_probe_false_when_unreachable() -> None:
    """probe is False when nothing answers at all."""

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    async with client_for(refused) as client:
        assert await client.probe() is False


# --- upload and synchronize -----------------------------------------------------------------------------------


class StreamRecorder(httpx.AsyncBaseTransport):
    """Records how the request body arrives (type, chunk sizes) before handing the bytes to the fake."""

    def __init__(self, fake: FakeArs) -> None:
        self.fake = fake
        self.streams: list[object] = []
        self.chunk_sizes: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Consume the body chunk by chunk, then replay it to the fake as plain bytes."""
        self.streams.append(request.stream)
        chunks = [chunk async for chunk in request.stream]  # type: ignore[union-attr]
        self.chunk_sizes.extend(len(chunk) for chunk in chunks)
        replay = httpx.Request(request.method, request.url, headers=request.headers, content=b"".join(chunks))
        return self.fake(replay)


def write_file(tmp_path: Path, size: int) -> tuple[Path, int]:
    """A file of ``size`` pseudo-random bytes and its CRC-32."""
    data = bytes((i * 7919) % 251 for i in range(size))
    path = tmp_path / "image.tif"
    path.write_bytes(data)
    return path, zlib.crc32(data)


async def upload(client: ArsClient, path: Path, crc: int, size: int) -> None:
    """Upload ``path`` as ``<GUID>.tif``."""
    await client.upload_file(
        institution="NHMD", collection="Vascular plants", guid=GUID, name=f"{GUID}.tif", path=path, crc32=crc, size=size
    )


async def test_upload_streams_the_file_in_chunks(fake: FakeArs, tmp_path: Path) -> None:
    """The body is a stream of ≤1 MiB chunks with Content-Length, and ARS gets the bytes, crc and size in MB."""
    fake.add_asset()
    size = 2_500_000
    path, crc = write_file(tmp_path, size)
    recorder = StreamRecorder(fake)
    async with client_for(fake, transport=recorder) as client:
        await upload(client, path, crc, size)
    upload_stream = recorder.streams[-1]
    assert isinstance(upload_stream, httpx.AsyncByteStream)
    assert not isinstance(upload_stream, httpx.ByteStream)  # not bytes held in memory
    assert len(recorder.chunk_sizes) >= 3
    assert max(recorder.chunk_sizes) <= 1024 * 1024
    assert fake.files[GUID][f"{GUID}.tif"] == path.read_bytes()
    sent = fake.uploads[-1]
    assert sent.url.path == f"/file_proxy/api/assetfiles/NHMD/Vascular plants/{GUID}/{GUID}.tif"
    assert dict(sent.url.params) == {"crc": str(crc), "file_size_mb": "3"}
    assert sent.headers["Content-Length"] == str(size)
    assert "Transfer-Encoding" not in sent.headers


async def test_upload_retried_after_5xx_and_resent_after_401(
    fake: FakeArs, ars: ArsClient, tmp_path: Path, thread_safe_clock: trio.testing.MockClock
) -> None:
    """Uploads are idempotent: a 503 and an expired token both lead to the whole file being sent again."""
    fake.add_asset()
    path, crc = write_file(tmp_path, 1500)
    await ars.get_status(GUID)
    fake.tokens.clear()
    fake.script["upload"] = [503]
    await upload(ars, path, crc, 1500)
    assert fake.files[GUID][f"{GUID}.tif"] == path.read_bytes()
    assert [len(request.content) for request in fake.uploads] == [1500]  # the 503 was scripted before handling
    assert fake.hits["upload"] == 3  # 401, 503, 200


async def test_upload_crc_mismatch(fake: FakeArs, ars: ArsClient, tmp_path: Path) -> None:
    """ARS answering 507 (it computed another CRC-32) raises ArsCrcMismatch, not retried."""
    fake.add_asset()
    path, crc = write_file(tmp_path, 100)
    with pytest.raises(ArsCrcMismatch) as caught:
        await upload(ars, path, crc ^ 1, 100)
    assert caught.value.status_code == 507
    assert fake.hits["upload"] == 1


async def test_upload_answer_with_another_crc_is_a_mismatch(tmp_path: Path) -> None:
    """A 200 whose actual_crc differs from ours is still treated as a CRC mismatch."""
    path, crc = write_file(tmp_path, 100)
    answer = httpx.Response(200, json={"expected_crc": crc, "actual_crc": crc ^ 1})
    async with client_for(answering(answer)) as client:
        with pytest.raises(ArsCrcMismatch):
            await upload(client, path, crc, 100)


async def test_upload_without_open_share_is_rejected(fake: FakeArs, ars: ArsClient, tmp_path: Path) -> None:
    """ "There is no writeable directory" is ArsRejected: the caller reconciles with the status."""
    fake.add_asset(share_mb=None)
    path, crc = write_file(tmp_path, 100)
    with pytest.raises(ArsRejected) as caught:
        await upload(ars, path, crc, 100)
    assert caught.value.error_message == "There is no writeable directory for this asset"


async def test_upload_of_a_changed_or_missing_local_copy_is_a_data_error(
    fake: FakeArs, ars: ArsClient, tmp_path: Path
) -> None:
    """A local copy whose size differs from the record, or that is gone, raises DataError and sends nothing."""
    fake.add_asset()
    path, crc = write_file(tmp_path, 100)
    with pytest.raises(DataError, match="has 100 bytes"):
        await upload(ars, path, crc, 99)
    with pytest.raises(DataError, match="cannot read the local copy"):
        await upload(ars, tmp_path / "gone.tif", crc, 100)
    assert fake.hits["upload"] == 0


async def test_synchronize_queues_the_erda_sync(fake: FakeArs, ars: ArsClient) -> None:
    """synchronize sends workstation and pipeline and ARS moves the asset to ASSET_RECEIVED."""
    fake.add_asset()
    await ars.synchronize(GUID, workstation="WORKHERB0001", pipeline="PIPEHERB0001")
    assert fake.assets[GUID]["status"] == "ASSET_RECEIVED"
    assert fake.assets[GUID]["synced_by"] == {"workstation": "WORKHERB0001", "pipeline": "PIPEHERB0001"}


async def test_synchronize_without_share_is_rejected(fake: FakeArs, ars: ArsClient) -> None:
    """The file proxy's 400 "No writeable share" raises ArsRejected."""
    fake.add_asset(share_mb=None)
    with pytest.raises(ArsRejected) as caught:
        await ars.synchronize(GUID, workstation="W", pipeline="P")
    assert caught.value.status_code == 400


async def test_client_built_on_an_injected_http_client(fake: FakeArs) -> None:
    """ArsClient works on any httpx.AsyncClient the caller owns, and statistics count its requests."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        client = ArsClient(http, config=CONFIG, secret=SECRET, retry=RETRY)
        assert await client.get_status(GUID) is None
        assert client.statistics().requests == 1


class StallingUpload(StreamRecorder):
    """Reads the first chunk of every upload, then never answers."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer tokens; stall uploads after one chunk."""
        if request.method != "PUT":
            await request.aread()
            return self.fake(request)
        async for chunk in request.stream:  # type: ignore[union-attr]
            self.chunk_sizes.append(len(chunk))
            break
        await trio.sleep_forever()
        raise AssertionError("unreachable")


async def test_stalled_upload_hits_the_upload_timeout(
    fake: FakeArs, tmp_path: Path, thread_safe_clock: trio.testing.MockClock
) -> None:
    """An upload that stops moving is cut by ars.upload_timeout_s (not the shorter request timeout), then retried."""
    fake.add_asset()
    path, crc = write_file(tmp_path, 2_500_000)
    start = trio.current_time()
    async with client_for(fake, transport=StallingUpload(fake)) as client:
        with pytest.raises(ArsUnavailable):
            await upload(client, path, crc, 2_500_000)
    assert trio.current_time() - start >= RETRY.attempts * CONFIG.upload_timeout_s
