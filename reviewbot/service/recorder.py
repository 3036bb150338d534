"""The recorder process: webhook deliveries are checked and committed beside the web server's
event loop, in a process of their own, not in a thread that shares its GIL.

Every delivery must be on disk before it is answered. The work that takes (the HMAC over the
body, decoding it, routing, the transaction, the log line: :mod:`reviewbot.service.intake`) is about as
much CPU as the HTTP handling itself. In a thread of the web process, both halves share one GIL,
so they take turns on one core, and each hand-over of the GIL costs both of them more again. In
a child process they run side by side, and the event loop only reads requests, passes bodies
on, and writes answers.

The two talk over a socket pair: the web process (:class:`DeliveryRecorder`) writes each request
as a frame (4-byte length, MessagePack) and answers it when its answer frame comes back. The
child (:func:`main`) reads whatever requests have arrived, answers them as one group (one commit
for all), and reads again: deliveries that arrive while a group commits form the next group.

The child is started with the web server (its lifespan) or at the first delivery, and ends when
its socket closes: when the web process closes it at shutdown, or exits in any way (SIGKILL
included). If the child dies, the deliveries waiting on it are answered 503 (GitHub lists them
as failed, to redeliver) and the next delivery starts a new child. An in-memory database cannot
be shared with a child, so with one the same intake runs in a thread of the web process instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import anyio.to_thread
import msgspec

from reviewbot.errors import ReviewbotError, StoreError
from reviewbot.service.intake import DeliveryIntake, IntakeAnswer, IntakeRequest
from reviewbot.settings import Settings
from reviewbot.store.store import Store

log = logging.getLogger("reviewbot.recorder")

#: Bounds the deliveries in one transaction, and so the wait of the first of them.
MAX_GROUP: Final = 64
#: How long start-up waits for the child to open the store.
START_TIMEOUT_SECONDS: Final = 30.0
#: A child that dies sooner than this after starting is not restarted before this has passed.
RESTART_PAUSE_SECONDS: Final = 1.0
#: How long shutdown waits for the child to finish the group in hand.
STOP_TIMEOUT_SECONDS: Final = 10.0
_LENGTH: Final = 4  # bytes of a frame's length prefix
_READ_SIZE: Final = 1 << 20
_READY: Final = 0  # the id of the child's first answer: the store is open
# -P: only the installed package, never a module of that name in the working directory.
_COMMAND: Final = (sys.executable, "-P", "-m", "reviewbot.service.recorder")

_REQUESTS: Final = msgspec.msgpack.Decoder(IntakeRequest)
_ANSWERS: Final = msgspec.msgpack.Decoder(IntakeAnswer)
_ENCODER: Final = msgspec.msgpack.Encoder()


class RecorderUnavailable(StoreError):
    """The recorder process ended (or cannot start) before answering."""


@dataclass(frozen=True)
class _ChildConfig:
    """The first frame the child reads: what it needs to answer deliveries as the web process would."""

    settings: Settings
    database_url: str


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(_LENGTH, "big") + payload


def _take_frames(buffer: bytearray, limit: int | None = None) -> list[bytes]:
    """The complete frames at the start of ``buffer`` (at most ``limit``), removed from it."""
    frames: list[bytes] = []
    start = 0
    while len(buffer) - start >= _LENGTH and (limit is None or len(frames) < limit):
        end = start + _LENGTH + int.from_bytes(buffer[start : start + _LENGTH], "big")
        if end > len(buffer):
            break
        frames.append(bytes(buffer[start + _LENGTH : end]))
        start = end
    del buffer[:start]
    return frames


# -- the web process's end -------------------------------------------------------------------------


class _Channel(asyncio.Protocol):
    """One child process and the socket to it, seen from the event loop."""

    def __init__(self, process: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self.process = process
        self.loop = loop
        self.started = time.monotonic()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.pending: dict[int, asyncio.Future[IntakeAnswer]] = {}
        self.transport: asyncio.Transport | None = None
        self.closed = False  # no more requests: the socket is closed, or closing
        self.stopping = False  # close() was called: it reaps the child
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        for payload in _take_frames(self._buffer):
            answer = _ANSWERS.decode(payload)
            if answer.id == _READY:
                if not self.ready.done():
                    self.ready.set_result(None)
                continue
            future = self.pending.pop(answer.id, None)
            if future is not None and not future.done():  # else its request was cancelled
                future.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = RecorderUnavailable("the recorder process ended")
        if not self.ready.done():
            self.ready.set_exception(error)
            self.ready.exception()  # retrieved: nobody may be waiting for it
        for future in self.pending.values():
            if not future.done():
                future.set_exception(error)
        self.pending.clear()
        if not self.lost.done():
            self.lost.set_result(None)
        if not self.stopping:  # it ended of itself: collect its exit status, and say so
            with contextlib.suppress(RuntimeError):  # the loop is shutting down: nobody to tell
                self.loop.run_in_executor(None, _reap, self.process, STOP_TIMEOUT_SECONDS)

    def send(self, request_id: int, payload: bytes) -> asyncio.Future[IntakeAnswer]:
        future: asyncio.Future[IntakeAnswer] = self.loop.create_future()
        if self.closed or self.transport is None:
            future.set_exception(RecorderUnavailable("the recorder process ended"))
            return future
        self.pending[request_id] = future
        self.transport.write(_frame(payload))
        return future

    async def stop(self) -> None:
        """Half-close the socket: the child answers what it was sent, sees the end, and exits;
        wait for that (killing it if it takes too long) and reap it."""
        self.stopping = True
        self.closed = True
        transport = self.transport
        if transport is not None and not self.lost.done():
            transport.write_eof()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.lost), STOP_TIMEOUT_SECONDS)
            transport.close()
        await asyncio.to_thread(_reap, self.process, STOP_TIMEOUT_SECONDS)


class DeliveryRecorder:
    """Checks, records and answers deliveries in the recorder process, for the event loop."""

    def __init__(self, settings: Settings, store: Store, *, command: Sequence[str] = _COMMAND) -> None:
        self._settings = settings
        self._database_url = store.database_url
        self._command = tuple(command)
        self._channel: _Channel | None = None
        self._starting: asyncio.Lock | None = None
        self._next_id = _READY
        self._local: DeliveryIntake | None = None
        if self._database_url is None:  # in memory: only this process sees it
            self._local = DeliveryIntake.from_settings(settings, store)

    @property
    def process_id(self) -> int | None:
        """The child's pid while it runs (for tests and operators)."""
        channel = self._channel
        return channel.process.pid if channel is not None and not channel.closed else None

    async def accept(self, delivery: str, event: str, signature: str | None, body: bytes) -> IntakeAnswer:
        """The answer to one delivery, once it is committed (or refused). Raises
        :class:`RecorderUnavailable` if the recorder process ended first."""
        self._next_id += 1
        request = IntakeRequest(self._next_id, delivery, event, signature, body)
        if self._local is not None:
            answers = await anyio.to_thread.run_sync(self._local.answer_group, [request])
            return answers[0]
        channel = await self._running_channel()
        return await channel.send(request.id, _ENCODER.encode(request))

    async def start(self) -> None:
        """Make sure a child runs and has its store open (a new one if the last one ended);
        :class:`RecorderUnavailable` if it cannot start."""
        if self._local is not None:
            return
        channel = await self._running_channel()
        try:
            await asyncio.wait_for(asyncio.shield(channel.ready), START_TIMEOUT_SECONDS)
        except RecorderUnavailable:
            raise
        except TimeoutError:
            await self._discard(channel)
            raise RecorderUnavailable(
                f"the recorder process did not open the store within {START_TIMEOUT_SECONDS:.0f} s"
            ) from None

    async def close(self) -> None:
        """Let the child answer what it was sent, then wait for it to exit."""
        channel, self._channel = self._channel, None
        if channel is not None and not channel.stopping:
            await channel.stop()

    async def _discard(self, channel: _Channel) -> None:
        if self._channel is channel:
            self._channel = None
        channel.process.kill()
        await channel.stop()

    async def _running_channel(self) -> _Channel:
        loop = asyncio.get_running_loop()
        channel = self._channel
        if channel is not None and not channel.closed and channel.loop is loop:
            return channel
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            channel = self._channel
            if channel is not None and not channel.closed and channel.loop is loop:
                return channel
            if channel is not None and time.monotonic() - channel.started < RESTART_PAUSE_SECONDS:
                raise RecorderUnavailable(
                    "the recorder process ended soon after it started; the next one starts in a moment"
                )
            self._channel = await self._spawn(loop)
            return self._channel

    async def _spawn(self, loop: asyncio.AbstractEventLoop) -> _Channel:
        assert self._database_url is not None
        ours, theirs = socket.socketpair()
        try:
            # Its own process group: Ctrl-C in a terminal does not reach it (see main).
            process = subprocess.Popen(
                [*self._command, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                process_group=0,
            )
        except OSError as exc:
            ours.close()
            raise RecorderUnavailable(f"the recorder process could not start: {exc}") from exc
        finally:
            theirs.close()
        try:
            config = _ChildConfig(self._settings, self._database_url)
            ours.sendall(_frame(pickle.dumps(config)))  # small, and the socket buffer is empty
            ours.setblocking(False)
            _, channel = await loop.create_connection(lambda: _Channel(process, loop), sock=ours)
        except BaseException:  # cancelled, or the socket failed: leave no child behind
            ours.close()
            process.kill()
            await asyncio.shield(asyncio.to_thread(_reap, process, STOP_TIMEOUT_SECONDS))
            raise
        log.info("recorder process %d started", process.pid)
        return channel


def _reap(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for a child that was told to stop (its socket closed); kill it if it does not."""
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    if code != 0:
        log.warning("recorder process %d ended with status %d", process.pid, code)


# -- the recorder process -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m reviewbot.recorder FD``: answer deliveries from the socket FD until it closes."""
    from reviewbot.logs import configure_logging
    from reviewbot.store.store import open_store

    # Ctrl-C in a terminal reaches the whole process group, and a service manager may send
    # SIGTERM to every process of the service: this one ends when the web process closes its
    # socket (or exits), after the group in hand, so the web process decides when it stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    args = sys.argv[1:] if argv is None else list(argv)
    with socket.socket(fileno=int(args[0])) as sock:
        buffer = bytearray()
        first = _read_frame(sock, buffer)
        if first is None:
            return 0
        config: _ChildConfig = pickle.loads(first)  # noqa: S301 (from our parent, over a private socket)
        configure_logging(config.settings)
        try:
            store = open_store(config.database_url)
        except ReviewbotError as exc:  # the web process answers 503 and says the recorder ended
            log.error("recorder process: %s", exc)
            return 1
        try:
            intake = DeliveryIntake.from_settings(config.settings, store)
            sock.sendall(_frame(_ENCODER.encode(IntakeAnswer(_READY, 200, b""))))
            _answer_until_closed(sock, buffer, intake)
        except ConnectionError:  # the web process went first: nobody to answer
            return 0
        except Exception:  # a bug: logged as every line is (secrets redacted); a new process starts
            log.exception("recorder process failed")
            return 1
        finally:
            store.close()
    return 0


def _read_frame(sock: socket.socket, buffer: bytearray) -> bytes | None:
    """The next frame (blocking), or None once the socket is closed."""
    while True:
        for frame in _take_frames(buffer, limit=1):
            return frame
        chunk = sock.recv(_READ_SIZE)
        if not chunk:
            return None
        buffer += chunk


def _answer_until_closed(sock: socket.socket, buffer: bytearray, intake: DeliveryIntake) -> None:
    """Answer, a group at a time, everything that has arrived; wait when nothing has."""
    while True:
        closed = _drain(sock, buffer)
        requests = [_REQUESTS.decode(frame) for frame in _take_frames(buffer)]
        for start in range(0, len(requests), MAX_GROUP):
            answers = intake.answer_group(requests[start : start + MAX_GROUP])
            sock.sendall(b"".join(_frame(_ENCODER.encode(answer)) for answer in answers))
        if closed:
            return
        if not requests:
            chunk = sock.recv(_READ_SIZE)  # nothing to do until more arrives
            if not chunk:
                return
            buffer += chunk


def _drain(sock: socket.socket, buffer: bytearray) -> bool:
    """Append what the socket holds without waiting; True if it was closed."""
    sock.setblocking(False)
    try:
        while len(buffer) < MAX_GROUP * _READ_SIZE:
            chunk = sock.recv(_READ_SIZE)
            if not chunk:
                return True
            buffer += chunk
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
    return False


if __name__ == "__main__":
    with contextlib.suppress(ConnectionError):  # the web process went first: nobody to answer
        sys.exit(main())
