"""What the daemon runs for processing besides the asset actors: the local executor, the job command, the
callback token its jobs use, and the HTTP API with /health and /metrics."""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from integration.actors._heartbeats import Heartbeats
from integration.actors._lanes import Lanes
from integration.adapters._atomic import write_atomically
from integration.adapters.executors import JobSpec
from integration.api import JobCallbacks
from integration.config import Config
from integration.state_machines import AssetState, JobState
from integration.store import JobRecord, Store

__all__ = ["JobCommand", "Metrics", "health_document", "metrics_text", "on_job_exit", "prepare_local_credentials"]

#: An actor whose heartbeat is older than this many heartbeat intervals counts as stuck in /health.
_STALE_BEATS = 6


def _private_file(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable by this user only, from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text.encode(), mode=0o600)
    return path


def prepare_local_credentials(config: Config, ars_secret: str, work_root: Path) -> tuple[str, Path, Path]:
    """A fresh callback token for this daemon's local jobs (and its file), and the ARS secret file they use."""
    token = secrets.token_urlsafe(32)
    token_file = _private_file(work_root / ".callback-token", token)
    configured = config.ars.client_secret_file
    secret_file = Path(configured) if configured else _private_file(work_root / ".ars-secret", ars_secret)
    return token, token_file, secret_file


class JobCommand(msgspec.Struct, frozen=True, kw_only=True):
    """Builds the runner's command line for one attempt of one job (``integration hpc run``)."""

    config: Config
    server: str
    token_file: Path
    secret_file: Path
    assets_root: Path

    def __call__(self, job: JobRecord) -> JobSpec:
        settings = self.config.jobs[job.job]
        runner = self.config.executor.runner or [sys.executable, "-m", "integration", "hpc", "run"]
        argv = [*runner, job.module, "--job-key", job.key,
                "--server", self.server, "--token-file", str(self.token_file), "--work-root", str(self.assets_root),
                "--ars-secret-file", str(self.secret_file)]  # fmt: skip
        return JobSpec(
            key=job.key,
            argv=argv,
            cpus=settings.cpus,
            memory_mb=settings.memory_mb,
            time_limit_s=settings.time_limit_s,
            env={"OMP_THREAD_LIMIT": str(settings.cpus)},
        )


async def health_document(
    *, store: Store, lanes: Lanes, heartbeats: Heartbeats, config: Config
) -> tuple[bool, dict[str, Any]]:
    now = time.time()
    stale_after = config.daemon.heartbeat_s * _STALE_BEATS
    actors = {
        name: {
            "beat_s_ago": round(now - beat, 1),
            "restarts": restarts,
            "last_error": error,
            "stale": now - beat > stale_after,
        }
        for name, beat, restarts, error, _ in heartbeats.snapshot()
    }
    lane_view = {
        lane.name: {
            "paused": lane.paused,
            "reason": lane.reason if lane.paused else "",
            "needs_human": lane.needs_human,
        }
        for lane in lanes.all()
    }
    store_ok = store.ended is None
    healthy = store_ok and not any(a["stale"] for a in actors.values())
    return healthy, {"alive": True, "healthy": healthy, "store": "ok" if store_ok else store.ended,
                     "lanes": lane_view, "actors": actors}  # fmt: skip


class Metrics:
    """Prometheus gauges filled from the store on each scrape (nothing to drift)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.assets = Gauge("integration_assets", "Assets by state", ["state"], registry=self.registry)
        self.jobs = Gauge("integration_jobs", "Processing jobs by state", ["state"], registry=self.registry)
        self.lanes = Gauge("integration_lane_paused", "1 while a lane is paused", ["lane"], registry=self.registry)
        self.callbacks = Gauge("integration_callbacks", "Job callbacks answered", ["outcome"], registry=self.registry)


async def metrics_text(metrics: Metrics, *, store: Store, lanes: Lanes, callbacks: JobCallbacks) -> bytes:
    assets = await store.assets.counts_by_state()
    for asset_state in AssetState:  # every state, so one that emptied reads 0 (not its last count)
        metrics.assets.labels(state=asset_state.value).set(assets.get(asset_state.value, 0))
    jobs = await store.jobs.counts()
    for job_state in JobState:
        metrics.jobs.labels(state=job_state.value).set(jobs.get(job_state.value, 0))
    for lane in lanes.all():
        metrics.lanes.labels(lane=lane.name).set(1 if lane.paused else 0)
    metrics.callbacks.labels(outcome="applied").set(callbacks.applied)
    metrics.callbacks.labels(outcome="stale").set(callbacks.stale)
    result: bytes = generate_latest(metrics.registry)
    return result


def on_job_exit(wake: Callable[[str], None]) -> Callable[[str], None]:
    """The executor's exit hook: the asset of the job's key is woken (the key ends in -<job>-<attempt>)."""

    def hook(key: str) -> None:
        wake(key.rsplit("-", 2)[0])

    return hook
