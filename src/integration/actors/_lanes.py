"""Lanes and group holds: what pauses when a shared resource (or one group of assets) gets a site-wide "no".

A :class:`Lane` is one resource every asset needs (``ars``, ``intake``, ``storage``); a *hold* is a lane for
one group of assets (a workstation out of service, an unknown collection). When one is closed, the assets that
need it wait in the store (a wake-up of kind ``wait`` naming it), holding no actor slot. It is *probed* at a
growing interval (``lanes.probe_initial_s`` doubling up to ``lanes.probe_max_s``), either by asking the
resource (``health``) or by letting ONE waiting asset retry its own operation (``asset``: the only probe that
can see DISK_FULL or a group refusal). The first answer that is not the same "no" reopens it and wakes every
waiting asset; a failed probe only moves the next probe further out, so the lane does not flap. After
``lanes.needs_human_after`` failed probes, ``integration status`` says a human must look. Every change is
persisted (``lanes`` table and events), so ``status`` tells the truth right after a restart too.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Literal

import msgspec
import structlog
import trio

from integration.actors._heartbeats import Heartbeats
from integration.actors._signal import Signal
from integration.config import LanesConfig
from integration.errors import InfrastructureError, IntegrationError
from integration.store import LaneRecord, Store

__all__ = ["SITE_LANES", "HealthProbe", "Lane", "LaneStatistics", "Lanes", "run_lane_prober"]

log = structlog.get_logger()

ProbeKind = Literal["health", "asset"]
#: Called when a lane or hold reopens: wake everything that waits for ``name`` (returns how many).
Release = Callable[[str, str], Awaitable[int]]
#: A health probe: returns when the resource answers, raises InfrastructureError (with a reason) when not.
HealthProbe = Callable[[], Awaitable[None]]

#: ``ars``: ARS, its file proxy and Keycloak; ``ars-space``: new share space (creates, shares opened again) —
#: DISK_FULL pauses only this one, so uploads, synchronisation and polling go on and free space;
#: ``intake``: the N-Drive mount; ``storage``: the local disk.
SITE_LANES = ("ars", "ars-space", "intake", "storage", "hpc")
#: How long a health probe's answer is reused when many callers want to confirm the same failure at once.
_CONFIRM_FRESH_S = 2.0
ACTOR = "lane-prober"


async def _answers(check: HealthProbe) -> bool:
    """True when the health probe answers; any failure of it (even an unexpected one) is a "no"."""
    try:
        await check()
    except InfrastructureError:
        return False
    except Exception:  # a probe must never take its caller down; a probe that breaks is a "no"
        log.exception("health_probe_crashed")
        return False
    return True


class LaneStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A frozen snapshot of a lane or hold, for status pages and tests."""

    name: str
    kind: Literal["lane", "group"]
    paused: bool
    reason: str
    since: float
    cycles: int
    next_probe: float | None
    probe_guid: str | None
    pauses: int
    needs_human: bool


class Lane:
    """One lane or group hold: open or closed, and when and how it is probed next."""

    def __init__(
        self,
        name: str,
        *,
        kind: Literal["lane", "group"],
        store: Store,
        config: LanesConfig,
        clock: Callable[[], float],
        release: Release,
        changed: Signal,
    ) -> None:
        self.name = name
        self.kind: Literal["lane", "group"] = kind
        self._store = store
        self._config = config
        self._clock = clock
        self._release = release
        self._changed = changed
        self._open = trio.Event()
        self._open.set()
        self.reason = ""
        self.since = clock()
        self.probe: ProbeKind = "health"
        self.cycles = 0
        self.next_probe: float | None = None
        self.probe_guid: str | None = None
        self.pauses = 0
        self._resumed_at = -math.inf
        self._confirming = trio.Lock()
        self._confirmed: tuple[float, bool] = (-math.inf, True)

    @property
    def paused(self) -> bool:
        """True while the resource (or group) is considered unavailable."""
        return not self._open.is_set()

    @property
    def needs_human(self) -> bool:
        """True once ``lanes.needs_human_after`` probes failed in a row."""
        return self.paused and self.cycles >= self._config.needs_human_after

    def describe(self) -> str:
        """How the lane is named to a human."""
        return f"the {self.name} lane" if self.kind == "lane" else self.name.removeprefix("hold:").replace(":", " ", 1)

    def interval(self, cycles: int) -> float:
        """The wait before the next probe after ``cycles`` failed probes."""
        config = self._config
        return min(config.probe_max_s, config.probe_initial_s * math.pow(2, cycles))

    def admits(self, guid: str) -> bool:
        """Whether asset ``guid`` may use the resource now: the lane is open, or the asset is its probe."""
        return not self.paused or guid == self.probe_guid

    def grant_probe(self, guid: str) -> None:
        """Let ``guid`` through as the probe; if it never reports, the prober tries again one interval later."""
        self.probe_guid = guid
        self.next_probe = self._clock() + self.interval(self.cycles + 1)

    async def pause(self, reason: str, *, probe: ProbeKind, actor: str, probe_guid: str | None = None) -> None:
        """Close the lane (idempotent: a second pause only updates a changed reason)."""
        now = self._clock()
        if self.paused:
            if reason == self.reason:
                return
            self.reason = reason
            await self._save("reason_changed", actor)
            return
        if now - self._resumed_at > self._config.probe_max_s:
            self.cycles = 0  # a long healthy spell: start probing quickly again
        elif self._resumed_at > -math.inf:
            self.cycles += 1  # it reopened too early: the probe that reopened it counts as a failed one
        self._open = trio.Event()
        self.reason, self.since, self.probe, self.probe_guid = reason, now, probe, probe_guid
        self.next_probe = now + self.interval(self.cycles)
        self.pauses += 1
        log.warning("lane_paused", lane=self.name, reason=reason, next_probe_in_s=round(self.next_probe - now, 2))
        await self._save("pause", actor)

    async def probe_failed(self, reason: str, *, actor: str) -> None:
        """A probe got the same "no": wait longer before the next one."""
        if not self.paused:
            return
        self.cycles += 1
        self.reason = reason
        self.next_probe = self._clock() + self.interval(self.cycles)
        log.info("lane_probe_failed", lane=self.name, cycles=self.cycles, reason=reason)
        await self._save("probe_failed", actor)

    async def resume(self, why: str, *, actor: str) -> None:
        """Reopen the lane and wake every asset waiting for it."""
        if not self.paused:
            return
        self._open.set()
        self._resumed_at = self._clock()
        self.reason, self.next_probe, self.probe_guid = "", None, None
        log.info("lane_resumed", lane=self.name, why=why)
        await self._save("resume", actor, note=why)
        woken = await self._release(self.name, f"{self.describe()} is open again: {why}")
        log.info("lane_waiters_released", lane=self.name, assets=woken)

    async def wait_open(self) -> None:
        """Return at once while open; otherwise wait until the lane reopens."""
        await self._open.wait()

    async def confirm_down(self, check: HealthProbe | None) -> bool:
        """Whether the resource is really down: ``check`` (its health probe) fails — or there is none.

        One failing asset is not yet a failing site: an unreadable file, a refused collection, one asset's
        request failing again and again while the resource itself answers, concern that asset only. Many
        callers at once share one probe (answers are reused for a moment).
        """
        if check is None or self.paused:
            return True
        async with self._confirming:
            at, down = self._confirmed
            if self._clock() - at > _CONFIRM_FRESH_S:
                down = not await _answers(check)
                self._confirmed = (self._clock(), down)
            return down

    def restore(self, record: LaneRecord) -> None:
        """Take over the state persisted by an earlier run (the probe is due at once after a restart)."""
        if record.paused:
            self._open = trio.Event()
            self.reason, self.since, self.cycles = record.reason, record.since, record.cycles
            self.probe = "asset" if record.probe == "asset" else "health"
            self.next_probe = self._clock()

    def statistics(self) -> LaneStatistics:
        """A frozen snapshot."""
        return LaneStatistics(
            name=self.name,
            kind=self.kind,
            paused=self.paused,
            reason=self.reason,
            since=self.since,
            cycles=self.cycles,
            next_probe=self.next_probe,
            probe_guid=self.probe_guid,
            pauses=self.pauses,
            needs_human=self.needs_human,
        )

    async def _save(self, event: str, actor: str, *, note: str = "") -> None:
        self._changed.set()
        record = LaneRecord(
            name=self.name,
            kind=self.kind,
            paused=self.paused,
            reason=self.reason or note,
            since=self.since if self.paused else self._clock(),
            probe=self.probe,
            cycles=self.cycles,
            next_probe=self.next_probe,
        )
        await self._store.lanes.save(record, event=event, actor=actor)


class Lanes:
    """The site lanes and the group holds of one daemon."""

    def __init__(self, *, store: Store, config: LanesConfig, clock: Callable[[], float], release: Release) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._release = release
        self.changed = Signal()
        self.site: dict[str, Lane] = {name: self._new(name, "lane") for name in SITE_LANES}
        self.holds: dict[str, Lane] = {}

    @property
    def ars(self) -> Lane:
        """The ARS lane (ARS, its file proxy and Keycloak)."""
        return self.site["ars"]

    @property
    def intake(self) -> Lane:
        """The N-Drive intake lane."""
        return self.site["intake"]

    @property
    def storage(self) -> Lane:
        """The local storage lane."""
        return self.site["storage"]

    def lane(self, name: str) -> Lane:
        """A site lane or a current hold by name; raises KeyError for an unknown one."""
        return self.site.get(name) or self.holds[name]

    def all(self) -> list[Lane]:
        """Every lane and hold."""
        return [*self.site.values(), *self.holds.values()]

    def probing(self, guid: str) -> list[Lane]:
        """The closed lanes and holds whose probe is asset ``guid``."""
        return [lane for lane in self.all() if lane.paused and lane.probe_guid == guid]

    def blocking(self, guid: str, lanes: Iterable[str], hold_keys: Iterable[str]) -> Lane | None:
        """The first closed site lane of ``lanes`` or held group of ``hold_keys`` that ``guid`` may not pass."""
        for name in lanes:
            lane = self.site[name]
            if not lane.admits(guid):
                return lane
        for key in hold_keys:
            hold = self.holds.get(key)
            if hold is not None and not hold.admits(guid):
                return hold
        return None

    async def hold(self, key: str, reason: str, *, probe_guid: str, actor: str) -> Lane:
        """Hold group ``key`` (``hold:<kind>:<value>``) with ``reason``; the asset ``probe_guid`` probes it."""
        hold = self.holds.get(key)
        if hold is None:
            hold = self.holds[key] = self._new(key, "group")
        await hold.pause(reason, probe="asset", actor=actor, probe_guid=probe_guid)
        return hold

    async def resume(self, lane: Lane, why: str, *, actor: str) -> None:
        """Reopen ``lane``; a group hold is forgotten once it is open."""
        await lane.resume(why, actor=actor)
        if lane.kind == "group" and self.holds.get(lane.name) is lane:
            del self.holds[lane.name]
            await self._store.lanes.delete(lane.name)

    async def restore(self) -> None:
        """Take over the lanes and holds persisted by an earlier run."""
        for record in await self._store.lanes.all():
            if record.kind == "group":
                if record.paused:
                    self.holds[record.name] = self._new(record.name, "group")
                    self.holds[record.name].restore(record)
            elif record.name in self.site:
                self.site[record.name].restore(record)
        self.changed.set()

    def paused_names(self) -> list[str]:
        """Names of the closed lanes and holds."""
        return [lane.name for lane in self.all() if lane.paused]

    def _new(self, name: str, kind: Literal["lane", "group"]) -> Lane:
        return Lane(
            name,
            kind=kind,
            store=self._store,
            config=self._config,
            clock=self._clock,
            release=self._release,
            changed=self.changed,
        )


async def run_lane_prober(
    *,
    lanes: Lanes,
    health: Mapping[str, HealthProbe],
    store: Store,
    wake: Callable[[str, str], Awaitable[None]],
    heartbeats: Heartbeats,
    clock: Callable[[], float],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run forever: probe each closed lane or hold when its probe is due, sleeping until the next one.

    ``wake(guid, reason)`` hands a waiting asset to the dispatcher now (to be the probe).
    """
    task_status.started()
    while True:
        heartbeats.beat(ACTOR)
        now = clock()
        for lane in [lane for lane in lanes.all() if lane.paused and (lane.next_probe or math.inf) <= now]:
            await _probe(lane, lanes=lanes, health=health, store=store, wake=wake)
        upcoming = [lane.next_probe for lane in lanes.all() if lane.paused and lane.next_probe is not None]
        await lanes.changed.wait(min(upcoming) - clock() if upcoming else math.inf)


async def _probe_candidate(lane: Lane, store: Store) -> str | None:
    """The asset to probe ``lane`` with: its last probe if it still waits for it, else the longest waiting one."""
    if lane.probe_guid is not None:
        record = await store.assets.get(lane.probe_guid)
        if record is not None and record.wake is not None and record.wake.lane == lane.name:
            return lane.probe_guid
    waiting = await store.wakeups.waiting(lane.name, limit=1)
    return waiting[0] if waiting else None


async def _probe(
    lane: Lane,
    *,
    lanes: Lanes,
    health: Mapping[str, HealthProbe],
    store: Store,
    wake: Callable[[str, str], Awaitable[None]],
) -> None:
    if lane.probe == "asset" or lane.kind == "group":
        candidate = await _probe_candidate(lane, store)
        if candidate is not None:
            lane.grant_probe(candidate)
            log.info("lane_probe_granted", lane=lane.name, asset_guid=candidate)
            await wake(candidate, f"probing {lane.describe()}")
            return
        if lane.name not in health:
            await lanes.resume(lane, "no asset waits for it any more", actor=ACTOR)
            return
    check = health.get(lane.name)
    if check is None:
        await lanes.resume(lane, "nothing left to probe it with", actor=ACTOR)
        return
    try:
        await check()
    except InfrastructureError as exc:
        await lane.probe_failed(exc.reason, actor=ACTOR)
    except IntegrationError as exc:  # a different answer than "down": the site-wide cause is gone
        await lanes.resume(lane, f"the probe got another answer ({exc})", actor=ACTOR)
    except Exception as exc:  # a probe must never crash the prober; count it as a failed probe
        log.exception("lane_probe_crashed", lane=lane.name)
        await lane.probe_failed(
            f"{lane.reason} (the last probe failed unexpectedly: {type(exc).__name__})", actor=ACTOR
        )
    else:
        await lanes.resume(lane, "the probe got an answer", actor=ACTOR)
