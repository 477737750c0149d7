"""Settings of the ARS emulator: seeded reference data, limits, and the fault-injection knobs.

Every field has a documented default, so ``EmulatorSettings()`` is a working emulator with the reference data
the DaSSCo SDK tests assume (``test-institution`` / ``test-collection`` / ``test-pipeline`` /
``test-workstation``). A TOML file holds the same fields; :func:`load_settings` reads it and applies overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import msgspec

from integration.emulators.ars._roles import SERVICE
from integration.errors import ConfigError

__all__ = ["EmulatorSettings", "FaultSettings", "InstitutionSettings", "load_settings"]

Rate = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0.0)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
PosInt = Annotated[int, msgspec.Meta(ge=1)]


class FaultSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Fault-injection knobs; all off by default. Changeable at run time through ``PUT /_emulator/faults``."""

    latency_ms: NonNegFloat = 0.0
    """Added (with ``trio.sleep``) to every request except ``/_emulator/*``."""
    error_rate: Rate = 0.0
    """Fraction of ARS / file-proxy requests answered 503 before anything is done."""
    timeout_rate: Rate = 0.0
    """Fraction of ARS / file-proxy requests that hang ``timeout_hang_s`` and then answer 504, doing nothing."""
    timeout_hang_s: NonNegFloat = 30.0
    """How long a request picked by ``timeout_rate`` hangs."""
    disk_full: bool = False
    """The share disk is full: create asset, createShare and a growing changeAllocation answer ``DISK_FULL``
    (create: 403 with the asset body, nothing stored) and every HttpInfo reports ``remaining_storage_mb`` 0."""
    erda_fail_next: NonNegInt = 0
    """The next N ERDA sync jobs fail; after ``max_erda_attempts`` failed jobs the asset is ``ERDA_FAILED``."""
    stuck_asset_received: bool = False
    """Queued shares are never processed: the asset stays ``ASSET_RECEIVED`` with its share open."""
    down: bool = False
    """Every request, the token endpoint and health checks included, answers 503."""
    drop_reply_after_create: NonNegInt = 0
    """The next N successful creates are committed but answered 504 (a crash between request and reply)."""
    crc_corrupt_next: NonNegInt = 0
    """The next N uploads are treated as if their bytes arrived corrupted: 507, nothing stored."""
    late_create_commit_next: NonNegInt = 0
    """The next N creates that would succeed register their de-dup entry, wait ``late_create_commit_s`` and only
    then commit and answer: a client with a shorter timeout has gone, yet the asset exists afterwards."""
    late_create_commit_s: NonNegFloat = 5.0
    """How long a create picked by ``late_create_commit_next`` waits before it commits."""
    foreign_update_before_next_put: NonNegInt = 0
    """The next N metadata updates (PUT) are preceded by a curator's update (user ``curator``) that sets the tag
    ``curator_note``: the PUT, built from the record as it was before, replaces it (the race ARS cannot prevent;
    its events show it)."""
    foreign_update_after_next_put: NonNegInt = 0
    """The next N metadata updates are followed by a curator's update built from the record as it was before
    them (plus the tag ``curator_note``): what they wrote is overwritten."""


class InstitutionSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Reference data registered for one institution."""

    collections: tuple[str, ...] = ()
    pipelines: tuple[str, ...] = ()
    workstations: tuple[str, ...] = ()
    """Workstations with status ``IN_SERVICE``."""
    out_of_service_workstations: tuple[str, ...] = ()
    """Workstations with status ``OUT_OF_SERVICE`` (create answers 403)."""


def _default_institutions() -> dict[str, InstitutionSettings]:
    return {
        "test-institution": InstitutionSettings(
            collections=("test-collection",),
            pipelines=("test-pipeline",),
            workstations=("test-workstation",),
            out_of_service_workstations=("test-workstation-2",),
        )
    }


class EmulatorSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Everything the emulator needs; the defaults reproduce the ARS dev seed (spec §3.3)."""

    data_dir: str = ""
    """Where files live (``shares/``, ``erda/``, ``tmp/``); empty = a fresh temporary directory."""
    client_id: str = "integration"
    """The pipeline's client (client-credentials grant); its tokens carry ``client_roles``."""
    client_secret: str = "integration-secret"
    client_roles: tuple[str, ...] = (SERVICE,)
    """Realm roles in the main client's tokens; ``()`` gives tokens with no role (every role-guarded call 403)."""
    admin_client_id: str = "integration-admin"
    """A second client whose tokens carry ``dassco-admin`` (deletes, and the A-only endpoints)."""
    admin_client_secret: str = "integration-admin-secret"
    token_lifetime_s: PosInt = 300
    """``expires_in`` of issued tokens (Keycloak's default is 5 min)."""
    signing_key: str = "ars-emulator-hs256-signing-key"
    """HS256 key of the emulator's JWTs."""
    institutions: dict[str, InstitutionSettings] = msgspec.field(default_factory=_default_institutions)
    statuses: tuple[str, ...] = (
        "WORKING_COPY",
        "ARCHIVE",
        "BEING_PROCESSED",
        "PROCESSING_HALTED",
        "ISSUE_WITH_MEDIA",
        "ISSUE_WITH_METADATA",
        "FOR_DELETION",
    )
    file_formats: tuple[str, ...] = ("TIF", "JPEG", "RAW", "RAF", "CR3", "DNG", "TXT")
    preparation_types: tuple[str, ...] = ("slide", "pinning")
    subjects: tuple[str, ...] = ("folder", "specimen", "label")
    issue_categories: tuple[str, ...] = ("test",)
    """Issue categories (ARS seeds none; a test server has ``test``, and issues need a registered category)."""
    external_publishers: tuple[str, ...] = ()
    create_dedup_s: NonNegFloat = 300.0
    """ARS ``SHARE_CREATION_BLOCKED_SECONDS``: a create that failed after registering blocks its GUID (403)."""
    share_dedup_s: NonNegFloat = 300.0
    """File proxy createShare de-dup: a createShare that threw blocks its GUID for this long (400)."""
    max_erda_attempts: PosInt = 3
    """``SHARE_MAX_ERDA_SYNC_ATTEMPTS``: failed sync jobs before ``ERDA_FAILED``."""
    legacy_completed_status: bool = False
    """Report sync success as ``COMPLETED`` (ARS < 2.3) instead of ``ERDA_SYNCHRONISED``."""
    sync_tick_s: NonNegFloat = 1.0
    """Period of the ERDA sync job when served; 0 disables the ticker (tick by hand)."""
    total_storage_mb: NonNegInt = 90_000
    """Share disk size; allocations beyond what is left answer ``DISK_FULL``."""
    cache_storage_mb: NonNegInt = 200
    share_node_host: str = ""
    """``httpInfo.hostname``; empty = the base URL the request came in on (``http://host:port``)."""
    seed: int = 0
    """Seed of the random draws of ``error_rate`` / ``timeout_rate``."""
    faults: FaultSettings = FaultSettings()
    """Faults active from the start."""

    def __post_init__(self) -> None:
        """Refuse two clients with the same id (a token could not tell which roles it carries)."""
        if self.admin_client_id == self.client_id:
            raise ValueError("admin_client_id must differ from client_id")


def load_settings(
    path: Path | None = None,
    *,
    overrides: Mapping[str, object] | None = None,
    fault_overrides: Mapping[str, object] | None = None,
) -> EmulatorSettings:
    """Read settings from the TOML file ``path`` (if any), then apply ``overrides`` and ``fault_overrides``.

    Override values of ``None`` are skipped, so CLI options that were not given change nothing.
    Raises :class:`~integration.errors.ConfigError` naming the file and the offending key path.
    """
    raw: dict[str, object] = {}
    source = str(path) if path is not None else "<defaults>"
    try:
        if path is not None:
            raw = msgspec.toml.decode(path.read_bytes(), type=dict[str, object])
        raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
        faults = {k: v for k, v in (fault_overrides or {}).items() if v is not None}
        if faults:
            base = raw.get("faults", {})
            if not isinstance(base, dict):
                raise ConfigError(f"{source}: `faults` must be a table")
            raw["faults"] = {**base, **faults}
        return msgspec.convert(raw, EmulatorSettings)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from exc
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(f"{source}: {exc}") from exc
