"""Group commit for webhook deliveries: one transaction for all that arrive together.

Every delivery must be on disk before it is answered, and an fsync per delivery caps a burst
at the disk's commit rate. So each delivery waits for the next commit, and each commit takes
everything that queued up while the previous one ran. One delivery alone still commits at once.
"""

from __future__ import annotations

import asyncio

import anyio.to_thread

from reviewbot.store import Delivery, Store

# Bounds the time one commit holds the write lock, and the answer time of the first in a group.
MAX_GROUP = 64


class DeliveryRecorder:
    """Records deliveries durably, in groups, from the event loop."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: list[tuple[Delivery, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, delivery: Delivery) -> bool:
        """True once the delivery (and its job) is committed; False if its id was already known."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((delivery, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="reviewbot-delivery-writer")
        return await future

    async def _write_all(self) -> None:
        while self._pending:
            group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
            try:
                added = await anyio.to_thread.run_sync(self._store.record_deliveries, [item for item, _ in group])
            except Exception as exc:  # each waiting request answers with it (a StoreError → 503)
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(group, added, strict=True):
                if not future.done():
                    future.set_result(result)
