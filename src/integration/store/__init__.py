"""The persistent track: sqlite3 (WAL) owned by one thread, called from trio, with group commit.

``Store.transition`` is the only way an asset's state changes; it writes the state and its event together.
"""

from integration.store._schema import MIGRATIONS, migrate, schema_version
from integration.store._store import (
    AssetRecord,
    EventRecord,
    NewAsset,
    Rejection,
    Store,
    StoredFile,
    open_store,
)
from integration.store._thread import DatabaseThread

__all__ = [
    "MIGRATIONS",
    "AssetRecord",
    "DatabaseThread",
    "EventRecord",
    "NewAsset",
    "Rejection",
    "Store",
    "StoredFile",
    "migrate",
    "open_store",
    "schema_version",
]
