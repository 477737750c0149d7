"""Reference data: institutions, collections, pipelines, workstations, the extendable lists and specimens.

Seeded from :class:`EmulatorSettings`; specimens are added with the E3 specimen API (spec §3.3). Every lookup
is a dict access.
"""

from __future__ import annotations

from typing import Any

import msgspec

from integration.emulators.ars._errors import bad_request, forbidden
from integration.emulators.ars._settings import EmulatorSettings

__all__ = ["ReferenceData", "SpecimenIn"]


class SpecimenIn(msgspec.Struct, kw_only=True):
    """Body of ``PUT …/specimen/{barcode}``; unknown properties are ignored, like Jackson does."""

    institution: str | None = None
    collection: str | None = None
    barcode: str | None = None
    specimen_pid: str | None = None
    preparation_types: list[str] | None = None
    role_restrictions: list[dict[str, Any]] | None = None


class _Institution:
    """The registered names of one institution, each with its numeric id."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.collections: dict[str, int] = {}
        self.pipelines: dict[str, int] = {}
        self.workstations: dict[str, tuple[int, str]] = {}


class ReferenceData:
    """All reference data and specimens of the emulated ARS."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.institutions: dict[str, _Institution] = {}
        next_id = 1
        for name, seed in settings.institutions.items():
            inst = self.institutions[name] = _Institution(name)
            for collection in seed.collections:
                inst.collections[collection] = next_id
                next_id += 1
            for pipeline in seed.pipelines:
                inst.pipelines[pipeline] = next_id
                next_id += 1
            for status, names in (
                ("IN_SERVICE", seed.workstations),
                ("OUT_OF_SERVICE", seed.out_of_service_workstations),
            ):
                for workstation in names:
                    inst.workstations[workstation] = (next_id, status)
                    next_id += 1
        self.lists: dict[str, tuple[str, ...]] = {
            "statuses": settings.statuses,
            "fileformats": settings.file_formats,
            "preparationtypes": settings.preparation_types,
            "issuecategories": settings.issue_categories,
            "externalpublishers": settings.external_publishers,
        }
        self.statuses = frozenset(settings.statuses)
        self.file_formats = frozenset(settings.file_formats)
        self.preparation_types = frozenset(settings.preparation_types)
        self.subjects = frozenset(settings.subjects)
        self.issue_categories = frozenset(settings.issue_categories)
        self.publishers = frozenset(settings.external_publishers)
        self.specimens: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.specimens_by_id: dict[int, dict[str, Any]] = {}

    # -- checks ----------------------------------------------------------------------------------------------

    def require_collection(self, institution: str | None, collection: str | None) -> None:
        """ARS's rights check, which is where an unknown institution or collection surfaces: 403."""
        inst = self.institutions.get(institution or "")
        if inst is None or (collection or "") not in inst.collections:
            raise forbidden(f"Collection {collection} does not exist within institution {institution}")

    def has_pipeline(self, institution: str, pipeline: str | None) -> bool:
        """Whether ``pipeline`` is registered for ``institution``."""
        return (pipeline or "") in self.institutions[institution].pipelines

    def workstation_status(self, institution: str, workstation: str | None) -> str | None:
        """``IN_SERVICE`` / ``OUT_OF_SERVICE``, or None if the workstation is not registered there."""
        entry = self.institutions[institution].workstations.get(workstation or "")
        return None if entry is None else entry[1]

    # -- JSON views ------------------------------------------------------------------------------------------

    def institution_json(self, name: str) -> dict[str, Any] | None:
        """``Institution`` JSON, or None if unknown."""
        return {"name": name, "roleRestrictions": []} if name in self.institutions else None

    def institutions_json(self) -> list[dict[str, Any]]:
        """``[Institution]``."""
        return [{"name": name, "roleRestrictions": []} for name in self.institutions]

    def collections_json(self, institution: str) -> list[dict[str, Any]]:
        """``[Collection]`` of an institution (empty if unknown)."""
        inst = self.institutions.get(institution)
        items = inst.collections.items() if inst else []
        return [{"name": n, "institution": institution, "collection_id": i, "roleRestrictions": []} for n, i in items]

    def pipelines_json(self, institution: str) -> list[dict[str, Any]]:
        """``[Pipeline]`` of an institution (empty if unknown)."""
        inst = self.institutions.get(institution)
        items = inst.pipelines.items() if inst else []
        return [{"name": n, "institution": institution, "pipeline_id": i} for n, i in items]

    def workstations_json(self, institution: str) -> list[dict[str, Any]]:
        """``[Workstation]`` of an institution (empty if unknown)."""
        inst = self.institutions.get(institution)
        items = inst.workstations.items() if inst else []
        return [
            {"name": n, "status": status, "institution_name": institution, "workstation_id": i}
            for n, (i, status) in items
        ]

    # -- specimens -------------------------------------------------------------------------------------------

    def put_specimen(self, institution: str, collection: str, barcode: str, body: SpecimenIn) -> dict[str, Any]:
        """Create or update a specimen (E3 ``PUT …/specimen/{barcode}``); returns the Specimen JSON."""
        if body.barcode is not None and body.barcode != barcode:
            raise bad_request("Barcode in URL must match barcode in body")
        for given, expected in ((body.institution, institution), (body.collection, collection)):
            if given is not None and given != expected:
                raise bad_request("Institution and collection in URL must match the body")
        self.require_collection(institution, collection)
        types = body.preparation_types or []
        if not types:
            raise bad_request("a specimen must have at least one preparation_type")
        for prep in types:
            if prep not in self.preparation_types:
                raise bad_request(f"{prep} is not a valid preparation_type")
        key = (institution, collection, barcode)
        old = self.specimens.get(key)
        specimen_id = old["specimen_id"] if old else len(self.specimens_by_id) + 1
        specimen = {
            "institution": institution,
            "collection": collection,
            "barcode": barcode,
            "specimen_pid": body.specimen_pid or f"{institution}.{collection}.{barcode}",
            "preparation_types": list(dict.fromkeys(types)),
            "specimen_id": specimen_id,
            "role_restrictions": body.role_restrictions or [],
        }
        self.specimens[key] = self.specimens_by_id[specimen_id] = specimen
        return specimen
