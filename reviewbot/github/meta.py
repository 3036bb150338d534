"""GitHub's webhook source ranges: the ``hooks`` list of ``GET /meta`` ("REST API endpoints for meta data").

The endpoint needs no credentials (60 requests an hour per address without them: plenty for a
fetch an hour). GitHub changes the ranges from time to time and asks that they be read from the
API rather than written down ("About GitHub's IP addresses").

GitHub Enterprise Server documents a ``GET /meta`` of its own with no address lists at all
(``installed_version``, ``verifiable_password_authentication``), and one in private mode answers
no request without credentials; either way its webhook ranges cannot be read, and
:class:`~reviewbot.errors.NoWebhookRanges` says so.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Final

from githubkit import GitHub, UnauthAuthStrategy
from githubkit.exception import GitHubException

from reviewbot.errors import ConfigError, GitHubAuthError, GitHubError, NoWebhookRanges
from reviewbot.github.connection import VERSION_HEADER, client_options
from reviewbot.github.errors import translate
from reviewbot.github.retry import RetryPolicy

#: GitHub.com's API, whose GET /meta is public: a 401 or 403 there is in the way (a proxy, a block), not private mode.
GITHUB_COM_API: Final = "https://api.github.com"


def refused_without_credentials(api_url: str, error: GitHubError | ConfigError) -> GitHubError | ConfigError:
    """What a failed unauthenticated ``GET /meta`` means: at a server that wants credentials for
    it, a GitHub Enterprise Server in private mode, whose ranges cannot be read."""
    if isinstance(error, GitHubAuthError) and api_url.rstrip("/") != GITHUB_COM_API:
        return NoWebhookRanges(
            f"the API at {api_url} publishes no webhook ranges: it answered GET /meta with {error.status} "
            "without credentials, as a GitHub Enterprise Server in private mode does (and one not in private "
            "mode lists none either)",
            status=error.status,
        )
    return error


async def webhook_ranges(
    api_url: str, *, retry: RetryPolicy | None = None, timeout: float = 30.0
) -> list[IPv4Network | IPv6Network]:
    """The networks GitHub (at ``api_url``) sends webhooks from. Raises :class:`NoWebhookRanges`
    when the API publishes none (GitHub Enterprise Server), and :class:`GitHubError` when they
    cannot be read or the list is empty: an empty list would shut every delivery out."""
    try:
        async with GitHub(UnauthAuthStrategy(), **client_options(api_url, retry, timeout)) as github:
            response = await github.rest.meta.async_get(headers=VERSION_HEADER)
    except GitHubException as exc:
        error = translate(exc)
        raise refused_without_credentials(api_url, error) from exc
    data = response.json()
    if not isinstance(data, dict) or "hooks" not in data:
        raise NoWebhookRanges(
            f"the API at {api_url} publishes no webhook ranges: its GET /meta has no hooks field, "
            "as GitHub Enterprise Server's never has"
        )
    hooks = data["hooks"]
    if not hooks or not isinstance(hooks, list):
        raise GitHubError(f"GET {api_url}/meta lists no webhook ranges (its hooks field is empty)")
    networks: list[IPv4Network | IPv6Network] = []
    for text in hooks:
        try:
            networks.append(ip_network(str(text), strict=False))
        except ValueError:
            raise GitHubError(
                f"GET {api_url}/meta lists {text!r} among its webhook ranges, which is no network"
            ) from None
    return networks
