"""Token endpoint and bearer-token checks of the ARS emulator."""

from __future__ import annotations

import base64
import json
import time

from emulators.ars_support import ARS, FP, Ars
from integration.emulators.ars import create_app

TOKEN = "/keycloak/realms/dassco/protocol/openid-connect/token"


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


async def test_token_has_keycloak_shape_and_claims(ars: Ars) -> None:
    """client_credentials yields a Bearer JWT with the service-account claims ARS reads."""
    form = {"grant_type": "client_credentials", "client_id": "integration", "client_secret": "integration-secret"}
    reply = await ars.client.post(TOKEN, data=form)
    assert reply.status_code == 200
    body = reply.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    claims = _claims(body["access_token"])
    assert claims["preferred_username"] == "service-account-integration"
    assert claims["realm_access"] == {"roles": ["service-user"]}
    assert isinstance(claims["sub"], str)
    assert isinstance(claims["exp"], int)
    assert claims["exp"] > time.time()


async def test_token_accepts_http_basic_client_auth(ars: Ars) -> None:
    """Client credentials may also come as HTTP Basic auth (client_secret_basic)."""
    reply = await ars.client.post(
        TOKEN, data={"grant_type": "client_credentials"}, auth=("integration", "integration-secret")
    )
    assert reply.status_code == 200


async def test_wrong_secret_is_unauthorized_client(ars: Ars) -> None:
    """A wrong client secret is refused with 401 unauthorized_client."""
    form = {"grant_type": "client_credentials", "client_id": "integration", "client_secret": "nope"}
    reply = await ars.client.post(TOKEN, data=form)
    assert reply.status_code == 401
    assert reply.json()["error"] == "unauthorized_client"


async def test_unsupported_grant_is_rejected(ars: Ars) -> None:
    """Only the client-credentials grant is supported."""
    reply = await ars.client.post(TOKEN, data={"grant_type": "password"})
    assert reply.status_code == 400
    assert reply.json()["error"] == "unsupported_grant_type"


async def test_missing_token_is_403_on_ars_and_401_on_file_proxy(ars: Ars) -> None:
    """Without a token ARS answers 403 and the file proxy a 401 UNAUTHORIZED envelope."""
    del ars.client.headers["Authorization"]
    assert (await ars.client.get(f"{ARS}/institutions")).status_code == 403
    reply = await ars.client.get(f"{FP}/assets/x/files")
    assert reply.status_code == 401
    assert reply.json()["errorCode"] == "UNAUTHORIZED"


async def test_malformed_token_is_401_with_empty_body(ars: Ars) -> None:
    """A token that does not verify gets 401, an empty body and a WWW-Authenticate challenge."""
    for path in (f"{ARS}/institutions", f"{FP}/assets/x/files"):
        reply = await ars.client.get(path, headers={"Authorization": "Bearer not.a.jwt"})
        assert reply.status_code == 401
        assert reply.content == b""
        assert reply.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


async def test_expired_token_is_401(ars: Ars) -> None:
    """A correctly signed token past its exp is refused."""
    old = ars.emulator.issue_token(now=time.time() - 3600)
    reply = await ars.client.get(f"{ARS}/institutions", headers={"Authorization": f"Bearer {old}"})
    assert reply.status_code == 401


async def test_token_from_another_emulator_key_is_401(ars: Ars) -> None:
    """A token signed with another key does not verify."""
    from integration.emulators.ars import EmulatorSettings

    _, other = create_app(EmulatorSettings(signing_key="other", data_dir=str(ars.emulator.data_dir / "o")))
    reply = await ars.client.get(f"{ARS}/institutions", headers={"Authorization": f"Bearer {other.issue_token()}"})
    assert reply.status_code == 401


async def test_health_needs_no_token(ars: Ars) -> None:
    """The actuator health endpoints answer UP without a token."""
    async with ars.anonymous() as client:
        assert (await client.get("/ars/actuator/health")).json() == {"status": "UP"}
        assert (await client.get(f"{FP}/actuator/health")).status_code == 200
    assert ars.emulator.stats().token_requests == 1
