"""The options every githubkit client here is built with: API version, TLS, user agent, timeout, retries."""

from __future__ import annotations

from typing import Any, Final

import httpx

from reviewbot import __version__, tls
from reviewbot.github.retry import ReadRetry, RetryPolicy

# Every request pins this version: the one github.com uses when none is given and the one every
# supported GitHub Enterprise Server release knows (githubkit would send its newest).
API_VERSION: Final = "2022-11-28"
VERSION_HEADER: Final = {"X-GitHub-Api-Version": API_VERSION}


def client_options(api_url: str, retry: RetryPolicy | None, timeout: float) -> dict[str, Any]:
    return {
        "base_url": api_url,
        "ssl_verify": tls.shared_context(httpx),  # the CAs loaded once per process
        "user_agent": f"reviewbot/{__version__}",
        # githubkit's default is no timeout at all.
        "timeout": httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        # No HTTP cache: an unbounded in-memory store of every diff is no use to a service.
        "http_cache": False,
        "auto_retry": ReadRetry(retry or RetryPolicy()),
    }
