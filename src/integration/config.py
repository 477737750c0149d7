"""The configuration: one TOML file decoded into frozen msgspec Structs, validated where it is declared.

Every field states what it accepts on its own annotation: a constrained type from the aliases below
(:data:`PositiveSeconds`, :data:`AbsolutePath`, ...), a ``Literal`` for an enumeration, and the fix hint in
``Meta(extra={"hint": ...})``. A check that needs two fields of one table is listed in that table's
``_checks``. There is no list of key names anywhere else.

:func:`parse_config` walks the TOML against the Structs and reports *every* problem at once, each with its
dotted key path (unknown key with a "did you mean", missing key, wrong type, violated constraint in words,
cross-field problem) by raising :class:`~integration.errors.ConfigError`; ``integration check-config`` prints
them and exits 2. :func:`config_warnings` lists what does not stop the daemon but will hamper it (a missing
N-Drive folder, an unreadable secret file); ``check-config`` prints those as ``warning:`` lines.

Secrets never live in the TOML by default: ``ars.client_secret_env`` names an environment variable and
``ars.client_secret_file`` a file; a plain ``ars.client_secret`` is refused unless
``ars.allow_plaintext_secret = true`` (meant for throw-away demos only).
"""

from __future__ import annotations

import difflib
import math
import operator
import os
import re
import tomllib
import types
import typing
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from integration.errors import ConfigError

# Over 400 lines on purpose: the Structs, the constrained types they are built from and the walker that reads
# those annotations to report problems are one unit; split apart, a rule would again live far from its key.

__all__ = [
    "AbsolutePath",
    "ApiConfig",
    "ArsConfig",
    "ConcurrencyConfig",
    "Config",
    "DaemonConfig",
    "ExecutorConfig",
    "FolderName",
    "Fraction",
    "IntakeConfig",
    "JobConfig",
    "JobModule",
    "JobName",
    "LanesConfig",
    "Name",
    "NdriveConfig",
    "NonNegativeInt",
    "NonNegativeSeconds",
    "OptionalAbsolutePath",
    "PipelineConfig",
    "PositiveInt",
    "PositiveSeconds",
    "ProcessingConfig",
    "RetryConfig",
    "StorageConfig",
    "Url",
    "config_warnings",
    "load_config",
    "parse_config",
]

# --- Constrained types: the one place that says what a kind of value may be -------------------------------
# ``extra["note"]`` is added to a violation of the constraint; ``extra["expected"]`` names what a pattern means.
# Every float must also be finite (msgspec cannot say so): ``inf`` is refused like 0, never read as "forever".

#: A duration that must pass: 0 or a negative number is an error, never "no timeout".
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0, extra={"note": "0 never means 'forever' here"})]
#: A duration that may be 0 (a jitter, a margin).
NonNegativeSeconds = Annotated[float, msgspec.Meta(ge=0)]
#: A share of something, from 0 to 1.
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
#: A count or limit of at least 1.
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
#: A count or size that may be 0.
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
#: A POSIX absolute path (the daemon's working directory is no anchor for a relative one).
AbsolutePath = Annotated[str, msgspec.Meta(pattern="^/", extra={"expected": "an absolute path"})]
#: An absolute path, or "" for none.
OptionalAbsolutePath = Annotated[str, msgspec.Meta(pattern="^(/|$)", extra={"expected": "an absolute path or empty"})]
#: An http(s) URL with a host.
Url = Annotated[str, msgspec.Meta(pattern=r"^https?://[^/\s]+", extra={"expected": "an http(s) URL"})]
#: One folder name: not empty, no "/", not hidden.
FolderName = Annotated[
    str, msgspec.Meta(pattern=r"^[^/.][^/]*$", extra={"expected": "a folder name (no '/', not starting with '.')"})
]
#: A name that must not be empty.
Name = Annotated[str, msgspec.Meta(min_length=1)]
#: A job's name: it becomes part of job keys and folder names.
JobName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]*$", extra={"expected": "a job name of a-z, 0-9 and _"})]


def _fix(hint: str) -> msgspec.Meta:
    """The fix hint of a field, shown after each of its problems."""
    return msgspec.Meta(extra={"hint": hint})


# --- The tables ------------------------------------------------------------------------------------------


#: A check that needs more than one field of a table: it yields (field name, what is wrong).
_Check = Callable[[Any], Iterator[tuple[str, str]]]


class _Section(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Base of every table: keyword-only, frozen, unknown keys refused, and its cross-field ``_checks``.

    A check also runs when other fields of the table are wrong: it reads the fields that are right, and is
    skipped only when it needs one that is already reported.
    """

    _checks: ClassVar[tuple[_Check, ...]] = ()


def _not_below(low: str, high: str) -> _Check:
    """A check: ``high`` must not be smaller than its sibling ``low`` (a back-off that could not grow)."""

    def check(section: Any) -> Iterator[tuple[str, str]]:
        low_value, high_value = getattr(section, low), getattr(section, high)
        if high_value < low_value:
            yield high, f"must be >= {low} ({low_value}), found {high_value}"

    return check


def _listed_once(ndrive: NdriveConfig) -> Iterator[tuple[str, str]]:
    """Each workstation folder is listed once."""
    seen: set[str] = set()
    for name in ndrive.workstations:
        if name in seen:
            yield "workstations", f"{name!r} is listed more than once"
        seen.add(name)


def _host_only(ars: ArsConfig) -> Iterator[tuple[str, str]]:
    """``ars.base_url`` is the host: the integration appends ``/ars/api`` and ``/file_proxy/api`` itself."""
    path = urllib.parse.urlsplit(ars.base_url).path.rstrip("/")
    suffix = next((s for s in ("/ars/api", "/file_proxy/api", "/ars") if path.endswith(s)), None)
    if suffix:
        yield "base_url", f"{ars.base_url!r} ends in {suffix}; the integration adds the API paths itself"


def _plaintext_allowed(ars: ArsConfig) -> Iterator[tuple[str, str]]:
    """A secret in the TOML only with ``allow_plaintext_secret = true``."""
    if ars.client_secret and not ars.allow_plaintext_secret:
        yield "client_secret", "a plain-text secret in the config file"


def _decoded(config: Any) -> Config:
    """Cross-table checks compare decoded tables (with their defaults): they wait until the rest is right."""
    if not isinstance(config, Config):
        raise _Skip("the configuration has other problems; fix those first")
    return config


def _pipeline_jobs_known(config: Any) -> Iterator[tuple[str, str]]:
    """Every job a pipeline names is a configured job (``[jobs.<name>]``, or one of the defaults)."""
    known = set(_decoded(config).jobs)
    for pipeline, spec in config.pipelines.items():
        for name in {name for group in spec.jobs for name in group} - known:
            yield "pipelines", f"{pipeline}: job {name!r} is not configured (known: {', '.join(sorted(known))})"


def _jobs_fit_executor(config: Any) -> Iterator[tuple[str, str]]:
    """No job asks for more than the executor may give one job."""
    executor = _decoded(config).executor
    limits = (("cpus", "max_cpus"), ("memory_mb", "max_memory_mb"), ("time_limit_s", "max_time_limit_s"))
    for name, job in config.jobs.items():
        for wanted, limit in limits:
            value, most = getattr(job, wanted), getattr(executor, limit)
            if value > most:
                yield "jobs", f"{name}: {wanted} = {value} is more than executor.{limit} = {most}"


def _each_job_once(pipeline: Any) -> Iterator[tuple[str, str]]:
    """A job appears once in a pipeline (its results are keyed by its name)."""
    seen: set[str] = set()
    for group in pipeline.jobs:
        for name in group:
            if name in seen:
                yield "jobs", f"{name!r} is listed more than once"
            seen.add(name)


class NdriveConfig(_Section, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Where assets arrive: ``<root>/<workstation>/<session folder>/``."""

    root: Annotated[AbsolutePath, _fix('an absolute path to the mounted N-Drive, e.g. root = "/mnt/ndrive"')]
    workstations: Annotated[
        list[FolderName],
        msgspec.Meta(min_length=1),
        _fix('the workstation folder names to watch, each once, e.g. workstations = ["WORKHERB0001"]'),
    ]
    settle_s: PositiveSeconds = 30.0  # a session folder is imported only after this long without any change
    scan_interval_s: PositiveSeconds = 5.0
    io_timeout_s: PositiveSeconds = 60.0  # one listing/stat/read; slower pauses the intake lane
    copy_timeout_s: PositiveSeconds = 1800.0  # one file: read + CRC-32 + fsync + verifying re-read

    _checks = (_listed_once,)


class StorageConfig(_Section, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Local copies of assets and the track database."""

    root: Annotated[AbsolutePath, _fix("an absolute path with room for the local copies")]
    database: Annotated[
        AbsolutePath, _fix('an absolute path of the SQLite file, e.g. "/var/lib/integration/track.sqlite3"')
    ]


class ArsConfig(_Section, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How to reach ARS (asset service + file proxy) and its Keycloak."""

    # ARS at {base_url}/ars/api, file proxy at {base_url}/file_proxy/api
    base_url: Annotated[Url, _fix("the ARS host only, e.g. https://biovault.dassco.dk")]
    token_url: Annotated[
        Url, _fix('the Keycloak token URL, e.g. "https://host/keycloak/realms/dassco/protocol/openid-connect/token"')
    ]
    client_id: Annotated[Name, _fix("the Keycloak client id of the integration")]
    client_secret_env: str = "INTEGRATION_ARS_CLIENT_SECRET"
    client_secret_file: Annotated[OptionalAbsolutePath, _fix("the absolute path of a file with the secret")] = ""
    client_secret: Annotated[
        str,
        _fix(
            "remove it and export the secret in the variable named by ars.client_secret_env, "
            "or point ars.client_secret_file at a file"
        ),
    ] = ""
    allow_plaintext_secret: bool = False
    request_timeout_s: PositiveSeconds = 30.0
    upload_timeout_s: PositiveSeconds = 600.0
    token_refresh_margin_s: NonNegativeSeconds = 30.0
    allocation_headroom_fraction: Fraction = 0.1
    allocation_headroom_min_mb: NonNegativeInt = 1
    sync_poll_initial_s: PositiveSeconds = 5.0
    sync_poll_max_s: PositiveSeconds = 30.0
    sync_stuck_after_s: PositiveSeconds = 300.0
    max_resyncs: NonNegativeInt = 3
    create_dedup_window_s: PositiveSeconds = 330.0  # ARS blocks a GUID 300 s after a create failed on its side
    crc_mismatch_retries: PositiveInt = 5  # 507 answers for one file before the asset is quarantined
    disk_full_room_mb: NonNegativeInt = 2000  # DISK_FULL with this much free: only the asking asset waits
    max_wait_s: PositiveSeconds = 86400.0  # an asset waiting on its own this long is failed with the reason

    _checks = (_host_only, _plaintext_allowed, _not_below("sync_poll_initial_s", "sync_poll_max_s"))

    def resolve_secret(self) -> str:
        """The client secret from the file, the environment variable or (if allowed) the TOML.

        A file is read again on every call, so a corrected secret is picked up without a restart (see
        :attr:`secret_rereadable`). Raises :class:`ConfigError` when there is no secret or the file is not text,
        and ``OSError`` when the file cannot be read.
        """
        if self.client_secret_file:
            try:
                return Path(self.client_secret_file).read_text(encoding="utf-8").strip()
            except UnicodeDecodeError as exc:
                raise ConfigError(f"ars.client_secret_file: {self.client_secret_file!r} is not UTF-8 text") from exc
        if self.client_secret_env and os.environ.get(self.client_secret_env):
            return os.environ[self.client_secret_env]
        if self.client_secret and self.allow_plaintext_secret:
            return self.client_secret
        raise ConfigError(
            f"no ARS client secret: set the environment variable {self.client_secret_env!r} or ars.client_secret_file"
        )

    def secret_source(self) -> str:
        """Where :meth:`resolve_secret` takes the secret from right now, in words for a message to a human."""
        if self.client_secret_file:
            return f"the file {self.client_secret_file}"
        env_set = bool(self.client_secret_env and os.environ.get(self.client_secret_env))
        if not env_set and self.client_secret and self.allow_plaintext_secret:
            return "the configuration file (plain text)"
        if self.client_secret_env:
            return f"the environment variable {self.client_secret_env}"
        return "nowhere (set ars.client_secret_env or ars.client_secret_file)"

    @property
    def secret_rereadable(self) -> bool:
        """True when the secret comes from a file, which :meth:`resolve_secret` re-reads on every call."""
        return bool(self.client_secret_file)


class LanesConfig(_Section, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Paused lanes and held groups: how they are probed and when they need a human."""

    probe_initial_s: PositiveSeconds = 5.0  # a paused lane is probed at a growing interval between these two
    probe_max_s: PositiveSeconds = 300.0
    needs_human_after: PositiveInt = 10  # failed probes (lane) or hold cycles (group) before `status` says so

    _checks = (_not_below("probe_initial_s", "probe_max_s"),)


class ConcurrencyConfig(_Section, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Limits per external resource (each a trio.CapacityLimiter)."""

    assets: PositiveInt = 64  # asset actors moving at once
    ars_connections: PositiveInt = 16
    copies: PositiveInt = 4  # N-Drive -> local storage copies at once


class RetryConfig(_Section, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Capped exponential back-off with jitter for transient errors."""

    attempts: PositiveInt = 6
    initial_s: PositiveSeconds = 0.5
    max_s: PositiveSeconds = 30.0
    jitter_s: NonNegativeSeconds = 1.0

    _checks = (_not_below("initial_s", "max_s"),)


class IntakeConfig(_Section, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What the N-Drive watcher accepts; an empty list accepts any value (ARS then decides)."""

    institutions: list[Name] = msgspec.field(default_factory=list)
    raw_extensions: list[Name] = msgspec.field(default_factory=lambda: ["dng", "cr3", "cr2", "raf"])


class DaemonConfig(_Section, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Process behaviour."""

    log_format: Literal["auto", "json", "console"] = "auto"  # auto: JSON unless stderr is a TTY
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    admin_poll_s: PositiveSeconds = 0.5  # how often `integration retry` / `ack` requests are picked up
    heartbeat_s: PositiveSeconds = 10.0  # how often each actor writes its heartbeat for `status`
    restart_healthy_after_s: PositiveSeconds = 60.0  # up this long since its last crash: restart back-off afresh


#: The image-module jobs a pipeline may name (hpc_client.modules and the runner that drives them).
JobModule = Literal["asset_loader", "barcode", "ocr", "crop_derivatives", "derivative_upload", "cleanup"]


class JobConfig(_Section, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One pipeline job: the module it runs, what it may use, how long it may take, how often it is retried."""

    module: Annotated[JobModule, _fix('one of the image modules, e.g. module = "barcode"')]
    cpus: PositiveInt = 1
    memory_mb: PositiveInt = 2048
    time_limit_s: PositiveSeconds = 1800.0  # the executor stops the job after this
    timeout_s: PositiveSeconds = 3600.0  # no news this long: the watchdog reconciles it with the executor
    retries: NonNegativeInt = 2  # further attempts after the first, on failure or loss

    _checks = (_not_below("time_limit_s", "timeout_s"),)


def _job(module: str, **resources: Any) -> JobConfig:
    return JobConfig(module=module, **resources)  # type: ignore[arg-type]


def _default_jobs() -> dict[str, JobConfig]:
    """The jobs of the seeds' pipelines (PIPEHERB0001, PIPEPIOF0001), with resources measured in issue 6."""
    return {
        "asset_loader": _job("asset_loader", memory_mb=512, time_limit_s=900.0, timeout_s=1200.0),
        "barcode": _job("barcode", memory_mb=2048, time_limit_s=600.0, timeout_s=900.0),
        "ocr": _job("ocr", memory_mb=2048, time_limit_s=900.0, timeout_s=1200.0),
        "crop_derivatives": _job("crop_derivatives", memory_mb=4096, time_limit_s=900.0, timeout_s=1200.0),
        "derivative_upload": _job("derivative_upload", memory_mb=512, time_limit_s=900.0, timeout_s=1200.0),
        "cleanup": _job("cleanup", memory_mb=256, time_limit_s=300.0, timeout_s=600.0, retries=5),
    }


class ExecutorConfig(_Section, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Where jobs run, and the most one job may ask of it."""

    kind: Literal["local", "none"] = "local"  # local: subprocesses on this machine; none: no processing (archive only)
    max_cpus: PositiveInt = 2
    max_memory_mb: PositiveInt = 8192
    max_time_limit_s: PositiveSeconds = 7200.0
    parallel_jobs: PositiveInt = 2
    #: the job runner's command, before its arguments; empty: this Python's ``-m integration hpc run``. A site may
    #: wrap it (a container: ["apptainer", "exec", "/opt/img.sif", "integration", "hpc", "run"]).
    runner: list[Name] = msgspec.field(default_factory=list)


class ApiConfig(_Section, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The daemon's HTTP API: job callbacks, the original cluster endpoints, /health and /metrics."""

    host: Annotated[str, msgspec.Meta(min_length=1), _fix('an address to listen on, e.g. host = "127.0.0.1"')] = (
        "127.0.0.1"
    )
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8470  # 0: any free port (tests, the demo)
    public_url: Annotated[str, msgspec.Meta(pattern=r"^(https?://[^/\s]+.*)?$"), _fix("the URL nodes reach us at")] = ""
    # name -> file holding that caller's bearer token (a cluster, an agent, an operator); never in the TOML
    token_files: dict[Name, AbsolutePath] = msgspec.field(default_factory=dict)
    max_body_bytes: PositiveInt = 1_048_576  # a larger callback body is refused with 413


class ProcessingConfig(_Section, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Processing on the HPC side: where jobs work, the lane-wide limits, where the digitisers' reports go."""

    work_root: Annotated[OptionalAbsolutePath, _fix("an absolute path for the jobs' working folders")] = ""
    report_root: Annotated[OptionalAbsolutePath, _fix("an absolute path for the per-workstation reports")] = ""
    max_open_share_mb: PositiveInt = 200_000  # megabytes of re-opened shares at once (allocation)
    max_assets_on_hpc: PositiveInt = 500  # assets with an open share or running jobs at once
    max_derivative_mb: PositiveInt = 100_000  # megabytes of derivatives registered and not yet synchronised
    derivative_poll_s: PositiveSeconds = 5.0  # how often a syncing derivative's ERDA status is asked
    preparation_type: Name = "sheet"  # the preparation type of the specimens barcodes create in ARS (E3)
    #: barcode job subject -> ARS asset_subject ("" keeps ARS's subject unset and records it as a tag)
    subjects: dict[str, str] = msgspec.field(
        default_factory=lambda: {"specimen": "specimen", "label": "label", "device target": "", "folder": "folder"}
    )

    def work_dir(self, storage_root: str) -> Path:
        """The jobs' working root (default: ``<storage.root>/hpc-work``)."""
        return Path(self.work_root or f"{storage_root.rstrip('/')}/hpc-work")

    def report_dir(self, storage_root: str, workstation: str) -> Path:
        """The report folder of ``workstation`` (default: ``<storage.root>/reports/<workstation>``)."""
        return Path(self.report_root or f"{storage_root.rstrip('/')}/reports") / workstation


class PipelineConfig(_Section, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A pipeline: job groups run in order; jobs inside one group may run in parallel."""

    jobs: Annotated[
        list[Annotated[list[JobName], msgspec.Meta(min_length=1), _fix("each job group lists at least one job")]],
        msgspec.Meta(min_length=1),
        _fix('at least one job group, e.g. jobs = [["asset_loader"], ["barcode"]]'),
    ]

    _checks = (_each_job_once,)


class Config(_Section, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The whole configuration file."""

    ndrive: Annotated[NdriveConfig, _fix('an [ndrive] table with root = "/mnt/ndrive" and workstations = [...]')]
    storage: Annotated[StorageConfig, _fix("a [storage] table with root and database")]
    ars: Annotated[ArsConfig, _fix("an [ars] table with base_url, token_url and client_id")]
    pipelines: Annotated[
        dict[str, PipelineConfig],
        msgspec.Meta(min_length=1),
        _fix('a table per pipeline, e.g. [pipelines.PIPEHERB0001] jobs = [["asset_loader"], ["barcode"]]'),
    ]
    jobs: dict[JobName, JobConfig] = msgspec.field(default_factory=_default_jobs)
    executor: ExecutorConfig = msgspec.field(default_factory=ExecutorConfig)
    api: ApiConfig = msgspec.field(default_factory=ApiConfig)
    processing: ProcessingConfig = msgspec.field(default_factory=ProcessingConfig)
    concurrency: ConcurrencyConfig = msgspec.field(default_factory=ConcurrencyConfig)
    retry: RetryConfig = msgspec.field(default_factory=RetryConfig)
    lanes: LanesConfig = msgspec.field(default_factory=LanesConfig)
    intake: IntakeConfig = msgspec.field(default_factory=IntakeConfig)
    daemon: DaemonConfig = msgspec.field(default_factory=DaemonConfig)

    _checks = (_pipeline_jobs_known, _jobs_fit_executor)


# --- Loading -----------------------------------------------------------------------------------------------


def load_config(path: Path) -> Config:
    """Read and validate ``path``; raises :class:`ConfigError` listing every problem (fix the file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "<config>") -> Config:
    """Validate TOML ``text``; raises :class:`ConfigError` listing every problem (fix the file)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    problems: list[str] = []
    config = _check_section(Config, Config, data, "", problems)
    if problems or not isinstance(config, Config):
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems=problems)
    return config


def config_warnings(config: Config) -> list[str]:
    """What lets the daemon start but will hamper it, each with its key path; reads the disk and environment.

    These are: a missing N-Drive root or workstation folder (nothing arrives from it until it appears), a
    secret file that cannot be read or is empty, an unset secret variable, and an API token file that cannot be
    read. Fix them before ``integration run``.
    """
    warnings: list[str] = []
    root = Path(config.ndrive.root)
    if not root.is_dir():
        warnings.append(f"ndrive.root: {config.ndrive.root!r} is not a directory (not mounted?)")
    else:
        warnings.extend(
            f"ndrive.workstations: {str(root / name)!r} is not a directory; nothing arrives from {name!r}"
            for name in config.ndrive.workstations
            if not (root / name).is_dir()
        )
    warnings.extend(_secret_warnings(config.ars))
    warnings.extend(
        f"api.token_files.{name}: {path!r} cannot be read: `integration run` refuses to start without it"
        for name, path in config.api.token_files.items()
        if not os.access(path, os.R_OK)
    )
    return warnings


def _secret_warnings(ars: ArsConfig) -> Iterator[str]:
    """Why :meth:`ArsConfig.resolve_secret` would not give a secret here and now."""
    if ars.client_secret_file:
        try:
            secret = ars.resolve_secret()
        except OSError as exc:
            yield f"ars.client_secret_file: cannot read {ars.client_secret_file!r}: {exc.strerror}"
        except ConfigError as exc:
            yield str(exc)
        else:
            if not secret:
                yield f"ars.client_secret_file: {ars.client_secret_file!r} is empty"
        return
    env_set = bool(ars.client_secret_env and os.environ.get(ars.client_secret_env))
    if not env_set and not (ars.client_secret and ars.allow_plaintext_secret):
        yield (
            f"ars.client_secret_env: the environment variable {ars.client_secret_env!r} is not set here; "
            "`integration run` needs it (or set ars.client_secret_file)"
        )


# --- The walker: every problem, with its dotted path ------------------------------------------------------


class _Skip(Exception):
    """A cross-field check needs a field that is wrong (and already reported): skip the check."""


class _Partial:
    """The right fields of a table that has wrong ones; reading a wrong field raises :class:`_Skip`."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise _Skip(name) from None


def _check_section(cls: type[_Section], tp: Any, data: Any, path: str, problems: list[str]) -> _Section | None:
    """Record every problem of table ``data`` against ``cls``, its cross-field checks included.

    Returns the decoded table when it has no problem, else None.
    """
    if not isinstance(data, dict):
        problems.append(_problem(path or "the top level", f"expected a table, found {_found(data)}", tp))
        return None
    before = len(problems)
    fields = {field.name: field for field in msgspec.structs.fields(cls)}
    prefix = f"{path}." if path else ""
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            problems.append(f"{prefix}{key}: unknown key" + (f" (did you mean {close[0]!r}?)" if close else ""))
    right: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in data:
            if field.required:
                problems.append(_problem(prefix + name, "missing", field.type))
            else:
                right[name] = field.default_factory() if field.default is msgspec.NODEFAULT else field.default
        elif _value_is_right(field.type, data[name], prefix + name, problems):
            right[name] = data[name]  # raw, but of the right type: what a cross-field check compares
    section = _decode(cls, data, path, problems) if len(problems) == before else None
    for check in cls._checks:
        try:
            found = list(check(section if section is not None else _Partial(right)))
        except _Skip:
            continue
        problems.extend(_problem(prefix + name, what, fields[name].type) for name, what in found)
    return section if len(problems) == before else None


def _value_is_right(tp: Any, value: Any, path: str, problems: list[str]) -> bool:
    """Check one field's value; True when it added no problem."""
    before = len(problems)
    _check_value(tp, value, path, problems)
    return len(problems) == before


def _decode(cls: type[_Section], data: dict[str, Any], path: str, problems: list[str]) -> _Section | None:
    """``data`` as a ``cls``; a constraint the walker does not know is reported in msgspec's own words."""
    try:
        return msgspec.convert(data, cls)
    except msgspec.ValidationError as exc:
        problems.append(f"{path or 'the top level'}: {exc}")
        return None


def _check_value(tp: Any, value: Any, path: str, problems: list[str]) -> None:
    """Record the problems of one value: wrong type, violated constraint, and those of its items."""
    bare = _bare(tp)
    origin = typing.get_origin(bare)
    if isinstance(bare, type) and issubclass(bare, _Section):
        _check_section(bare, tp, value, path, problems)
    elif origin is Literal:
        if value not in typing.get_args(bare):
            problems.append(_problem(path, f"must be one of {_type_name(bare)}, found {value!r}", tp))
    elif origin in (list, dict):
        if not isinstance(value, origin):
            problems.append(_problem(path, f"expected {_type_name(bare)}, found {_found(value)}", tp))
            return
        _check_constraints(tp, value, path, problems)
        if isinstance(value, dict):
            for key, item in value.items():
                _check_value(typing.get_args(bare)[1], item, f"{path}.{key}", problems)
        else:
            for index, item in enumerate(value):
                _check_value(typing.get_args(bare)[0], item, f"{path}[{index}]", problems)
    else:
        try:
            msgspec.convert(value, bare)
        except msgspec.ValidationError:
            problems.append(_problem(path, f"expected {_type_name(bare)}, found {_found(value)}", tp))
            return
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(_problem(path, f"must be a finite number, found {value!r}", tp))
            return
        _check_constraints(tp, value, path, problems)


_BOUNDS: tuple[tuple[str, str, Callable[[Any, Any], bool]], ...] = (
    ("gt", ">", operator.gt),
    ("ge", ">=", operator.ge),
    ("lt", "<", operator.lt),
    ("le", "<=", operator.le),
)


def _violation(meta: msgspec.Meta, value: Any) -> str | None:
    """The first constraint of ``meta`` that ``value`` (already of the right type) breaks, in words."""
    for attr, sign, holds in _BOUNDS:
        bound = getattr(meta, attr)
        if bound is not None and not holds(value, bound):
            return f"must be {sign} {bound}, found {value!r}"
    if meta.min_length is not None and len(value) < meta.min_length:
        return "must not be empty" if meta.min_length == 1 else f"needs at least {meta.min_length}, found {len(value)}"
    if meta.max_length is not None and len(value) > meta.max_length:
        return f"may have at most {meta.max_length}, found {len(value)}"
    if meta.pattern is not None and not re.search(meta.pattern, value):
        return f"{value!r} is not {(meta.extra or {}).get('expected', f'matching {meta.pattern!r}')}"
    return None


def _check_constraints(tp: Any, value: Any, path: str, problems: list[str]) -> None:
    """Record the first constraint of ``tp``'s annotations that ``value`` breaks, with the type's notes."""
    for meta in _metas(tp):
        what = _violation(meta, value)
        if what:
            notes = "".join(f" ({note})" for note in _extra(tp, "note"))
            problems.append(_problem(path, what + notes, tp))
            return


def _problem(path: str, what: str, tp: Any) -> str:
    """One report line: the key path, what is wrong, and the field's fix hint if it has one."""
    hints = _extra(tp, "hint")
    return f"{path}: {what}" + (f" (fix: {'; '.join(hints)})" if hints else "")


def _metas(tp: Any) -> list[msgspec.Meta]:
    """The ``Meta`` annotations of ``tp`` (nested ``Annotated`` are already flattened by Python)."""
    if typing.get_origin(tp) is Annotated:
        return [meta for meta in typing.get_args(tp)[1:] if isinstance(meta, msgspec.Meta)]
    return []


def _extra(tp: Any, key: str) -> list[str]:
    """The ``extra[key]`` texts of ``tp``'s annotations, outermost type first."""
    return [str(meta.extra[key]) for meta in _metas(tp) if meta.extra and key in meta.extra]


def _bare(tp: Any) -> Any:
    """``tp`` without its ``Annotated`` wrapper."""
    return typing.get_args(tp)[0] if typing.get_origin(tp) is Annotated else tp


def _found(value: Any) -> str:
    """How a wrong value is shown: its TOML-ish type, and the value itself when it is short."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "list"
    return f"{type(value).__name__} {value!r}"


def _type_name(tp: Any) -> str:
    """A readable name of an expected type, without annotations: ``list[str]``, ``'a', 'b'``."""
    tp = _bare(tp)
    origin = typing.get_origin(tp)
    if origin is Literal:
        return ", ".join(repr(arg) for arg in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(arg) for arg in typing.get_args(tp))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(arg) for arg in typing.get_args(tp))}]"
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return "a table"
    return getattr(tp, "__name__", str(tp))
