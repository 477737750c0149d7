"""The Keycloak side: the client-credentials token endpoint and bearer-token checks (spec §2, §14.1).

Tokens are HS256 JWTs signed with ``settings.signing_key`` (stdlib hmac), with the claims ARS and the file
proxy read: ``sub``, ``preferred_username`` (``service-account-<client_id>``), ``realm_access.roles`` (the
roles of the client that asked: ``client_roles`` for the main client, ``dassco-admin`` for the admin client)
and ``exp``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid
from urllib.parse import parse_qs

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from integration.emulators.ars._errors import ApiError, Service, json_response

__all__ = ["Claims", "Client", "TokenIssuer", "authenticate", "handle_token_request"]


class RealmAccess(msgspec.Struct, frozen=True):
    """The ``realm_access`` claim."""

    roles: tuple[str, ...] = ()


class Claims(msgspec.Struct, frozen=True, kw_only=True):
    """The claims of an emulator token that ARS / the file proxy use."""

    sub: str
    preferred_username: str
    realm_access: RealmAccess
    exp: int
    iat: int = 0
    azp: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64(b'{"alg":"HS256","typ":"JWT"}')


class Client(msgspec.Struct, frozen=True, kw_only=True):
    """A Keycloak client the emulator accepts, and the realm roles its tokens carry."""

    client_id: str
    secret: str
    roles: tuple[str, ...]


class TokenIssuer:
    """Issues and verifies the emulator's JWTs for the configured clients."""

    def __init__(self, *, clients: list[Client], lifetime_s: int, key: str) -> None:
        self.clients = {client.client_id: client for client in clients}
        self.lifetime_s = lifetime_s
        self._key = key.encode()

    def client_ok(self, client_id: str, client_secret: str) -> bool:
        """Whether the credentials are those of a configured client (constant-time secret compare)."""
        client = self.clients.get(client_id)
        expected = b"" if client is None else client.secret.encode()
        same_secret = hmac.compare_digest(client_secret.encode(), expected)
        return same_secret and client is not None

    def issue(self, client_id: str, *, now: float | None = None) -> str:
        """A token of client ``client_id``, valid ``lifetime_s`` seconds from ``now``; KeyError if unknown."""
        client = self.clients[client_id]
        issued = int(time.time() if now is None else now)
        claims = Claims(
            sub=str(uuid.uuid5(uuid.NAMESPACE_URL, f"ars-emulator/{client_id}")),
            preferred_username=f"service-account-{client_id}",
            realm_access=RealmAccess(roles=client.roles),
            exp=issued + self.lifetime_s,
            iat=issued,
            azp=client_id,
        )
        signing_input = f"{_HEADER}.{_b64(msgspec.json.encode(claims))}"
        return f"{signing_input}.{_b64(self._sign(signing_input))}"

    def verify(self, token: str, *, now: float | None = None) -> Claims | None:
        """The token's claims, or None if it is malformed, badly signed or expired."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            signature = _unb64(parts[2])
            if not hmac.compare_digest(signature, self._sign(f"{parts[0]}.{parts[1]}")):
                return None
            claims = msgspec.json.decode(_unb64(parts[1]), type=Claims)
        except (binascii.Error, ValueError, msgspec.DecodeError):
            return None
        if claims.exp <= (time.time() if now is None else now):
            return None
        return claims

    def _sign(self, signing_input: str) -> bytes:
        return hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()


def _client_credentials(request: Request, form: dict[str, list[str]]) -> tuple[str, str]:
    """Client id and secret from the form, or from HTTP Basic auth (client_secret_basic)."""
    client_id = form.get("client_id", [""])[0]
    secret = form.get("client_secret", [""])[0]
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
    return client_id, secret


async def handle_token_request(request: Request, issuer: TokenIssuer) -> Response:
    """``POST /keycloak/realms/dassco/protocol/openid-connect/token`` with the client-credentials grant."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    if form.get("grant_type", [""])[0] != "client_credentials":
        body = {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}
        return json_response(body, 400)
    client_id, secret = _client_credentials(request, form)
    if not issuer.client_ok(client_id, secret):
        body = {"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"}
        return json_response(body, 401)
    return json_response(
        {
            "access_token": issuer.issue(client_id),
            "expires_in": issuer.lifetime_s,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "openid profile email",
        }
    )


def authenticate(request: Request, issuer: TokenIssuer, service: Service) -> Claims:
    """The caller's claims; raises :class:`ApiError` with the answer each service gives otherwise.

    No token: ARS 403 (Jersey ``@RolesAllowed``), file proxy 401 envelope. Bad or expired token: 401 with an
    empty body and ``WWW-Authenticate`` (Spring's bearer filter), on both.
    """
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        if service == "ars":
            raise ApiError(403, "FORBIDDEN", "FORBIDDEN")
        raise ApiError(401, "UNAUTHORIZED", None)
    claims = issuer.verify(token.strip())
    if claims is None:
        challenge = (
            'Bearer error="invalid_token", error_description="An error occurred while attempting to decode the Jwt"'
        )
        raise ApiError(401, "UNAUTHORIZED", None, bare=True, headers={"WWW-Authenticate": challenge})
    return claims
