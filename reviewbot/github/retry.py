"""Which failed GET requests are sent again, and when: the policy and githubkit's ``auto_retry`` hook."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
from githubkit.exception import GitHubException, RequestError, RequestFailed, RequestTimeout
from githubkit.typing import RetryOption

from reviewbot.github.errors import rate_limit_wait

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How GET requests are retried. ``time_scale`` multiplies every sleep (tests make it small);
    the decision whether a rate-limit wait is too long uses the wait GitHub asked for."""

    max_wait: float = 60.0  # the longest rate-limit wait sat out; longer ones raise GitHubRateLimited
    rate_limit_retries: int = 2
    server_retries: int = 3  # for 5xx answers, timeouts and broken connections
    backoff: float = 1.0  # the first wait after a 5xx; it doubles each time
    time_scale: float = 1.0


_no_server_retry_var: ContextVar[bool] = ContextVar("reviewbot_github_no_server_retry", default=False)


@contextmanager
def no_server_retry() -> Iterator[None]:
    """Within this block a 5xx is not retried (a diff GitHub had no time for will not come)."""
    token = _no_server_retry_var.set(True)
    try:
        yield
    finally:
        _no_server_retry_var.reset(token)


class ReadRetry:
    """githubkit's ``auto_retry`` hook: which failed requests to send again, and when.

    Only GET and HEAD are retried. githubkit sleeps ``retry_after`` and asks again with the
    count of retries so far; once this says no, githubkit raises and we translate.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        if _method(exc) not in ("GET", "HEAD"):
            return RetryOption(False)
        wait = self._wait(exc, retry_count)
        if wait is None:
            return RetryOption(False)
        # githubkit sleeps a whole minute for a zero timedelta, so never hand it one.
        return RetryOption(True, timedelta(seconds=max(wait * self.policy.time_scale, 0.001)))

    def _wait(self, exc: GitHubException, retry_count: int) -> float | None:
        policy = self.policy
        limited = rate_limit_wait(exc, retry_count)
        if limited is not None:
            if retry_count >= policy.rate_limit_retries or limited > policy.max_wait:
                return None
            return limited
        transient = isinstance(exc, RequestTimeout) or (
            isinstance(exc, RequestFailed) and exc.response.status_code >= 500
        )
        if not transient and type(exc) is RequestError and isinstance(exc.exc, httpx.TransportError):
            transient = True
        if not transient or retry_count >= policy.server_retries:
            return None
        if isinstance(exc, RequestFailed) and _no_server_retry_var.get():
            return None
        return policy.backoff * 2.0**retry_count


def _method(exc: GitHubException) -> str | None:
    request: httpx.Request | None = None
    try:
        if isinstance(exc, RequestFailed | RequestTimeout):
            request = exc.request
        elif isinstance(exc, RequestError) and isinstance(exc.exc, httpx.RequestError):
            request = exc.exc.request
    except RuntimeError:  # httpx raises this for an error that has no request attached
        return None
    return request.method if request is not None else None
