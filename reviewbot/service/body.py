"""Reading a webhook body that no one has vouched for yet: bounded in size, in time, and in memory.

Until its signature is checked, a body is an anonymous upload. :func:`read_signed_body` feeds it to
the delivery's :class:`~reviewbot.service.webhooks.SignatureCheck` piece by piece as it arrives,
and stops it as soon as it cannot be accepted:

- past ``limit`` bytes (GitHub caps payloads at 25 MB): 413;
- not whole within ``timeout`` seconds (GitHub itself gives up on a delivery after 10 s): 408;
- when its bytes would take the process's unverified bodies past their common cap, or its peer's
  past that peer's share of the cap: 503;
- when the client hangs up: :class:`ClientGone`, for one log line.

The HMAC can only be compared once the last byte is in, so until then the bytes must be held
somewhere. They are held in memory, against one cap for the whole process
(:class:`UnverifiedBytes`), rather than spooled to a temporary file: GitHub's deliveries are small
(a ``pull_request`` one is about 30 KB) and thousands of them fit under the cap at once, while a
file per upload would only move the exhaustion from memory to the disk and its file descriptors.
A body takes from the cap only what has actually arrived, so holding a share of it costs a client
the bandwidth to send it, and only for ``timeout`` seconds. Past the cap, uploads are refused with
``Retry-After`` rather than queued: waiting would hold their bytes too.

No one peer (an IPv4 address, an IPv6 /48: :func:`~reviewbot.service.peers.peer_key`) may hold more
than a quarter of the cap, so one stranger uploading fast over many connections cannot keep the
cap full and GitHub's deliveries out (GitHub does not redeliver on its own). A quarter leaves three
quarters to everyone else while one address floods, and 12.5 MiB is still far more than one of
GitHub's addresses holds at once: the events reviewbot takes are small (a ``pull_request`` one is
about 30 KB; their text fields are capped at 65,536 characters), so even a single one never nears
it. (So a single body past 12.5 MiB gets 503 before it can reach the 25 MB of the 413.) A smaller
share would only make a large body (an ``installation`` event listing thousands of repositories)
the first thing refused. Filling the cap takes four peers: four IPv4 addresses or four IPv6 /48s,
which a few cloud machines or tunnel-broker accounts provide. The share stops one client, not a
determined attacker; REVIEWBOT_WEBHOOK_ALLOWED_IPS is what keeps those out.
"""

from __future__ import annotations

import asyncio
import math
from typing import Final

from starlette.types import Receive

from reviewbot.service.metrics import RejectionReason
from reviewbot.service.webhooks import SignatureCheck

#: The most memory that bodies without a valid signature can hold in the web process at once.
UNVERIFIED_BYTES_CAP: Final = 50 * 1024 * 1024
#: The part of the cap one peer may hold (see the module's docstring for why a quarter).
PEER_SHARE: Final = 4


class UnverifiedBytes:
    """The bytes of bodies whose signature is not checked yet, held by the process against a cap,
    and by each peer against its share of the cap.

    Only the event loop's thread reads bodies, so plain counters need no lock. A peer is counted
    only while it holds bytes, so the counts take no more room than the connections do.
    """

    __slots__ = ("_by_peer", "cap", "held", "share")

    def __init__(self, cap: int = UNVERIFIED_BYTES_CAP, share: int | None = None) -> None:
        self.cap = cap
        self.share = share if share is not None else cap // PEER_SHARE
        self.held = 0
        self._by_peer: dict[str, int] = {}

    @property
    def peers(self) -> int:
        """How many peers hold bytes."""
        return len(self._by_peer)

    def held_by(self, peer: str) -> int:
        return self._by_peer.get(peer, 0)

    def take(self, peer: str, size: int) -> bool:
        """Count ``size`` more bytes as held by ``peer``, if the cap and the peer's share allow."""
        mine = self._by_peer.get(peer, 0)
        if self.held + size > self.cap or mine + size > self.share:
            return False
        self.held += size
        if size:
            self._by_peer[peer] = mine + size
        return True

    def give_back(self, peer: str, size: int) -> None:
        self.held -= size
        left = self._by_peer.get(peer, 0) - size
        if left > 0:
            self._by_peer[peer] = left
        else:
            self._by_peer.pop(peer, None)


class BodyRefused(Exception):
    """The body cannot be accepted: the answer to send, and the reason to count."""

    def __init__(self, status: int, message: str, reason: RejectionReason, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.retry_after = retry_after  # seconds, for a 503


class ClientGone(Exception):
    """The client hung up before the body was whole."""

    def __init__(self, received: int) -> None:
        super().__init__(f"the client disconnected after {received} bytes of the body")
        self.received = received


async def read_signed_body(
    receive: Receive, check: SignatureCheck, budget: UnverifiedBytes, *, peer: str, limit: int, timeout: float
) -> bytes:
    """The whole body, once its signature matches; its bytes count against ``budget`` as ``peer``'s
    until then. Raises :class:`BodyRefused` (413, 408, 503, or 401 when the signature does not
    match) or :class:`ClientGone`."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone(size)
                chunk: bytes = message.get("body", b"")
                if size + len(chunk) > limit:
                    raise BodyRefused(413, "payload too large", "too_large")
                if not budget.take(peer, len(chunk)):
                    # By the time the timeout has passed, every body held now has arrived or been cut off.
                    raise BodyRefused(503, _busy(budget, peer, len(chunk)), "busy", math.ceil(timeout))
                size += len(chunk)
                check.update(chunk)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        if not check.matches():
            raise BodyRefused(401, "invalid signature", "signature")
    except TimeoutError:
        raise BodyRefused(408, f"the body did not arrive within {timeout:g} s", "too_slow") from None
    finally:
        budget.give_back(peer, size)  # signed by GitHub, or refused: not an anonymous upload any more
    # Joined only once it is known to come from GitHub; one chunk (the usual case) is not copied.
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _busy(budget: UnverifiedBytes, peer: str, size: int) -> str:
    """Why ``size`` more bytes from ``peer`` cannot be held: everyone's cap, or the peer's share."""
    if budget.held + size > budget.cap:
        return "too many uploads in progress"
    return "too many uploads in progress from this address"
