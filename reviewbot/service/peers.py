"""Who a webhook request comes from: the peer's address, whether the allowlist lets it in, and the
key its share of the unverified bytes is counted under.

The peer is what the ASGI scope calls the client (Starlette's ``request.client``): the TCP peer,
or, when uvicorn trusts the connecting proxy (REVIEWBOT_FORWARDED_ALLOW_IPS, :func:`proxy_hosts`),
the last address in ``X-Forwarded-For`` that is not one of the trusted proxies. A server
listening on an IPv6 socket sees IPv4 clients as IPv4-mapped addresses (``::ffff:192.30.252.1``);
they are read as the IPv4 address they carry, so that IPv4 networks match them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Final

from reviewbot.settings import Settings

Network = IPv4Network | IPv6Network

#: IPv6 addresses are handed out by the network, not one by one: a /48 is what RFC 6177 expects a
#: site to get, tunnel brokers give one away for free, and clouds delegate /56s (256 /64s). Counting
#: a smaller prefix as one peer would give one client hundreds or thousands of shares. The cost:
#: clients of a provider that puts many customers in one /48 share one share.
IPV6_PEER_PREFIX: Final = 48
#: The key of every peer without an address (a Unix socket, a proxy header that names none).
NO_ADDRESS: Final = "unknown"


def peer_address(host: str | None) -> IPv4Address | IPv6Address | None:
    """The peer's address, an IPv4-mapped one as IPv4; None when ``host`` is no address."""
    if not host:
        return None
    try:
        address = ip_address(host)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def peer_key(host: str | None) -> str:
    """What a peer's share is counted under: its IPv4 address, or its IPv6 address's /48."""
    address = peer_address(host)
    if address is None:
        return NO_ADDRESS
    if isinstance(address, IPv4Address):
        return str(address)
    # From the integer: an address with a zone (fe80::1%eth0) is no network's text.
    return str(IPv6Network((int(address) >> (128 - IPV6_PEER_PREFIX) << (128 - IPV6_PEER_PREFIX), IPV6_PEER_PREFIX)))


class Allowlist:
    """The networks ``POST /webhook`` is open to (REVIEWBOT_WEBHOOK_ALLOWED_IPS); empty, it is open to all.

    ``github`` in the setting stands for GitHub's webhook ranges, which are only known once fetched
    (:mod:`reviewbot.service.hook_ranges`): until then only the fixed networks are let in. The
    ranges are replaced whole, by one assignment, so the event loop never sees half a list.
    """

    __slots__ = ("_fixed", "_github", "wants_github")

    def __init__(self, fixed: Sequence[Network] = (), *, wants_github: bool = False) -> None:
        self._fixed = tuple(fixed)
        self._github: tuple[Network, ...] = ()
        self.wants_github = wants_github

    @classmethod
    def from_settings(cls, settings: Settings) -> Allowlist:
        sources = settings.webhook_allowed_ips
        fixed = [source for source in sources if source != "github"]
        return cls(fixed, wants_github="github" in sources)

    @property
    def open(self) -> bool:
        """Whether everyone is let in: nothing was listed."""
        return not self._fixed and not self.wants_github

    @property
    def github_ranges(self) -> tuple[Network, ...]:
        return self._github

    def use_github_ranges(self, networks: Iterable[Network]) -> None:
        self._github = tuple(networks)

    def allows(self, host: str | None) -> bool:
        """Whether the peer ``host`` (as the ASGI scope gives it) may post webhooks."""
        if self.open:
            return True
        address = peer_address(host)
        if address is None:
            return False
        # An IPv4 address is in no IPv6 network and the other way round: `in` says False.
        return any(address in network for network in self._fixed) or any(address in network for network in self._github)


def proxy_hosts(settings: Settings) -> list[str]:
    """The proxies uvicorn believes ``X-Forwarded-For`` from, as it takes them: REVIEWBOT_FORWARDED_ALLOW_IPS,
    each IPv4 network also as the IPv4-mapped one a server on an IPv6 socket sees its clients in
    (uvicorn compares the peer as the socket gives it)."""
    hosts = []
    for network in settings.forwarded_allow_ips:
        hosts.append(str(network))
        if isinstance(network, IPv4Network):
            mapped = IPv6Address(f"::ffff:{network.network_address}")
            hosts.append(str(IPv6Network((mapped, 96 + network.prefixlen))))
    return hosts
