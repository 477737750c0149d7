"""The sharded connection pool: requests spread over small pools and every slot is given back."""

from __future__ import annotations

import httpx
import trio

from daemon_support import ArsServer
from integration.adapters.ars._pool import ShardedTransport


async def test_requests_spread_over_shards_and_slots_are_released(ars: ArsServer) -> None:
    """Concurrent requests use more than one shard; after they finish no shard counts a request in flight."""
    transport = ShardedTransport(connections=8, per_shard=4)
    used: set[int] = set()
    original = transport.handle_async_request

    async def spying(request: httpx.Request) -> httpx.Response:
        used.add(min(range(len(transport._busy)), key=transport._busy.__getitem__))
        return await original(request)

    transport.handle_async_request = spying  # type: ignore[method-assign]
    async with httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{ars.port}") as client:
        statuses: list[int] = []

        async def get() -> None:
            statuses.append((await client.get("/ars/actuator/health")).status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(get)
    assert statuses == [200] * 20
    assert used == {0, 1}
    assert transport._busy == [0, 0]
