"""Group commit in the web process: deliveries are checked and recorded in one writer thread, a group at a time.

Every delivery must be on disk before it is answered, and an fsync per delivery caps a burst at
the disk's commit rate. So the deliveries that arrive while a group is being written wait, and
the next group takes them all in one transaction (:meth:`DeliveryIntake.answer_group`). One
delivery alone still commits at once. The event loop only reads bodies (checking their signature
as they stream in) and writes answers; decoding, routing, the transaction and the log lines run
in the writer thread.
"""

from __future__ import annotations

import asyncio
from typing import Final

import anyio
import anyio.to_thread

from reviewbot.service.intake import DeliveryIntake, IntakeAnswer, IntakeRequest
from reviewbot.settings import Settings
from reviewbot.store.store import Store

#: Bounds the time one commit holds the write lock, and so the answer time of the first of a group.
MAX_GROUP: Final = 64


class DeliveryCommitter:
    """Answers each delivery once it is committed, committing the deliveries that wait together."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._intake = DeliveryIntake.from_settings(settings, store)
        self._waiting: list[tuple[IntakeRequest, asyncio.Future[IntakeAnswer]]] = []
        self._writer: asyncio.Task[None] | None = None
        # Its own limiter: a burst must not wait behind the worker's store calls for one of the
        # default limiter's threads.
        self._one_thread = anyio.CapacityLimiter(1)
        self._next_id = 0

    async def accept(self, delivery: str, event: str, body: bytes) -> IntakeAnswer:
        """The answer to a delivery whose signature matched, once it is committed (or refused)."""
        self._next_id += 1
        loop = asyncio.get_running_loop()
        future: asyncio.Future[IntakeAnswer] = loop.create_future()
        self._waiting.append((IntakeRequest(self._next_id, delivery, event, body), future))
        if self._writer is None or self._writer.done():
            # The writer starts after the loop's callbacks in hand, so the deliveries of a burst
            # read together are written together; those read while it writes go in the next group.
            self._writer = loop.create_task(self._write_groups())
        # A client that hangs up cancels its wait, not its delivery: the group still records it.
        return await future

    async def _write_groups(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            requests = [request for request, _ in group]
            try:  # answer_group answers a bug with 500; this is for what it cannot catch
                answers = await anyio.to_thread.run_sync(self._intake.answer_group, requests, limiter=self._one_thread)
            except Exception as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), answer in zip(group, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
