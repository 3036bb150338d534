"""Group commit in the web process: deliveries are checked and recorded in one writer thread, a group at a time.

Every delivery must be on disk before it is answered, and an fsync per delivery caps a burst at
the disk's commit rate. So the deliveries that arrive while a group is being written wait, and
the next group takes them all in one transaction (:meth:`DeliveryIntake.answer_group`). One
delivery alone still commits at once. The event loop only reads bodies and writes answers; the
signature check, decoding, routing, the transaction and the log lines run in the writer thread.
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
        self._writing = False
        self._one_thread = anyio.CapacityLimiter(1)
        self._next_id = 0

    async def start(self) -> None:
        """Nothing to start: the writer runs on the anyio worker threads, one group at a time."""

    async def close(self) -> None:
        """Nothing to stop: a group being written finishes, and its requests are answered."""

    async def accept(self, delivery: str, event: str, signature: str | None, body: bytes) -> IntakeAnswer:
        """The answer to a delivery, once it is committed (or refused)."""
        self._next_id += 1
        future: asyncio.Future[IntakeAnswer] = asyncio.get_running_loop().create_future()
        self._waiting.append((IntakeRequest(self._next_id, delivery, event, signature, body), future))
        if not self._writing:
            self._writing = True
            # The first delivery of a burst starts the writing; the loop reads the rest of the
            # burst meanwhile, and they go in the next group.
            asyncio.get_running_loop().create_task(self._write_groups())
        return await asyncio.shield(future)  # a client gone mid-commit must not cancel the group

    async def _write_groups(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
                requests = [request for request, _ in group]
                try:  # answer_group answers a bug with 500; this is for what it cannot catch
                    answers = await anyio.to_thread.run_sync(
                        self._intake.answer_group, requests, limiter=self._one_thread
                    )
                except Exception as exc:
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), answer in zip(group, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
        finally:
            self._writing = False
