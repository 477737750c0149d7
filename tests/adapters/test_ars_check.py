"""ArsClient.check (start-up and lane probe) and username, against the fake ARS: each failure says what to fix."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from adapters.test_ars_fake import CONFIG, GUID, RETRY, USER, FakeArs, Handler, answering, client_for, jwt
from integration.adapters.ars import ArsClient
from integration.errors import (
    ArsCredentialsRefused,
    ArsForbidden,
    ArsRouteNotFound,
    ArsUnavailable,
    Scope,
)


@pytest.fixture
def fake() -> FakeArs:
    """A fresh fake ARS."""
    return FakeArs()


@pytest.fixture
async def ars(fake: FakeArs) -> AsyncIterator[ArsClient]:
    """An ArsClient talking to ``fake``."""
    async with client_for(fake) as client:
        yield client


def breaking(fake: FakeArs, path_part: str, response: httpx.Response) -> Handler:
    """A handler answering ``response`` for requests whose path contains ``path_part``, the fake otherwise."""

    def handler(request: httpx.Request) -> httpx.Response:
        if path_part in request.url.path:
            fake.hits[path_part] += 1
            return response
        return fake(request)

    return handler


async def test_check_passes_and_fetches_a_fresh_token(fake: FakeArs, ars: ArsClient) -> None:
    """check asks Keycloak again even with a valid cached token, then reaches ARS and the file proxy once each."""
    await ars.get_status(GUID)
    await ars.check()
    assert fake.hits["token"] == 2
    assert (fake.hits["institutions"], fake.hits["files"]) == (1, 1)


async def test_check_with_a_wrong_secret_is_refused_credentials(fake: FakeArs) -> None:
    """A wrong secret makes check raise ArsCredentialsRefused (site), before ARS is asked anything."""
    fake.secret = "rotated"
    async with client_for(fake) as client:
        with pytest.raises(ArsCredentialsRefused) as caught:
            await client.check()
    assert caught.value.scope is Scope.SITE
    assert fake.hits["institutions"] == 0


async def test_check_behind_a_wrong_base_url_is_route_not_found(fake: FakeArs) -> None:
    """An HTML 404 for GET /institutions says to check ars.base_url."""
    handler = breaking(fake, "/institutions", httpx.Response(404, text="<html>Not Found</html>"))
    async with client_for(handler) as client:
        with pytest.raises(ArsRouteNotFound) as caught:
            await client.check()
    assert caught.value.reason.startswith("ARS answered 404 for GET /ars/api/v1/institutions: check ars.base_url")
    assert fake.hits["/institutions"] == 1  # not retried


async def test_check_without_the_file_proxy_is_route_not_found(fake: FakeArs) -> None:
    """ARS answering but the file proxy's route missing (404) is a site error naming the file-proxy path."""
    handler = breaking(fake, "/file_proxy/", httpx.Response(404, text="Not Found"))
    async with client_for(handler) as client:
        with pytest.raises(ArsRouteNotFound) as caught:
            await client.check()
    assert "for GET /file_proxy/api/assets/" in caught.value.reason
    assert "/file_proxy/api/assets/" in caught.value.url


async def test_check_without_the_service_role_is_forbidden(fake: FakeArs) -> None:
    """Jersey's bare 403 (no service-user role) makes check raise ArsForbidden naming the client."""
    handler = breaking(fake, "/institutions", httpx.Response(403))
    async with client_for(handler) as client:
        with pytest.raises(ArsForbidden) as caught:
            await client.check()
    assert caught.value.reason.startswith(
        "ARS refused list_institutions (403): the client integration lacks the role service-user"
    )


async def test_check_with_ars_down_is_unavailable_after_the_retries(
    fake: FakeArs, autojump_clock: trio.abc.Clock
) -> None:
    """ARS answering 503 is retried retry.attempts times, then ArsUnavailable says to check ARS and ars.base_url."""
    handler = breaking(fake, "/institutions", httpx.Response(503, text="Service Unavailable"))
    async with client_for(handler) as client:
        with pytest.raises(ArsUnavailable) as caught:
            await client.check()
    assert fake.hits["/institutions"] == RETRY.attempts
    assert caught.value.reason == (
        "ARS is unreachable (ARS list_institutions answered 503: Service Unavailable) after 3 tries: "
        "check that ARS is up and ars.base_url (http://ars.test)"
    )


async def test_check_with_keycloak_unreachable_names_keycloak(fake: FakeArs, autojump_clock: trio.abc.Clock) -> None:
    """A token endpoint that refuses connections makes check raise ArsUnavailable naming Keycloak and its URL."""

    def refused(request: httpx.Request) -> httpx.Response:
        if "keycloak" in request.url.path:
            raise httpx.ConnectError("connection refused")
        return fake(request)

    async with client_for(refused) as client:
        with pytest.raises(ArsUnavailable) as caught:
            await client.check()
    assert caught.value.reason.startswith("Keycloak is unreachable (Keycloak token: ConnectError: connection refused)")
    assert f"ars.token_url ({CONFIG.token_url})" in caught.value.reason


async def test_check_recovers_once_the_cause_is_gone(fake: FakeArs) -> None:
    """The lane probe calls check again: once the secret is right again, it passes without a new client."""
    fake.secret = "rotated"
    async with client_for(fake) as client:
        with pytest.raises(ArsCredentialsRefused):
            await client.check()
        fake.secret = "s3cret-value"
        await client.check()


async def test_username_is_the_tokens_preferred_username(ars: ArsClient) -> None:
    """username is the preferred_username claim of the token ARS records as the creating user."""
    assert await ars.username() == USER


async def test_username_of_another_account_comes_from_the_claim() -> None:
    """The claim wins over the client id: ARS records whoever the token names."""
    token = jwt({"preferred_username": "service-account-renamed"})

    def keycloak(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": token, "expires_in": 300})

    async with client_for(keycloak) as client:
        assert await client.username() == "service-account-renamed"


async def test_username_falls_back_for_an_opaque_token() -> None:
    """A token that is not a JWT gives Keycloak's service-account-<client_id>."""
    async with client_for(answering(httpx.Response(200))) as client:
        assert await client.username() == "service-account-integration"
