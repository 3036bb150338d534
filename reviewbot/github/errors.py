"""githubkit's exceptions as reviewbot's :class:`~reviewbot.errors.GitHubError` subclasses,
and how long a rate limit asks us to wait."""

from __future__ import annotations

import re
from typing import Final

import httpx
from githubkit.exception import (
    GitHubException,
    PrimaryRateLimitExceeded,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)

from reviewbot.errors import (
    ConfigError,
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubTransient,
    GitHubUnprocessable,
)

# GitHub's advice when a secondary rate limit comes without a wait: at least a minute.
SECONDARY_DEFAULT_WAIT: Final = 60.0

_SECONDARY = re.compile(r"secondary rate limit", re.IGNORECASE)


# -- rate limits ------------------------------------------------------------------------------


def rate_limit_wait(exc: GitHubException, retry_count: int = 0) -> float | None:
    """Seconds GitHub asks us to wait if ``exc`` is a rate limit, else None.

    Per GitHub's "Rate limits for the REST API": ``retry-after`` if present; else the time to
    ``x-ratelimit-reset`` if ``x-ratelimit-remaining`` is 0; else, for a secondary limit, at
    least a minute, growing exponentially with each retry.
    """
    if isinstance(exc, RateLimitExceeded):
        wait = float(exc.retry_after.total_seconds())
        headers = exc.response.headers
        if not isinstance(exc, PrimaryRateLimitExceeded) and not {"retry-after", "x-ratelimit-reset"} & headers.keys():
            wait = SECONDARY_DEFAULT_WAIT * 2.0**retry_count
        return max(wait, 0.0)
    if isinstance(exc, RequestFailed) and exc.response.status_code in (403, 429):
        message, _ = error_body(exc.response.raw_response)
        if exc.response.status_code == 429 or _SECONDARY.search(message):
            return SECONDARY_DEFAULT_WAIT * 2.0**retry_count
    return None


# -- errors -----------------------------------------------------------------------------------


def translate(exc: GitHubException) -> GitHubError | ConfigError:
    """Our error for one of githubkit's (a :class:`GitHubError`, or the error our auth flow raised).
    The message names the request, never a credential."""
    # githubkit wraps an error raised while fetching the installation token (inside httpx's
    # auth flow) in a plain RequestError: look at the error inside.
    while type(exc) is RequestError and isinstance(exc.exc, GitHubException):
        exc = exc.exc
    if type(exc) is RequestError and isinstance(exc.exc, ConfigError):
        # Raised by our auth flow (reviewbot.github.auth), it already says what is wrong. A copy:
        # the caller raises this *from exc*, whose cause is the original, so the original would
        # make its own chain of causes a loop.
        return ConfigError(str(exc.exc))
    if isinstance(exc, RequestFailed):
        return _translate_status(exc)
    if isinstance(exc, RequestTimeout):
        return GitHubTransient(f"GitHub did not answer {_describe(exc.request)} in time")
    if isinstance(exc, RequestError):
        inner = exc.exc
        if isinstance(inner, httpx.TransportError):
            where = _describe(inner.request) if _has_request(inner) else "a request"
            return GitHubTransient(f"could not reach GitHub for {where}: {type(inner).__name__}")
        return GitHubError(f"the GitHub request failed: {type(inner).__name__}")
    return GitHubError(f"GitHub client error: {type(exc).__name__}")


def _translate_status(exc: RequestFailed) -> GitHubError:
    raw = exc.response.raw_response
    status = raw.status_code
    message, errors = error_body(raw)
    said = message or raw.reason_phrase or "no message"
    if errors:
        said += " (" + "; ".join(errors) + ")"
    text = f"GitHub answered {status} to {_describe(exc.request)}: {said}"
    wait = rate_limit_wait(exc)
    if wait is not None:
        return GitHubRateLimited(f"{text}; retry in {wait:.0f} s", status=status, retry_after=wait)
    if status in (401, 403):
        return GitHubAuthError(text, status=status)
    if status == 404:
        return GitHubNotFound(text, status=status)
    if status == 422:
        return GitHubUnprocessable(text, github_message=message, errors=errors, status=status)
    if status >= 500:
        return GitHubTransient(text, status=status)
    return GitHubError(text, status=status)


def error_body(response: httpx.Response) -> tuple[str, tuple[str, ...]]:
    """GitHub's ``message`` and ``errors`` (strings, or objects made into strings)."""
    try:
        data = response.json()
    except ValueError:
        return "", ()
    if not isinstance(data, dict):
        return "", ()
    message = data.get("message")
    errors: list[str] = []
    for error in data.get("errors") or ():
        if isinstance(error, str):
            errors.append(error)
        elif isinstance(error, dict):
            if isinstance(error.get("message"), str):
                errors.append(error["message"])
            else:
                parts = (error.get("resource"), error.get("field"), error.get("code"))
                errors.append(" ".join(str(part) for part in parts if part))
    return (message if isinstance(message, str) else ""), tuple(errors)


def _describe(request: httpx.Request) -> str:
    return f"{request.method} {request.url.path}"


def _has_request(error: httpx.RequestError) -> bool:
    try:
        error.request  # noqa: B018 - httpx raises RuntimeError when none is attached
    except RuntimeError:
        return False
    return True
