"""``integration status``: a one-shot, read-only overview (or one asset), as text or JSON.

It reads the store through a read-only connection (never the write lock), so it can run next to a daemon.
"""

from integration.status._asset import AssetReport, collect_asset, render_asset
from integration.status._render import render_status
from integration.status._report import (
    ActorReport,
    AttentionItem,
    DaemonReport,
    LaneReport,
    StatusReport,
    WaitsReport,
    collect_status,
)

__all__ = [
    "ActorReport",
    "AssetReport",
    "AttentionItem",
    "DaemonReport",
    "LaneReport",
    "StatusReport",
    "WaitsReport",
    "collect_asset",
    "collect_status",
    "render_asset",
    "render_status",
]
