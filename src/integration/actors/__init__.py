"""Actors: trio tasks that glue the pure core (state machines, store) to the adapters.

Each actor is a function taking its dependencies explicitly (``run_*``); the supervisor starts them in one
nursery and restarts a crashed one with back-off.
"""

from integration.actors._asset_actor import AssetDeps, drive_asset
from integration.actors._dispatcher import offer_to_dispatcher, run_dispatcher
from integration.actors._lane import Lane, LaneStatistics, run_lane_prober
from integration.actors._scheduler import Scheduler, run_scheduler
from integration.actors._supervisor import Daemon, run_daemon, supervise
from integration.actors._watcher import WatcherStatistics, run_ndrive_watcher

__all__ = [
    "AssetDeps",
    "Daemon",
    "Lane",
    "LaneStatistics",
    "Scheduler",
    "WatcherStatistics",
    "drive_asset",
    "offer_to_dispatcher",
    "run_daemon",
    "run_dispatcher",
    "run_lane_prober",
    "run_ndrive_watcher",
    "run_scheduler",
    "supervise",
]
