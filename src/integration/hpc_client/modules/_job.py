"""What every image job is given: the asset, its image (and raw sibling), its metadata — as a typed Struct
that the job runner decodes from JSON and the modules' ``run_*`` functions take."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from integration.errors import NodeResourceError

__all__ = ["JobInput", "node_failures"]


class JobInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    guid: str  # the asset's GUID
    image: str  # the path of its image file on this node
    raw: str | None = None  # its raw sibling (DNG, CR3, RAF, ...), if it has one
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)  # the asset's v2_1_0 metadata

    @property
    def image_path(self) -> Path:
        return Path(self.image)

    @property
    def institution(self) -> str | None:
        value = self.metadata.get("institution")
        return value.strip() if isinstance(value, str) and value.strip() else None


@contextlib.contextmanager
def node_failures(what: str) -> Iterator[None]:
    """Running out of memory anywhere in a job is the node's failure (retried), not the asset's."""
    try:
        yield
    except MemoryError as exc:
        raise NodeResourceError(f"{what}: out of memory on this node") from exc
