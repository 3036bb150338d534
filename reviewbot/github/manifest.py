"""Registering the App from a manifest: trading the code GitHub sends back for the App's ID, key and secret."""

from __future__ import annotations

from urllib.parse import quote

from githubkit import GitHub, UnauthAuthStrategy
from githubkit.exception import GitHubException

from reviewbot.credentials import AppRegistration
from reviewbot.errors import GitHubError
from reviewbot.github.auth import check_pem
from reviewbot.github.connection import VERSION_HEADER, client_options
from reviewbot.github.errors import translate


async def convert_app_manifest(api_url: str, code: str, *, timeout: float = 30.0) -> AppRegistration:
    """The App GitHub registered from a manifest, for the ``code`` it sent to the manifest's
    ``redirect_url``: ``POST /app-manifests/{code}/conversions``, unauthenticated. A code works
    once, within an hour; after that GitHub answers 404 (:class:`GitHubNotFound`). The client
    secret GitHub also returns is not kept: reviewbot makes no OAuth requests."""
    github = GitHub(UnauthAuthStrategy(), **client_options(api_url.rstrip("/"), None, timeout))
    try:
        response = await github.rest.apps.async_create_from_manifest(quote(code, safe=""), headers=VERSION_HEADER)
    except GitHubException as exc:
        raise translate(exc) from exc
    data = response.json()
    webhook_secret = data.get("webhook_secret")
    if not webhook_secret:
        raise GitHubError("GitHub registered the App without a webhook secret; the manifest must set hook_attributes")
    check_pem(data["pem"], "the key GitHub returned")
    return AppRegistration(
        id=data["id"],
        slug=data.get("slug") or None,
        name=data["name"],
        html_url=data["html_url"],
        client_id=data["client_id"],
        pem=data["pem"].strip() + "\n",
        webhook_secret=webhook_secret,
    )
