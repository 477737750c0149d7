"""The emulator object: one in-memory ARS + file proxy + Keycloak, with files on disk.

:class:`ArsEmulator` is what tests and the server hold; the HTTP routes work on its :attr:`~ArsEmulator.core`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from integration.emulators.ars._erda import TickResult, erda_tick
from integration.emulators.ars._model import Core, EmulatorStats
from integration.emulators.ars._settings import EmulatorSettings, FaultSettings
from integration.errors import ConfigError

__all__ = ["ArsEmulator"]


class ArsEmulator:
    """An emulated ARS (E3), file proxy and Keycloak token endpoint.

    Build it with :func:`create_app` to get its Starlette app, or serve it with :func:`serve_ars_emulator`.
    Everything here is synchronous and cheap; call it from the trio thread that serves the app.
    """

    def __init__(self, settings: EmulatorSettings | None = None) -> None:
        self.core = Core(settings or EmulatorSettings())

    @property
    def settings(self) -> EmulatorSettings:
        """The settings the emulator was built with."""
        return self.core.settings

    @property
    def faults(self) -> FaultSettings:
        """The faults in force now (count knobs go down as they fire)."""
        return self.core.faults

    @property
    def data_dir(self) -> Path:
        """The folder holding ``shares/``, ``erda/`` and ``tmp/``."""
        return self.core.storage.root

    def update_faults(self, changes: Mapping[str, Any]) -> FaultSettings:
        """Change some fault knobs; the others keep their value. Raises ConfigError on unknown/bad fields."""
        merged = {**msgspec.structs.asdict(self.core.faults), **changes}
        try:
            self.core.faults = msgspec.convert(merged, FaultSettings)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"faults: {exc}") from exc
        return self.core.faults

    def erda_tick(self) -> TickResult:
        """Run the ERDA sync job once over every queued share (what the server's ticker does)."""
        return erda_tick(self.core)

    def stats(self) -> EmulatorStats:
        """A frozen snapshot of the counters."""
        counters = self.core.counters
        values = msgspec.structs.asdict(counters)
        values["creates_committed_by_guid"] = dict(counters.creates_committed_by_guid)
        return EmulatorStats(**values)

    def issue_token(self, *, now: float | None = None, client_id: str | None = None) -> str:
        """A valid bearer token of ``client_id`` (default: the pipeline's client), issued at ``now`` (default: now).

        Pass ``settings.admin_client_id`` for a ``dassco-admin`` token. Raises KeyError for an unknown client id.
        """
        return self.core.issuer.issue(client_id or self.core.settings.client_id, now=now)

    def internal_status(self, guid: str) -> str | None:
        """The internal status of ``guid``, or None if the asset does not exist."""
        entry = self.core.assets.get(guid)
        return None if entry is None else str(entry.record["internal_status"])

    def erda_path(self, guid: str, name: str) -> Path:
        """Where the synced file ``name`` of asset ``guid`` lives; raises KeyError for an unknown asset."""
        record = self.core.assets[guid].record
        return self.core.storage.erda_dir(record["institution"], record["collection"], guid) / name

    def share_path(self, guid: str, name: str) -> Path:
        """Where file ``name`` of the open share of ``guid`` lives; raises KeyError if no share is open."""
        share = self.core.shares[guid]
        return self.core.storage.share_dir(share.institution, share.collection, guid) / name

    def state(self) -> dict[str, Any]:
        """What ``GET /_emulator/state`` answers: faults, counters and sizes."""
        return {
            "faults": msgspec.to_builtins(self.core.faults),
            "stats": msgspec.to_builtins(self.stats()),
            "assets": len(self.core.assets),
            "open_shares": len(self.core.shares),
            "queued_shares": len(self.core.queue),
            "allocated_mb": self.core.allocated_mb,
            "data_dir": str(self.data_dir),
        }
