"""The GitHub REST API, as the review service needs it. The one module that imports githubkit.

Requests go through githubkit's typed REST methods; answers are read as githubkit's typed
dictionaries (``Response.json()``), not validated into its pydantic models, so a field that a
GitHub Enterprise Server release spells differently cannot break a review. Every request pins
``X-GitHub-Api-Version: 2022-11-28``: the version github.com uses when none is given and the
one every supported GitHub Enterprise Server release knows (githubkit would send its newest).

Errors come out as :class:`~reviewbot.errors.GitHubError` subclasses. GET requests are retried
by githubkit's retry hook with our own decision function: rate limits are waited out when the
wait is short (``retry-after``, or ``x-ratelimit-reset`` when ``x-ratelimit-remaining`` is 0),
5xx answers, timeouts and broken connections are retried with backoff. POST and DELETE are never
retried here: after a failed :meth:`GitHubClient.create_review` the caller must look whether the
review landed before it tries again.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import re
import threading
from collections.abc import AsyncGenerator, Awaitable, Sequence
from contextlib import aclosing, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar
from urllib.parse import quote

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from githubkit import AppInstallationAuthStrategy, GitHub, GitHubCore, Response, TokenAuthStrategy, UnauthAuthStrategy
from githubkit.auth.app import AppAuth
from githubkit.cache import MemCacheStrategy
from githubkit.exception import (
    GitHubException,
    PrimaryRateLimitExceeded,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)
from githubkit.rest import Paginator
from githubkit.typing import RetryOption

from reviewbot import __version__, tls
from reviewbot.credentials import AppRegistration
from reviewbot.engine.diff import Side, decode
from reviewbot.errors import (
    ConfigError,
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubTransient,
    GitHubUnprocessable,
)
from reviewbot.github.draft import ReviewComment

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from githubkit_schemas.v2026_03_10.types import (
        DiffEntryTypeForResponse,
        PullRequestReviewCommentTypeForResponse,
        PullRequestReviewTypeForResponse,
        ReposOwnerRepoPullsPullNumberReviewsPostBodyPropCommentsItemsType,
    )

    from reviewbot.settings import Settings

T = TypeVar("T")

API_VERSION: Final = "2022-11-28"
DIFF_MEDIA_TYPE: Final = "application/vnd.github.diff"
RAW_MEDIA_TYPE: Final = "application/vnd.github.raw"
# GitHub's limits for the diff media type of a pull request; past them it answers 406.
MAX_DIFF_FILES: Final = 300
MAX_DIFF_LINES: Final = 20_000
# The files API lists at most this many files of a pull request.
MAX_LISTED_FILES: Final = 3_000
NO_PATCH: Final = "GitHub sent no patch (binary or too large)"
# GitHub's advice when a secondary rate limit comes without a wait: at least a minute.
SECONDARY_DEFAULT_WAIT: Final = 60.0

_VERSION_HEADER: Final = {"X-GitHub-Api-Version": API_VERSION}
_SECONDARY = re.compile(r"secondary rate limit", re.IGNORECASE)


# -- what the rest of reviewbot sees ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PullRequest:
    """A pull request as ``GET /repos/{owner}/{repo}/pulls/{number}`` describes it."""

    repo: str  # "owner/name"
    number: int
    title: str
    body: str  # "" when the description is empty
    state: str  # "open" or "closed"
    draft: bool
    merged: bool
    head_sha: str
    head_ref: str
    base_sha: str
    base_ref: str
    author: str
    author_type: str  # "User", "Bot" or "Organization"
    changed_files: int
    additions: int
    deletions: int
    html_url: str


@dataclass(frozen=True, slots=True)
class PostedReview:
    """A review already on a pull request. ``commit_id`` is the head it was made on."""

    id: int
    user_login: str
    state: str  # "COMMENTED", "APPROVED", "CHANGES_REQUESTED", "DISMISSED" or "PENDING"
    commit_id: str | None
    body: str


@dataclass(frozen=True, slots=True)
class PostedComment:
    """An inline review comment already on a pull request; ``line`` is None once outdated."""

    id: int
    user_login: str
    path: str
    line: int | None
    side: Side
    body: str
    commit_id: str


@dataclass(frozen=True, slots=True)
class DiffFetch:
    """A pull request's diff. ``source`` is "diff" (GitHub's diff) or "files" (rebuilt from the
    files API); ``omitted`` names the files whose changes the rebuilt diff lacks, with why."""

    text: str
    omitted: tuple[tuple[str, str], ...]
    source: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How GET requests are retried. ``time_scale`` multiplies every sleep (tests make it small);
    the decision whether a rate-limit wait is too long uses the wait GitHub asked for."""

    max_wait: float = 60.0  # the longest rate-limit wait sat out; longer ones raise GitHubRateLimited
    rate_limit_retries: int = 2
    server_retries: int = 3  # for 5xx answers, timeouts and broken connections
    backoff: float = 1.0  # the first wait after a 5xx; it doubles each time
    time_scale: float = 1.0


# -- the client -------------------------------------------------------------------------------


# An App's slug never changes while it runs, and a client is made per job: ask GitHub once.
_APP_SLUGS: dict[tuple[str, str], str] = {}


class GitHubClient:
    """An async GitHub REST client for one App installation or one personal token.

    Use it as an async context manager (one connection pool for all requests), or call
    :meth:`aclose` when done. Build it with :meth:`for_installation` or :meth:`with_token`.
    """

    def __init__(
        self, github: GitHub[Any], *, is_app: bool, app_slug: str | None = None, app_key: tuple[str, str] | None = None
    ) -> None:
        self._github = github
        self._is_app = is_app
        self._app_key = app_key
        self._app_slug = app_slug or (_APP_SLUGS.get(app_key) if app_key else None)
        self._entered = False

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def for_installation(
        cls,
        settings: Settings,
        installation_id: int,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> GitHubClient:
        """A client acting as the App's installation ``installation_id``.

        githubkit signs a JWT with the App's key, trades it for an installation token and keeps
        the token until a minute before it expires; clients for the same App, key and API URL
        share those tokens.
        """
        if not settings.github_app_id:
            raise ConfigError("REVIEWBOT_GITHUB_APP_ID is not set; copy the App ID from the App's settings page")
        private_key = _read_private_key(settings)
        api_url = settings.github_api_url
        strategy = _InstallationAuthStrategy(settings.github_app_id, private_key, installation_id)
        github = GitHub(
            strategy,
            **_options(api_url, retry, timeout),
            cache_strategy=_token_cache(api_url, settings.github_app_id, private_key),
        )
        return cls(github, is_app=True, app_slug=settings.github_app_slug, app_key=(api_url, settings.github_app_id))

    @classmethod
    def with_token(
        cls, token: str, api_url: str, *, retry: RetryPolicy | None = None, timeout: float = 30.0
    ) -> GitHubClient:
        """A client acting with a personal access token (``reviewbot review --pr``)."""
        if not token.strip():
            raise ConfigError("the GitHub token is empty; set REVIEWBOT_GITHUB_TOKEN or GITHUB_TOKEN")
        github = GitHub(
            TokenAuthStrategy(token.strip()),
            **_options(api_url.rstrip("/"), retry, timeout),
            cache_strategy=MemCacheStrategy(),
        )
        return cls(github, is_app=False)

    # -- life -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._github.__aenter__()  # type: ignore[no-untyped-call]
        self._entered = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool opened by ``async with``; safe to call more than once."""
        if self._entered:
            self._entered = False
            await self._github.__aexit__(None, None, None)

    # -- who we are -----------------------------------------------------------------------

    async def app_slug(self) -> str:
        """The App's slug (``GET /app`` with the App's JWT); only for App clients."""
        if not self._is_app:
            raise GitHubError("app_slug() needs an App client; this one uses a personal token")
        if self._app_slug is None:
            response = await self._call(self._github.rest.apps.async_get_authenticated(headers=_VERSION_HEADER))
            app = response.json()
            slug = app.get("slug") if app else None
            if not slug:
                raise GitHubError("GET /app answered without the App's slug")
            self._app_slug = slug
            if self._app_key is not None:
                _APP_SLUGS[self._app_key] = slug
        return self._app_slug

    async def viewer_login(self) -> str:
        """The login our reviews appear under: ``{slug}[bot]`` for an App, the user for a token."""
        if self._is_app:
            return f"{await self.app_slug()}[bot]"
        response = await self._call(self._github.rest.users.async_get_authenticated(headers=_VERSION_HEADER))
        return response.json()["login"]

    # -- pull requests --------------------------------------------------------------------

    async def get_pull(self, repo: str, number: int) -> PullRequest:
        owner, name = _split_repo(repo)
        response = await self._call(self._github.rest.pulls.async_get(owner, name, number, headers=_VERSION_HEADER))
        data = response.json()
        user = data["user"]
        return PullRequest(
            repo=f"{owner}/{name}",
            number=data["number"],
            title=data["title"],
            body=data["body"] or "",
            state=data["state"],
            draft=bool(data.get("draft", False)),
            merged=bool(data.get("merged", False)),
            head_sha=data["head"]["sha"],
            head_ref=data["head"]["ref"],
            base_sha=data["base"]["sha"],
            base_ref=data["base"]["ref"],
            author=user["login"] if user else "",
            author_type=user["type"] if user else "",
            changed_files=data["changed_files"],
            additions=data["additions"],
            deletions=data["deletions"],
            html_url=data["html_url"],
        )

    async def get_pull_diff(self, pr: PullRequest) -> DiffFetch:
        """The pull request's diff: GitHub's own, or rebuilt from the files API when GitHub will
        not make one (406 past 300 files or 20,000 lines, 500 when it runs out of time)."""
        if pr.changed_files > MAX_DIFF_FILES or pr.additions + pr.deletions > MAX_DIFF_LINES:
            return await self._diff_from_files(pr)
        owner, name = _split_repo(pr.repo)
        headers = {**_VERSION_HEADER, "Accept": DIFF_MEDIA_TYPE}
        try:
            with _no_server_retry():
                response = await self._call(self._github.rest.pulls.async_get(owner, name, pr.number, headers=headers))
        except GitHubError as exc:
            if exc.status == 406 or (exc.status is not None and exc.status >= 500):
                return await self._diff_from_files(pr)
            raise
        return DiffFetch(text=decode(response.content), omitted=(), source="diff")

    async def _diff_from_files(self, pr: PullRequest) -> DiffFetch:
        owner, name = _split_repo(pr.repo)
        entries: list[DiffEntryTypeForResponse] = []

        def page(response: Response[Any, list[DiffEntryTypeForResponse]]) -> list[DiffEntryTypeForResponse]:
            return response.json()

        paginator = self._github.rest.paginate(
            self._github.rest.pulls.async_list_files,
            page,
            owner,
            name,
            pr.number,
            per_page=100,
            headers=_VERSION_HEADER,
        )
        async with aclosing(self._iterate(paginator)) as listed:
            async for entry in listed:
                entries.append(entry)
                if len(entries) >= MAX_LISTED_FILES:
                    break
        text, omitted = rebuild_diff(entries)
        return DiffFetch(text=text, omitted=omitted, source="files")

    async def compare_diff(self, repo: str, base_sha: str, head_sha: str) -> str | None:
        """The diff ``base...head`` (what changed on head since it left base); None when GitHub
        does not know one of the commits, e.g. after a force-push removed it (404), or cannot make
        the diff (406 too large, 5xx too slow)."""
        owner, name = _split_repo(repo)
        headers = {**_VERSION_HEADER, "Accept": DIFF_MEDIA_TYPE}
        try:
            with _no_server_retry():
                response = await self._call(
                    self._github.rest.repos.async_compare_commits(
                        owner, name, f"{base_sha}...{head_sha}", headers=headers
                    )
                )
        except GitHubNotFound:
            return None
        except GitHubError as exc:
            # Too large for a diff (406), or too slow to make one (5xx, as for a PR's diff): the
            # caller reviews the whole pull request instead.
            if exc.status == 406 or (exc.status is not None and exc.status >= 500):
                return None
            raise
        return decode(response.content)

    async def get_file(self, repo: str, path: str, ref: str) -> bytes | None:
        """A file's bytes at ``ref``; None when there is no such file (or it is a directory)."""
        owner, name = _split_repo(repo)
        url_path = quote(path.lstrip("/"), safe="/")
        try:
            response = await self._call(
                self._github.rest.repos.async_get_content(owner, name, url_path, ref=ref, headers=_VERSION_HEADER)
            )
        except GitHubNotFound:
            return None
        data = response.json()
        if isinstance(data, list) or data.get("type") != "file":
            return None
        content = data.get("content")
        if data.get("encoding") == "base64" and isinstance(content, str):
            try:
                return base64.b64decode(content)
            except (binascii.Error, ValueError) as exc:
                raise GitHubError(f"GitHub sent {path} at {ref} as base64 that does not decode") from exc
        # Files of 1-100 MB come with encoding "none" and no content: ask for the raw bytes.
        raw = await self._call(
            self._github.rest.repos.async_get_content(
                owner, name, url_path, ref=ref, headers={**_VERSION_HEADER, "Accept": RAW_MEDIA_TYPE}
            )
        )
        return raw.content

    # -- reviews --------------------------------------------------------------------------

    async def list_reviews(self, repo: str, number: int) -> list[PostedReview]:
        owner, name = _split_repo(repo)

        def page(response: Response[Any, list[PullRequestReviewTypeForResponse]]) -> list[PostedReview]:
            return [_posted_review(item) for item in response.json()]

        paginator = self._github.rest.paginate(
            self._github.rest.pulls.async_list_reviews, page, owner, name, number, per_page=100, headers=_VERSION_HEADER
        )
        return [review async for review in self._iterate(paginator)]

    async def list_review_comments(self, repo: str, number: int) -> list[PostedComment]:
        owner, name = _split_repo(repo)

        def page(response: Response[Any, list[PullRequestReviewCommentTypeForResponse]]) -> list[PostedComment]:
            return [_posted_comment(item) for item in response.json()]

        paginator = self._github.rest.paginate(
            self._github.rest.pulls.async_list_review_comments,
            page,
            owner,
            name,
            number,
            per_page=100,
            headers=_VERSION_HEADER,
        )
        return [comment async for comment in self._iterate(paginator)]

    async def delete_pending_review(self, repo: str, number: int, review_id: int) -> None:
        """Delete a review that was never submitted (GitHub refuses others with 422)."""
        owner, name = _split_repo(repo)
        await self._call(
            self._github.rest.pulls.async_delete_pending_review(owner, name, number, review_id, headers=_VERSION_HEADER)
        )

    async def create_review(
        self, repo: str, number: int, *, commit_id: str, body: str, comments: Sequence[ReviewComment]
    ) -> int:
        """Post one submitted review (event COMMENT) with inline comments; return its id.

        GitHub refuses the whole review with 422 (:class:`GitHubUnprocessable`) if a single
        comment is off the diff. Never retried here: on :class:`GitHubTransient` the review may
        have been stored all the same, so look with :meth:`list_reviews` before posting again.
        """
        owner, name = _split_repo(repo)
        items = [_comment_json(comment) for comment in comments]
        response = await self._call(
            self._github.rest.pulls.async_create_review(
                owner,
                name,
                number,
                headers=_VERSION_HEADER,
                commit_id=commit_id,
                body=body,
                event="COMMENT",
                comments=items,
            )
        )
        return response.json()["id"]

    # -- plumbing -------------------------------------------------------------------------

    async def _call(self, request: Awaitable[T]) -> T:
        try:
            return await request
        except GitHubException as exc:
            raise translate(exc) from exc

    async def _iterate(self, paginator: Paginator[T]) -> AsyncGenerator[T, None]:
        iterator = aiter(paginator)
        while True:
            try:
                item = await anext(iterator)
            except StopAsyncIteration:
                return
            except GitHubException as exc:
                raise translate(exc) from exc
            yield item


# -- registering the App ---------------------------------------------------------------------


async def convert_app_manifest(api_url: str, code: str, *, timeout: float = 30.0) -> AppRegistration:
    """The App GitHub registered from a manifest, for the ``code`` it sent to the manifest's
    ``redirect_url``: ``POST /app-manifests/{code}/conversions``, unauthenticated. A code works
    once, within an hour; after that GitHub answers 404 (:class:`GitHubNotFound`). The client
    secret GitHub also returns is not kept: reviewbot makes no OAuth requests."""
    github = GitHub(UnauthAuthStrategy(), **_options(api_url.rstrip("/"), None, timeout))
    try:
        response = await github.rest.apps.async_create_from_manifest(quote(code, safe=""), headers=_VERSION_HEADER)
    except GitHubException as exc:
        raise translate(exc) from exc
    data = response.json()
    webhook_secret = data.get("webhook_secret")
    if not webhook_secret:
        raise GitHubError("GitHub registered the App without a webhook secret; the manifest must set hook_attributes")
    _check_pem(data["pem"], "the key GitHub returned")
    return AppRegistration(
        id=data["id"],
        slug=data.get("slug") or None,
        name=data["name"],
        html_url=data["html_url"],
        client_id=data["client_id"],
        pem=data["pem"].strip() + "\n",
        webhook_secret=webhook_secret,
    )


# -- building githubkit -----------------------------------------------------------------------

_token_caches: dict[tuple[str, str, str], MemCacheStrategy] = {}
_token_caches_lock = threading.Lock()


def _token_cache(api_url: str, app_id: str, private_key: str) -> MemCacheStrategy:
    """githubkit keeps JWTs and installation tokens in its cache under keys made of the App ID
    and installation ID alone, in one cache for the whole process by default. One cache per API
    URL, App ID and key keeps two GitHub hosts (or an old and a new key) apart."""
    fingerprint = hashlib.sha256(private_key.encode()).hexdigest()
    with _token_caches_lock:
        return _token_caches.setdefault((api_url, app_id, fingerprint), MemCacheStrategy())


class _AppAuth(AppAuth):
    """githubkit's App auth flow, able to sign requests for paths that hold ``#`` or ``?``.

    To tell App routes (JWT) from installation routes (token), githubkit rebuilds the request
    path with ``httpx.URL(path=url.path)``; ``url.path`` is percent-decoded, so a file named
    ``a#b`` makes that raise InvalidURL. Reading the still-encoded ``raw_path`` avoids it.
    """

    def _get_api_route(self, url: httpx.URL) -> httpx.URL:
        base = self.github.config.base_url.raw_path
        raw = url.raw_path.partition(b"?")[0]
        if raw.startswith(base):
            raw = b"/" + raw[len(base) :]
        return httpx.URL(raw.decode("ascii"))


@dataclasses.dataclass
class _InstallationAuthStrategy(AppInstallationAuthStrategy):
    def get_auth_flow(self, github: GitHubCore[Any]) -> httpx.Auth:
        flow = super().get_auth_flow(github)
        assert isinstance(flow, AppAuth)
        return _AppAuth(**{field.name: getattr(flow, field.name) for field in dataclasses.fields(flow)})


def _options(api_url: str, retry: RetryPolicy | None, timeout: float) -> dict[str, Any]:
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


def _read_private_key(settings: Settings) -> str:
    if settings.github_private_key is not None and settings.github_private_key.get_secret_value().strip():
        text = settings.github_private_key.get_secret_value().strip()
        if "\n" not in text and "\\n" in text:  # a PEM squeezed onto one line of a .env file
            text = text.replace("\\n", "\n")
        _check_pem(text, "REVIEWBOT_GITHUB_PRIVATE_KEY")
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
    _check_pem(text, variable)
    return text.strip()


@functools.lru_cache(maxsize=8)  # loading an RSA key checks it, ~50 ms; a worker reads it for every job
def _check_pem(text: str, variable: str) -> None:
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


def _split_repo(repo: str) -> tuple[str, str]:
    owner, _, name = repo.partition("/")
    if not owner or not name or "/" in name:
        raise ConfigError(f"{repo!r} is not a repository name of the form owner/name")
    return owner, name


# -- retries ----------------------------------------------------------------------------------

_no_server_retry_var: ContextVar[bool] = ContextVar("reviewbot_github_no_server_retry", default=False)


@contextmanager
def _no_server_retry() -> Iterator[None]:
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
        message, _ = _error_body(exc.response.raw_response)
        if exc.response.status_code == 429 or _SECONDARY.search(message):
            return SECONDARY_DEFAULT_WAIT * 2.0**retry_count
    return None


# -- errors -----------------------------------------------------------------------------------


def translate(exc: GitHubException) -> GitHubError:
    """Our error for one of githubkit's. The message names the request, never a credential."""
    # githubkit wraps an error raised while fetching the installation token (inside httpx's
    # auth flow) in a plain RequestError: look at the error inside.
    while type(exc) is RequestError and isinstance(exc.exc, GitHubException):
        exc = exc.exc
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
    message, errors = _error_body(raw)
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


def _error_body(response: httpx.Response) -> tuple[str, tuple[str, ...]]:
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


# -- JSON → our records -----------------------------------------------------------------------


def _posted_review(item: PullRequestReviewTypeForResponse) -> PostedReview:
    user = item.get("user")
    return PostedReview(
        id=item["id"],
        user_login=user["login"] if user else "",
        state=item["state"],
        commit_id=item.get("commit_id"),
        body=item.get("body") or "",
    )


def _posted_comment(item: PullRequestReviewCommentTypeForResponse) -> PostedComment:
    user = item.get("user")
    return PostedComment(
        id=item["id"],
        user_login=user["login"] if user else "",
        path=item["path"],
        line=item.get("line"),
        side=Side(item.get("side") or "RIGHT"),
        body=item["body"],
        commit_id=item["commit_id"],
    )


def _comment_json(comment: ReviewComment) -> ReposOwnerRepoPullsPullNumberReviewsPostBodyPropCommentsItemsType:
    item: ReposOwnerRepoPullsPullNumberReviewsPostBodyPropCommentsItemsType = {
        "path": comment.path,
        "body": comment.body,
        "line": comment.line,
        "side": str(comment.side),
    }
    if comment.start_line is not None and comment.start_line != comment.line:
        item["start_line"] = comment.start_line
        item["start_side"] = str(comment.start_side or comment.side)
    return item


# -- a git diff from the files API ------------------------------------------------------------


def rebuild_diff(entries: Sequence[Mapping[str, Any]]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A git-style diff from ``GET /pulls/{n}/files`` entries, and the files it had to leave out.

    Each entry's ``patch`` starts at its first ``@@`` line; the file headers git would print
    before it are written here. Entries without a patch are left out (binary files and files
    too large for GitHub to show), except renames and copies with no change, which need none.
    """
    parts: list[str] = []
    omitted: list[tuple[str, str]] = []
    for entry in entries:
        new = str(entry["filename"])
        status = str(entry["status"])
        old = str(entry.get("previous_filename") or new)
        patch = entry.get("patch")
        moved = status in ("renamed", "copied")
        if not patch and not (moved and not entry.get("changes")):
            omitted.append((new, NO_PATCH))
            continue
        lines = [f"diff --git {quote_path('a/' + old)} {quote_path('b/' + new)}"]
        if status == "added":
            lines.append("new file mode 100644")
        elif status == "removed":
            lines.append("deleted file mode 100644")
        elif moved:
            kind = "rename" if status == "renamed" else "copy"
            if not entry.get("changes"):
                lines.append("similarity index 100%")
            lines += [f"{kind} from {quote_path(old)}", f"{kind} to {quote_path(new)}"]
        if patch:
            minus = "/dev/null" if status == "added" else quote_path("a/" + old)
            plus = "/dev/null" if status == "removed" else quote_path("b/" + new)
            lines += [_file_line("---", minus), _file_line("+++", plus)]
            lines.append(patch if patch.endswith("\n") else patch + "\n")
            parts.append("\n".join(lines))
        else:
            parts.append("\n".join(lines) + "\n")
    return "".join(parts), tuple(omitted)


def _file_line(marker: str, name: str) -> str:
    # git ends a ---/+++ line with a tab when the name holds a space, so patch(1) reads it whole.
    return f"{marker} {name}\t" if " " in name else f"{marker} {name}"


_C_ESCAPES: Final = {0x07: "\\a", 0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0B: "\\v", 0x0C: "\\f", 0x0D: "\\r"}


def quote_path(path: str) -> str:
    """A path as git prints it (``quote_c_style`` with ``core.quotePath`` on): in double quotes,
    with C escapes and octal UTF-8 bytes, when it holds a quote, a backslash, a control
    character or anything outside ASCII; unchanged otherwise."""
    data = path.encode("utf-8", errors="surrogateescape")
    if all(0x20 <= byte < 0x7F and byte not in (0x22, 0x5C) for byte in data):
        return path
    out = ['"']
    for byte in data:
        if byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        elif byte in _C_ESCAPES:
            out.append(_C_ESCAPES[byte])
        elif byte < 0x20 or byte >= 0x7F:
            out.append(f"\\{byte:03o}")
        else:
            out.append(chr(byte))
    out.append('"')
    return "".join(out)


__all__ = [
    "DiffFetch",
    "GitHubClient",
    "PostedComment",
    "PostedReview",
    "PullRequest",
    "ReadRetry",
    "RetryPolicy",
    "ReviewComment",
    "quote_path",
    "rate_limit_wait",
    "rebuild_diff",
    "translate",
]
