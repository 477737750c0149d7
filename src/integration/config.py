"""The configuration: one TOML file decoded into frozen msgspec Structs.

:func:`load_config` reports *every* problem at once (key path, what is wrong, how to fix it) by raising
:class:`~integration.errors.ConfigError`; ``integration check-config`` prints them and exits 2.
Secrets never live in the TOML by default: ``ars.client_secret_env`` names an environment variable and
``ars.client_secret_file`` a file; a plain ``ars.client_secret`` is refused unless
``ars.allow_plaintext_secret = true`` (meant for throw-away demos only).
"""

from __future__ import annotations

import difflib
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import msgspec

from integration.errors import ConfigError

__all__ = [
    "ArsConfig",
    "ConcurrencyConfig",
    "Config",
    "DaemonConfig",
    "IntakeConfig",
    "NdriveConfig",
    "PipelineConfig",
    "RetryConfig",
    "StorageConfig",
    "load_config",
    "parse_config",
]


class NdriveConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Where assets arrive: ``<root>/<workstation>/<session folder>/``."""

    root: str
    workstations: list[str]
    settle_s: float = 30.0  # a session folder is imported only after this long without any change
    scan_interval_s: float = 5.0


class StorageConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Local copies of assets and the track database."""

    root: str
    database: str


class ArsConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How to reach ARS (asset service + file proxy) and its Keycloak."""

    base_url: str  # ARS at {base_url}/ars/api, file proxy at {base_url}/file_proxy/api
    token_url: str
    client_id: str
    client_secret_env: str = "INTEGRATION_ARS_CLIENT_SECRET"
    client_secret_file: str = ""
    client_secret: str = ""
    allow_plaintext_secret: bool = False
    request_timeout_s: float = 30.0
    upload_timeout_s: float = 600.0
    token_refresh_margin_s: float = 30.0
    allocation_headroom_fraction: float = 0.1
    allocation_headroom_min_mb: int = 1
    sync_poll_initial_s: float = 5.0
    sync_poll_max_s: float = 30.0
    sync_stuck_after_s: float = 300.0
    max_resyncs: int = 3
    probe_interval_s: float = 5.0  # while the ARS lane is paused, how often to ask whether ARS is back

    def resolve_secret(self) -> str:
        """The client secret from the file, the environment variable or (if allowed) the TOML."""
        if self.client_secret_file:
            return Path(self.client_secret_file).read_text(encoding="utf-8").strip()
        if self.client_secret_env and os.environ.get(self.client_secret_env):
            return os.environ[self.client_secret_env]
        if self.client_secret and self.allow_plaintext_secret:
            return self.client_secret
        raise ConfigError(
            f"no ARS client secret: set the environment variable {self.client_secret_env!r} or ars.client_secret_file"
        )


class ConcurrencyConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Limits per external resource (each a trio.CapacityLimiter)."""

    assets: int = 64  # asset actors moving at once
    ars_connections: int = 16
    copies: int = 4  # N-Drive -> local storage copies at once


class RetryConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Capped exponential back-off with jitter for transient errors."""

    attempts: int = 6
    initial_s: float = 0.5
    max_s: float = 30.0
    jitter_s: float = 1.0


class IntakeConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What the N-Drive watcher accepts; an empty list accepts any value (ARS then decides)."""

    institutions: list[str] = msgspec.field(default_factory=list)
    raw_extensions: list[str] = msgspec.field(default_factory=lambda: ["dng", "cr3", "cr2", "raf"])


class DaemonConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Process behaviour."""

    log_format: str = "auto"  # auto (JSON unless a TTY), json, console
    log_level: str = "info"


class PipelineConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A pipeline: job groups run in order; jobs inside one group may run in parallel."""

    jobs: list[list[str]]


class Config(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The whole configuration file."""

    ndrive: NdriveConfig
    storage: StorageConfig
    ars: ArsConfig
    pipelines: dict[str, PipelineConfig]
    concurrency: ConcurrencyConfig = msgspec.field(default_factory=ConcurrencyConfig)
    retry: RetryConfig = msgspec.field(default_factory=RetryConfig)
    intake: IntakeConfig = msgspec.field(default_factory=IntakeConfig)
    daemon: DaemonConfig = msgspec.field(default_factory=DaemonConfig)


_HINTS: dict[str, str] = {
    "ndrive.root": 'an absolute path to the mounted N-Drive, e.g. root = "/mnt/ndrive"',
    "ndrive.workstations": 'the workstation folder names to watch, e.g. workstations = ["WORKHERB0001"]',
    "storage.root": "an absolute path with room for the local copies",
    "storage.database": 'an absolute path of the SQLite file, e.g. "/var/lib/integration/track.sqlite3"',
    "ars.base_url": 'the ARS host, e.g. "https://biovault.dassco.dk" (no /ars/api suffix)',
    "ars.token_url": 'the Keycloak token URL, e.g. "https://host/keycloak/realms/dassco/protocol/openid-connect/token"',
    "ars.client_secret": "remove it and export the secret in the variable named by ars.client_secret_env, "
    "or point ars.client_secret_file at a file",
    "pipelines": 'a table per pipeline, e.g. [pipelines.PIPEHERB0001] jobs = [["asset_loader"], ["barcode"]]',
}


def load_config(path: Path) -> Config:
    """Read and validate ``path``; raises :class:`ConfigError` listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "<config>") -> Config:
    """Validate TOML ``text``; raises :class:`ConfigError` listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    problems: list[str] = []
    _check_struct(Config, data, "", problems)
    problems.extend(_semantic_problems(data))
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems=problems)
    return msgspec.convert(data, Config)


def _hint(path: str) -> str:
    hint = _HINTS.get(path)
    return f" (fix: {hint})" if hint else ""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{origin.__name__}[{args}]"
    return getattr(tp, "__name__", str(tp))


def _check_struct(cls: type[msgspec.Struct], data: Any, prefix: str, problems: list[str]) -> None:
    """Walk ``data`` against ``cls`` and record every missing, unknown or mistyped key."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(data, dict):
        problems.append(f"{where}: expected a table, found {type(data).__name__}{_hint(prefix.rstrip('.'))}")
        return
    fields = {f.name: f for f in msgspec.structs.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{prefix}{key}: unknown key{suggestion}")
    for name, field in fields.items():
        path = f"{prefix}{name}"
        if name not in data:
            if field.required:
                problems.append(f"{path}: missing{_hint(path)}")
            continue
        _check_value(field.type, data[name], path, problems)


def _check_value(tp: Any, value: Any, path: str, problems: list[str]) -> None:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        _check_struct(tp, value, path + ".", problems)
        return
    if typing.get_origin(tp) is dict:
        _, value_type = typing.get_args(tp)
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a table, found {type(value).__name__}{_hint(path)}")
            return
        for key, item in value.items():
            _check_value(value_type, item, f"{path}.{key}", problems)
        return
    try:
        msgspec.convert(value, tp)
    except msgspec.ValidationError:
        problems.append(f"{path}: expected {_type_name(tp)}, found {type(value).__name__} {value!r}{_hint(path)}")


def _get(data: dict[str, Any], path: str) -> Any:
    """The raw value at dotted ``path``, or None when absent."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _semantic_problems(data: dict[str, Any]) -> list[str]:
    """Checks beyond types, on the raw data, so they are reported together with type problems."""
    problems: list[str] = []
    for path in ("ndrive.root", "storage.root", "storage.database"):
        value = _get(data, path)
        if isinstance(value, str) and not os.path.isabs(value):
            problems.append(f"{path}: {value!r} is not an absolute path{_hint(path)}")
    workstations = _get(data, "ndrive.workstations")
    if isinstance(workstations, list):
        if not workstations:
            problems.append(f"ndrive.workstations: empty list{_hint('ndrive.workstations')}")
        for name in workstations:
            if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
                problems.append(f"ndrive.workstations: {name!r} is not a folder name")
    for path in ("ars.base_url", "ars.token_url"):
        url = _get(data, path)
        if isinstance(url, str) and not url.startswith(("http://", "https://")):
            problems.append(f"{path}: {url!r} is not an http(s) URL{_hint(path)}")
    if _get(data, "ars.client_secret") and _get(data, "ars.allow_plaintext_secret") is not True:
        problems.append(f"ars.client_secret: a plain-text secret in the config file{_hint('ars.client_secret')}")
    for path in _POSITIVE:
        number = _get(data, path)
        if isinstance(number, int | float) and not isinstance(number, bool) and number <= 0:
            problems.append(f"{path}: must be > 0, found {number} (0 never means 'forever' here)")
    resyncs = _get(data, "ars.max_resyncs")
    if isinstance(resyncs, int) and resyncs < 0:
        problems.append(f"ars.max_resyncs: must be >= 0, found {resyncs}")
    log_format = _get(data, "daemon.log_format")
    if isinstance(log_format, str) and log_format not in ("auto", "json", "console"):
        problems.append(f"daemon.log_format: {log_format!r} is not one of auto, json, console")
    pipelines = _get(data, "pipelines")
    if isinstance(pipelines, dict):
        if not pipelines:
            problems.append(f"pipelines: no pipeline defined{_hint('pipelines')}")
        for name, pipeline in pipelines.items():
            jobs = pipeline.get("jobs") if isinstance(pipeline, dict) else None
            if isinstance(jobs, list) and (not jobs or any(not group for group in jobs)):
                problems.append(f"pipelines.{name}.jobs: needs at least one job group, each with a job")
    return problems


_POSITIVE = (
    "ndrive.settle_s",
    "ndrive.scan_interval_s",
    "ars.request_timeout_s",
    "ars.upload_timeout_s",
    "ars.sync_poll_initial_s",
    "ars.sync_poll_max_s",
    "ars.probe_interval_s",
    "concurrency.assets",
    "concurrency.ars_connections",
    "concurrency.copies",
    "retry.attempts",
    "retry.initial_s",
    "retry.max_s",
)
