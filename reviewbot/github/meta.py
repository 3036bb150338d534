"""GitHub's webhook source ranges: the ``hooks`` list of ``GET /meta`` ("REST API endpoints for meta data").

The endpoint needs no credentials (60 requests an hour per address without them: plenty for a
fetch an hour). GitHub changes the ranges from time to time and asks that they be read from the
API rather than written down ("About GitHub's IP addresses"). On GitHub Enterprise Server the
request goes to the server's own API, under ``/api/v3``.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network

from githubkit import GitHub, UnauthAuthStrategy
from githubkit.exception import GitHubException

from reviewbot.errors import GitHubError
from reviewbot.github.connection import VERSION_HEADER, client_options
from reviewbot.github.errors import translate
from reviewbot.github.retry import RetryPolicy


async def webhook_ranges(
    api_url: str, *, retry: RetryPolicy | None = None, timeout: float = 30.0
) -> list[IPv4Network | IPv6Network]:
    """The networks GitHub (at ``api_url``) sends webhooks from. Raises :class:`GitHubError` when
    they cannot be read, or when GitHub lists none: an empty list would shut every delivery out."""
    try:
        async with GitHub(UnauthAuthStrategy(), **client_options(api_url, retry, timeout)) as github:
            response = await github.rest.meta.async_get(headers=VERSION_HEADER)
    except GitHubException as exc:
        raise translate(exc) from exc
    data = response.json()
    hooks = data.get("hooks") if isinstance(data, dict) else None
    if not hooks or not isinstance(hooks, list):
        raise GitHubError(f"GET {api_url}/meta lists no webhook ranges (its hooks field is missing or empty)")
    networks: list[IPv4Network | IPv6Network] = []
    for text in hooks:
        try:
            networks.append(ip_network(str(text), strict=False))
        except ValueError:
            raise GitHubError(
                f"GET {api_url}/meta lists {text!r} among its webhook ranges, which is no network"
            ) from None
    return networks
