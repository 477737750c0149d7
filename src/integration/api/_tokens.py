"""Bearer tokens, one per caller (a cluster, an agent, an operator), read from files; compared in constant time
and never logged."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path

from integration.errors import ConfigError

__all__ = ["MIN_TOKEN_LENGTH", "Tokens"]

MIN_TOKEN_LENGTH = 16


class Tokens:
    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._tokens = {name: token.encode() for name, token in tokens.items()}

    @classmethod
    def from_files(cls, files: Mapping[str, str], *, extra: Mapping[str, str] | None = None) -> Tokens:
        """Read each caller's token from its file; every unusable file is reported at once (ConfigError)."""
        tokens: dict[str, str] = dict(extra or {})
        problems: list[str] = []
        for name, path in files.items():
            try:
                token = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.append(f"api.token_files.{name}: cannot read {path}: {exc.strerror or exc}")
                continue
            if len(token) < MIN_TOKEN_LENGTH:
                problems.append(
                    f"api.token_files.{name}: the token in {path} is shorter than {MIN_TOKEN_LENGTH} characters"
                )
                continue
            tokens[name] = token
        if problems:
            raise ConfigError("the API's token files cannot be used", problems=problems)
        return cls(tokens)

    def caller(self, authorization: str | None) -> str | None:
        """The caller's name for an ``Authorization: Bearer <token>`` header, or None (every token is compared)."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        offered = authorization.removeprefix("Bearer ").strip().encode()
        found = None
        for name, token in self._tokens.items():
            if hmac.compare_digest(offered, token) and found is None:
                found = name
        return found
