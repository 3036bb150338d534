"""uvicorn's HTTP/1.1 protocol (h11), with a deadline on every wait for the client that the app does not bound.

uvicorn times a connection out only while it idles between two requests (``timeout_keep_alive``,
which the first byte of the next request cancels). A connection that never sends a whole request
head, or keeps trickling the rest of a body the app answered without reading, stays open for
ever, holding a socket and its buffers. Here each such wait must end within ``seconds``, or the
connection is closed:

- the head of a request, from the connection's opening or the end of the previous response;
- the rest of a body the app answered early (a refused delivery), which uvicorn reads and drops
  so the client can read the answer.

While the app reads a body it bounds the wait itself, with an answer (408, see
:mod:`reviewbot.service.body`).
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class _DeadlineH11Protocol(H11Protocol):
    seconds: float = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # The usual request arrives whole in one read: its head is in, nothing to time.
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE:
            self._stop_deadline()  # an idle kept-alive connection: uvicorn's keep-alive timeout
        else:
            self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def _waiting_for_client(self) -> bool:
        """Whether the server waits for the client to send what no one else bounds: the rest of
        a request head, or of a body already answered."""
        theirs = self.conn.their_state
        return theirs is h11.IDLE or (theirs is h11.SEND_BODY and self.conn.our_state is h11.DONE)

    def _watch(self) -> None:
        """Start the deadline when such a wait begins; stop it when the wait ends."""
        if not self._waiting_for_client():
            self._stop_deadline()
        elif self._deadline is None and not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.seconds, self._deadline_passed)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self._waiting_for_client() and not self.transport.is_closing():
            self.transport.close()


def deadline_protocol(seconds: float) -> type[H11Protocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``, closing connections that keep the
    server waiting on the client for more than ``seconds`` (outside the app)."""

    class DeadlineH11Protocol(_DeadlineH11Protocol):
        pass

    DeadlineH11Protocol.seconds = seconds
    return DeadlineH11Protocol
