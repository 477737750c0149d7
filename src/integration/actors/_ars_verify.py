"""Whether ARS holds an asset's files in ERDA with the CRC-32s we recorded: the one proof that allows deleting
a local copy or calling a derivative synced."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from integration.adapters.ars import ArsClient

__all__ = ["ErdaCheck", "check_in_erda"]

_SYNCHRONIZED = "SYNCHRONIZED"


class ErdaCheck(msgspec.Struct, frozen=True, kw_only=True):
    synced: bool  # every expected file is there, SYNCHRONIZED, with our CRC-32
    problems: list[str]  # files missing or with other bytes (not "not yet synchronised")
    pending: list[str]  # files there with our CRC-32, not yet synchronised


async def check_in_erda(ars: ArsClient, guid: str, expected: Mapping[str, int]) -> ErdaCheck:
    """Compare what ARS holds for ``guid`` with ``expected`` (file name -> CRC-32)."""
    held = {f.name: f for f in await ars.list_files(guid) if not f.delete_after_sync}
    problems: list[str] = []
    pending: list[str] = []
    for name, crc in sorted(expected.items()):
        found = held.get(name)
        if found is None:
            problems.append(f"{name} is missing in ARS")
        elif found.crc != crc:
            problems.append(f"{name}: ARS holds CRC-32 {found.crc}, we recorded {crc}")
        elif found.sync_status != _SYNCHRONIZED:
            pending.append(name)
    return ErdaCheck(synced=not problems and not pending, problems=problems, pending=pending)
