"""ArsClient against a small fake ARS behind httpx.MockTransport: no sockets, no mocks, autojump clock for waits."""

from __future__ import annotations

import errno
import itertools
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from adapters.test_ars_fake import (
    CONFIG,
    GUID,
    RETRY,
    SECRET,
    FakeArs,
    answering,
    client_for,
    create_body,
    error,
)
from integration.adapters.ars import ArsAsset, ArsClient, ArsFile, AssetStatus, CreatedAsset, _upload, open_ars_client
from integration.config import RetryConfig
from integration.errors import (
    ArsConflict,
    ArsCrcMismatch,
    ArsCredentialsRefused,
    ArsDiskFull,
    ArsForbidden,
    ArsRejected,
    ArsRouteNotFound,
    ArsTransientError,
    ArsUnavailable,
    AssetWaits,
    DataError,
    GroupHeld,
    Scope,
    StorageUnavailable,
)


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


async def test_bad_credentials_pause_the_lane_without_retrying(fake: FakeArs) -> None:
    """Keycloak refusing the secret raises the site error ArsCredentialsRefused at once, never an asset rejection."""
    async with open_ars_client(CONFIG, RETRY, secret="wrong", transport=httpx.MockTransport(fake)) as client:
        with pytest.raises(ArsCredentialsRefused) as caught:
            await client.get_status(GUID)
    assert caught.value.scope is Scope.SITE
    assert not isinstance(caught.value, ArsRejected)
    assert "(401: invalid_client)" in caught.value.reason
    assert "ars.client_id ('integration')" in caught.value.reason
    assert caught.value.restart_needed  # a plain str secret cannot be re-read
    assert fake.hits["token"] == 1


async def test_secret_file_is_reread_so_fixing_it_is_enough(fake: FakeArs, tmp_path: Path) -> None:
    """With the secret in a file, a refusal says fixing the file is enough, and the next token request reads it."""
    secret_file = tmp_path / "ars.secret"
    secret_file.write_text("wrong\n")
    config = msgspec.structs.replace(CONFIG, client_secret_file=str(secret_file))
    async with client_for(fake, config=config, secret=config.resolve_secret) as client:
        with pytest.raises(ArsCredentialsRefused) as caught:
            await client.get_status(GUID)
        assert not caught.value.restart_needed
        assert f"the secret in the file {secret_file}" in caught.value.reason
        assert "fixing the file is enough" in caught.value.reason
        secret_file.write_text(SECRET + "\n")
        assert await client.get_status(GUID) is None
    assert fake.hits["token"] == 2


async def test_secret_from_the_environment_needs_a_restart(fake: FakeArs, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the secret in an environment variable, the refusal names it and says the daemon must restart."""
    monkeypatch.setenv(CONFIG.client_secret_env, "wrong")
    async with client_for(fake, secret=CONFIG.resolve_secret) as client:
        with pytest.raises(ArsCredentialsRefused) as caught:
            await client.get_status(GUID)
    assert caught.value.restart_needed
    assert f"the environment variable {CONFIG.client_secret_env}" in caught.value.reason
    assert "restart the daemon" in caught.value.reason


async def test_unreadable_secret_is_refused_credentials(fake: FakeArs, tmp_path: Path) -> None:
    """A secret file that cannot be read raises ArsCredentialsRefused naming the problem; Keycloak is not asked."""
    config = msgspec.structs.replace(CONFIG, client_secret_file=str(tmp_path / "missing.secret"))
    async with client_for(fake, config=config, secret=config.resolve_secret) as client:
        with pytest.raises(ArsCredentialsRefused) as caught:
            await client.get_status(GUID)
    assert "cannot be read" in caught.value.reason
    assert "missing.secret" in caught.value.reason
    assert fake.hits["token"] == 0


async def test_unset_secret_variable_is_refused_credentials(fake: FakeArs, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset secret variable (ConfigError from the provider) is ArsCredentialsRefused needing a restart."""
    monkeypatch.delenv(CONFIG.client_secret_env, raising=False)
    async with client_for(fake, secret=CONFIG.resolve_secret) as client:
        with pytest.raises(ArsCredentialsRefused) as caught:
            await client.get_status(GUID)
    assert caught.value.restart_needed
    assert "no ARS client secret" in caught.value.reason
    assert fake.hits["token"] == 0


@pytest.mark.parametrize("error_code", ["invalid_client", "unauthorized_client"])
async def test_keycloak_400_for_the_client_is_refused_credentials(error_code: str) -> None:
    """Keycloak's 400 invalid_client / unauthorized_client is the same site error as its 401."""

    def keycloak(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": error_code, "error_description": "Client not enabled"})

    async with client_for(keycloak) as client:
        with pytest.raises(ArsCredentialsRefused) as caught:
            await client.get_status(GUID)
    assert f"(400: {error_code})" in caught.value.reason


async def test_ars_refusing_a_fresh_token_is_refused_credentials(fake: FakeArs) -> None:
    """ARS answering 401 to a token Keycloak just issued (resent once) is a site error, not an asset's problem."""

    def other_realm(request: httpx.Request) -> httpx.Response:
        if "keycloak" in request.url.path:
            return fake(request)
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    async with client_for(other_realm) as client:
        with pytest.raises(ArsCredentialsRefused) as caught:
            await client.get_status(GUID)
    assert "ARS refused a token Keycloak just issued (401 for GET /ars/api/v1/assets/status/" in caught.value.reason
    assert fake.hits["token"] == 2  # the first token dropped and replaced once, then no more tries


async def test_wrong_token_url_is_route_not_found() -> None:
    """A 404 from the token URL raises ArsRouteNotFound telling to check ars.token_url."""

    def keycloak(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="<html>Not Found</html>")

    async with client_for(keycloak) as client:
        with pytest.raises(ArsRouteNotFound) as caught:
            await client.get_status(GUID)
    assert caught.value.reason.startswith("Keycloak answered 404 for POST /keycloak/realms/dassco/")
    assert "check ars.token_url" in caught.value.reason


async def test_keycloak_down_is_transient_then_unavailable(fake: FakeArs, autojump_clock: trio.abc.Clock) -> None:
    """A token endpoint answering 503 is retried with back-off, then ArsUnavailable pauses the lane."""
    fake.script["token"] = [503] * RETRY.attempts
    async with client_for(fake) as client:
        with pytest.raises(ArsUnavailable) as caught:
            await client.get_status(GUID)
    assert isinstance(caught.value.__cause__, ArsTransientError)
    assert caught.value.lane == "ars"
    assert caught.value.reason.startswith("Keycloak is unreachable (Keycloak token endpoint answered 503")
    assert "after 3 tries: check that Keycloak is up and ars.token_url" in caught.value.reason
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
    with pytest.raises(ArsConflict) as caught:
        await ars.create_asset(create_body(), allocation_mb=12)
    assert caught.value.kind == "exists"
    assert fake.hits["create"] == 1


async def test_create_duplicate_is_a_conflict(fake: FakeArs, ars: ArsClient) -> None:
    """ARS's 400 "Asset X already exists" raises ArsConflict, never a second create."""
    fake.add_asset()
    with pytest.raises(ArsConflict) as caught:
        await ars.create_asset(create_body(), allocation_mb=12)
    assert caught.value.status_code == 400
    assert caught.value.kind == "exists"
    assert caught.value.error_message == f"Asset {GUID} already exists"
    assert caught.value.guid == GUID
    assert fake.hits["create"] == 1


async def test_create_already_being_processed_is_a_conflict() -> None:
    """ARS's 403 "already being processed" (300 s de-dup window) raises ArsConflict(kind="being_processed")."""
    answer = error(403, f"Asset {GUID} is already being processed", "FORBIDDEN")
    async with client_for(answering(answer)) as client:
        with pytest.raises(ArsConflict) as caught:
            await client.create_asset(create_body(), allocation_mb=12)
    assert (caught.value.status_code, caught.value.kind) == (403, "being_processed")


async def test_create_disk_full_pauses_the_lane(fake: FakeArs, ars: ArsClient) -> None:
    """DISK_FULL with less than ars.disk_full_room_mb free raises ArsDiskFull (site) with a reason to act on."""
    fake.remaining_mb = 5
    with pytest.raises(ArsDiskFull) as caught:
        await ars.create_asset(create_body(), allocation_mb=12)
    assert caught.value.lane == "ars-space"
    assert (caught.value.remaining_mb, caught.value.requested_mb) == (5, 12)
    assert caught.value.reason.startswith("ARS has no disk space for new shares (DISK_FULL, 5 MB remaining)")
    assert GUID not in fake.assets


async def test_create_disk_full_without_a_number_pauses_the_lane(fake: FakeArs, ars: ArsClient) -> None:
    """DISK_FULL that does not say how much is free is taken as a full disk (site), not as one big asset."""
    fake.remaining_mb, fake.report_remaining = 500, False
    with pytest.raises(ArsDiskFull) as caught:
        await ars.create_asset(create_body(), allocation_mb=600)
    assert "remaining space not reported" in caught.value.reason


async def test_create_too_big_for_the_free_space_waits_alone(fake: FakeArs, ars: ArsClient) -> None:
    """DISK_FULL while ARS still has ars.disk_full_room_mb free: only this (too big) asset waits, the lane runs."""
    fake.remaining_mb = 2_500
    with pytest.raises(AssetWaits) as caught:
        await ars.create_asset(create_body(), allocation_mb=3_000)
    assert caught.value.retry_after_s == 300
    assert caught.value.scope is Scope.ASSET
    assert "2500 MB free, not enough for the 3000 MB" in str(caught.value)


async def test_create_with_failed_allocation_under_200_is_a_failure() -> None:
    """Any http_allocation_status other than SUCCESS is a failure even when the HTTP status is 200."""
    info = {"allocated_storage_mb": 0, "http_allocation_status": "BAD_REQUEST", "allocation_status_text": "too small"}
    async with client_for(answering(httpx.Response(200, json={"asset_guid": GUID, "httpInfo": info}))) as client:
        with pytest.raises(ArsRejected) as caught:
            await client.create_asset(create_body(), allocation_mb=12)
    assert (caught.value.status_code, caught.value.error_message) == (400, "too small")
    assert not isinstance(caught.value, ArsConflict)


async def test_create_refusal_of_the_assets_data_is_rejected() -> None:
    """A 4xx about this asset's own data (no conflict, no group) raises ArsRejected carrying ARS's message."""
    async with client_for(answering(error(400, "Parent doesnt exist"))) as client:
        with pytest.raises(ArsRejected) as caught:
            await client.create_asset(create_body(), allocation_mb=12)
    assert caught.value.error_message == "Parent doesnt exist"
    assert type(caught.value) is ArsRejected


async def test_create_for_an_unknown_pipeline_holds_the_group() -> None:
    """ "Pipeline doesnt exist in this institution" concerns every asset of that pipeline: GroupHeld, not quarantine."""
    async with client_for(answering(error(400, "Pipeline doesnt exist in this institution"))) as client:
        with pytest.raises(GroupHeld) as caught:
            await client.create_asset(create_body(), allocation_mb=12)
    assert (caught.value.group_kind, caught.value.group_value) == ("pipeline", None)
    assert caught.value.guid == GUID


async def test_create_on_an_out_of_service_workstation_holds_the_group() -> None:
    """ARS's 403 for an out-of-service workstation holds the workstation's assets."""
    answer = error(403, "Workstation [OUT_OF_SERVICE] is marked as out of service", "FORBIDDEN")
    async with client_for(answering(answer)) as client:
        with pytest.raises(GroupHeld) as caught:
            await client.create_asset(create_body(), allocation_mb=12)
    assert caught.value.group_kind == "workstation"


async def test_create_without_write_rights_holds_the_collection() -> None:
    """ARS's 403 "FORBIDDEN" on a create (no data right, which ARS grants per collection) holds the collection."""
    async with client_for(answering(error(403, "FORBIDDEN", "FORBIDDEN"))) as client:
        with pytest.raises(GroupHeld) as caught:
            await client.create_asset(create_body(), allocation_mb=12)
    assert (caught.value.group_kind, caught.value.group_value) == ("collection", None)
    assert "grant the client the rights for this asset's collection" in str(caught.value)


async def test_a_missing_role_is_forbidden_site_wide() -> None:
    """A bare 403 without an ARS envelope (Jersey's role check) is every asset's problem: ArsForbidden."""
    async with client_for(answering(httpx.Response(403, text=""))) as client:
        with pytest.raises(ArsForbidden) as caught:
            await client.create_asset(create_body(), allocation_mb=12)
    assert caught.value.reason == (
        "ARS refused create_asset (403): the client integration lacks the role service-user or the right to "
        "write to NHMD/Vascular plants"
    )


async def test_create_behind_a_wrong_base_url_is_route_not_found() -> None:
    """A proxy's HTML 404 for POST /assetmetadata means ars.base_url is wrong: ArsRouteNotFound, not rejected."""
    async with client_for(answering(httpx.Response(404, text="<html><h1>404 Not Found</h1></html>"))) as client:
        with pytest.raises(ArsRouteNotFound) as caught:
            await client.create_asset(create_body(), allocation_mb=12)
    assert caught.value.reason.startswith(
        "ARS answered 404 for POST /ars/api/v1/assetmetadata: check ars.base_url (the ARS host only, without /ars/api"
    )
    assert caught.value.url.startswith("http://ars.test/ars/api/v1/assetmetadata")


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
    assert caught.value.reason.startswith(
        "ARS is unreachable (ARS get_status answered 500: <html>gateway trouble</html>)"
    )
    assert caught.value.reason.endswith("after 3 tries: check that ARS is up and ars.base_url (http://ars.test)")
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
    assert not any(token in repr(logs) for token in fake.tokens)


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
    """GET asset answers 204 for an unknown GUID (None), else the typed record; the creator is the CREATE event's."""
    assert await ars.get_asset(GUID) is None
    fake.add_asset(user="service-account-other-pipeline")
    assert await ars.get_asset(GUID) == ArsAsset(
        asset_guid=GUID,
        institution="NHMD",
        collection="Vascular plants",
        internal_status="METADATA_RECEIVED",
        created_by="service-account-other-pipeline",
        file_formats=("TIF",),
    )


@pytest.mark.parametrize(
    ("record", "creator"),
    [
        ({"metadata_created_by": "creator", "updateUser": "updater"}, "creator"),
        ({"metadata_created_by": None, "updateUser": "updater"}, "updater"),
        ({"events": [{"event": "UPDATE_ASSET_METADATA", "user": "x"}], "updateUser": "updater"}, "updater"),
        ({}, None),
    ],
)
async def test_get_asset_creator_falls_back_to_the_stored_user_fields(
    record: dict[str, Any], creator: str | None
) -> None:
    """Without a CREATE_ASSET_METADATA event, created_by is metadata_created_by, else updateUser, else None."""
    answer = httpx.Response(200, json={"asset_guid": GUID, "parent_guids": None, "events": None, **record})
    async with client_for(answering(answer)) as client:
        asset = await client.get_asset(GUID)
    assert asset is not None
    assert (asset.created_by, asset.parent_guids) == (creator, ())


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
    assert fake.hits["upload"] == 1  # not retried here: the asset actor retries it with back-off


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


async def test_a_failing_local_disk_during_an_upload_pauses_the_storage_lane(
    fake: FakeArs, ars: ArsClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EIO while reading the local copy is the disk's problem, not the asset's: StorageUnavailable, not DataError."""
    fake.add_asset()
    path, crc = write_file(tmp_path, 100)

    def failing_read(fd: int, size: int, offset: int) -> bytes:
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(_upload.os, "pread", failing_read)
    with pytest.raises(StorageUnavailable, match="Input/output error"):
        await upload(ars, path, crc, 100)


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
