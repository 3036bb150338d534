"""Acting as a GitHub App: reading and checking its private key, and the installation-token
auth flow with its shared token caches."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
import threading
from collections.abc import AsyncGenerator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from githubkit import AppInstallationAuthStrategy, GitHubCore
from githubkit.auth.app import AppAuth
from githubkit.cache import MemCacheStrategy

from reviewbot.errors import ConfigError
from reviewbot.github.errors import error_body

if TYPE_CHECKING:
    from reviewbot.settings import Settings

log = logging.getLogger("reviewbot.github")

# -- installation tokens ----------------------------------------------------------------------

_token_caches: dict[tuple[str, str, str], MemCacheStrategy] = {}
_token_caches_lock = threading.Lock()


def token_cache(api_url: str, app_id: str, private_key: str) -> MemCacheStrategy:
    """githubkit keeps JWTs and installation tokens in its cache under keys made of the App ID
    and installation ID alone, in one cache for the whole process by default. One cache per API
    URL, App ID and key keeps two GitHub hosts (or an old and a new key) apart."""
    fingerprint = hashlib.sha256(private_key.encode()).hexdigest()
    with _token_caches_lock:
        return _token_caches.setdefault((api_url, app_id, fingerprint), MemCacheStrategy())


class _AppAuth(AppAuth):
    """githubkit's App auth flow, able to sign requests for paths that hold ``#`` or ``?``, and
    to replace an installation token GitHub no longer takes.

    To tell App routes (JWT) from installation routes (token), githubkit rebuilds the request
    path with ``httpx.URL(path=url.path)``; ``url.path`` is percent-decoded, so a file named
    ``a#b`` makes that raise InvalidURL. Reading the still-encoded ``raw_path`` avoids it.

    githubkit keeps an installation token until a minute before the hour GitHub gives it runs out
    ("Generating an installation access token for a GitHub App"). A token revoked before then
    ("Revoke an installation access token": it "is invalidated and cannot be used") is answered
    401 "Bad credentials" for every request until the cache lets it go. So a 401 to a request made with a token drops
    that token, and the request is sent once more with a new one from ``POST
    /app/installations/{id}/access_tokens``; a 401 to that one too, still after
    :attr:`fresh_token_waits`, is a configuration error.
    """

    # The request may be sent again, so httpx must keep its body.
    requires_request_body = True
    #: How long to wait before sending a request again with a token GitHub refused right after
    #: issuing it: a new token can take a moment to reach every replica (octokit's auth-app
    #: retries such a 401 for 5 s). Only then is the refusal a configuration error.
    fresh_token_waits: ClassVar[tuple[float, ...]] = (1.0, 2.0)

    def _get_api_route(self, url: httpx.URL) -> httpx.URL:
        base = self.github.config.base_url.raw_path
        raw = url.raw_path.partition(b"?")[0]
        if raw.startswith(base):
            raw = b"/" + raw[len(base) :]
        return httpx.URL(raw.decode("ascii"))

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        fresh = False
        waits = iter(self.fresh_token_waits)
        while True:
            flow = super().async_auth_flow(request)
            try:
                sent = await anext(flow)
                while True:
                    response = yield sent
                    try:
                        sent = await flow.asend(response)
                    except StopAsyncIteration:
                        break
            finally:
                await flow.aclose()
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if response.status_code != 401 or scheme != "token":
                return
            where = f"{request.method} {request.url.path}"
            if fresh and (wait := next(waits, None)) is not None:
                # A token GitHub has just issued may be refused until its replicas know it.
                await asyncio.sleep(wait)
                continue
            if fresh:
                await response.aread()
                said = error_body(response)[0] or "no message"
                raise ConfigError(
                    f"GitHub refused a new installation token for installation {self.installation_id} "
                    f"(401 to {where}: {said}); check that REVIEWBOT_GITHUB_API_URL is the API of the GitHub "
                    "the App is registered on, with nothing in between that drops the Authorization header"
                )
            log.warning(
                "GitHub no longer takes the installation token of installation %s (401 to %s); getting a new one",
                self.installation_id,
                where,
            )
            await self._forget_token(token)
            fresh = True

    async def _forget_token(self, token: str) -> None:
        """Drop ``token`` from the cache, unless a concurrent request already replaced it."""
        cache = await self.github.config.cache_strategy.get_async_cache_storage()
        key = self._get_installation_cache_key()
        if await cache.aget(key) == token:
            # githubkit's caches have no delete: an empty entry that has already expired reads as none.
            await cache.aset(key, "", timedelta(0))


@dataclasses.dataclass
class InstallationAuthStrategy(AppInstallationAuthStrategy):
    def get_auth_flow(self, github: GitHubCore[Any]) -> httpx.Auth:
        flow = super().get_auth_flow(github)
        assert isinstance(flow, AppAuth)
        return _AppAuth(**{field.name: getattr(flow, field.name) for field in dataclasses.fields(flow)})


# -- the App's private key -------------------------------------------------------------------


def read_private_key(settings: Settings) -> str:
    if settings.github_private_key is not None and settings.github_private_key.get_secret_value().strip():
        text = settings.github_private_key.get_secret_value().strip()
        if "\n" not in text and "\\n" in text:  # a PEM squeezed onto one line of a .env file
            text = text.replace("\\n", "\n")
        check_pem(text, "REVIEWBOT_GITHUB_PRIVATE_KEY")
        return text
    path = settings.github_private_key_path
    if path is None:
        raise ConfigError(
            "REVIEWBOT_GITHUB_PRIVATE_KEY_PATH is not set; point it at the App's .pem file "
            "(or put the key itself in REVIEWBOT_GITHUB_PRIVATE_KEY)"
        )
    variable = f"REVIEWBOT_GITHUB_PRIVATE_KEY_PATH={path}"
    if not path.exists():
        raise ConfigError(f"{variable} does not exist; point it at the App's .pem file")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{variable} cannot be read ({reason}); point it at the App's .pem file") from None
    check_pem(text, variable)
    return text.strip()


@functools.lru_cache(maxsize=8)  # loading an RSA key checks it, ~50 ms; a worker reads it for every job
def check_pem(text: str, variable: str) -> None:
    """GitHub Apps sign with RSA keys in PEM; anything else would only fail at the first request."""
    try:
        key = load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(
            f"{variable} is not a PEM RSA private key without a passphrase; "
            "download a new key from the App's settings page"
        )
