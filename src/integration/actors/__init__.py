"""Actors: trio tasks that glue the pure core (state machines, store) to the adapters.

Each actor is a function (or a small class) taking its dependencies explicitly, with one job each; the
daemon (:func:`run_daemon`) starts them in one nursery under :func:`supervise`, which restarts a crashed one
with back-off. The table of which actor drives which state lives in :mod:`integration.state_machines`.
"""

from integration.actors._admin import (
    AckRequest,
    AckResult,
    RetryRequest,
    RetryResult,
    acknowledge,
    retry_assets,
    run_admin_requests,
)
from integration.actors._asset_actor import DRIVABLE, drive_asset, fail_asset, group_key, quarantine_asset
from integration.actors._daemon import Daemon, StartupCheck, run_daemon
from integration.actors._deps import AssetDeps
from integration.actors._dispatcher import Dispatcher, DispatcherStatistics
from integration.actors._heartbeats import ActorHealth, Heartbeats, run_heartbeat_writer
from integration.actors._lanes import Lane, Lanes, LaneStatistics, run_lane_prober
from integration.actors._signal import Signal
from integration.actors._supervisor import supervise
from integration.actors._sync_poller import SyncPollerStatistics, run_sync_poller
from integration.actors._wake_timer import WakeTimerStatistics, run_wake_timer
from integration.actors._watcher import WatcherStatistics, ndrive_health_probe, run_ndrive_watcher

__all__ = [
    "DRIVABLE",
    "AckRequest",
    "AckResult",
    "ActorHealth",
    "AssetDeps",
    "Daemon",
    "Dispatcher",
    "DispatcherStatistics",
    "Heartbeats",
    "Lane",
    "LaneStatistics",
    "Lanes",
    "RetryRequest",
    "RetryResult",
    "Signal",
    "StartupCheck",
    "SyncPollerStatistics",
    "WakeTimerStatistics",
    "WatcherStatistics",
    "acknowledge",
    "drive_asset",
    "fail_asset",
    "group_key",
    "ndrive_health_probe",
    "quarantine_asset",
    "retry_assets",
    "run_admin_requests",
    "run_daemon",
    "run_heartbeat_writer",
    "run_lane_prober",
    "run_ndrive_watcher",
    "run_sync_poller",
    "run_wake_timer",
    "supervise",
]
