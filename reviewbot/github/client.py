"""The GitHub REST client the review service uses: :class:`GitHubClient`, one App installation
or one personal token, built on githubkit."""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncGenerator, Awaitable, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar
from urllib.parse import quote

from githubkit import GitHub, Response, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException
from githubkit.rest import Paginator

from reviewbot.engine.diff import decode
from reviewbot.errors import ConfigError, GitHubAuthError, GitHubError, GitHubNotFound
from reviewbot.github.auth import InstallationAuthStrategy, read_private_key, token_cache
from reviewbot.github.connection import VERSION_HEADER, client_options
from reviewbot.github.draft import ReviewComment
from reviewbot.github.errors import translate
from reviewbot.github.pulls import (
    MAX_DIFF_FILES,
    MAX_DIFF_LINES,
    MAX_LISTED_FILES,
    DiffFetch,
    PullRequest,
    rebuild_diff,
)
from reviewbot.github.retry import RetryPolicy, no_server_retry
from reviewbot.github.reviews import PostedComment, PostedReview, comment_json, posted_comment, posted_review
from reviewbot.repos import split_repo

if TYPE_CHECKING:
    from githubkit_schemas.v2026_03_10.types import (
        DiffEntryTypeForResponse,
        PullRequestReviewCommentTypeForResponse,
        PullRequestReviewTypeForResponse,
    )

    from reviewbot.settings import Settings

T = TypeVar("T")

DIFF_MEDIA_TYPE: Final = "application/vnd.github.diff"
RAW_MEDIA_TYPE: Final = "application/vnd.github.raw"


# -- the client -------------------------------------------------------------------------------


# An App's slug never changes while it runs, and a client is made per job: ask GitHub once.
_APP_SLUGS: dict[tuple[str, str], str] = {}


class GitHubClient:
    """An async GitHub REST client for one App installation or one personal token.

    Use it as an async context manager (one connection pool for all requests), or call
    :meth:`aclose` when done. Build it with :meth:`for_installation` or :meth:`with_token`.

    Requests go through githubkit's typed REST methods; answers are read as githubkit's typed
    dictionaries (``Response.json()``), not validated into its pydantic models, so a field that a
    GitHub Enterprise Server release spells differently cannot break a review. Every request pins
    ``X-GitHub-Api-Version: 2022-11-28`` (see :mod:`reviewbot.github.connection`).

    Errors come out as :class:`~reviewbot.errors.GitHubError` subclasses. GET requests are retried
    by githubkit's retry hook with our own decision function: rate limits are waited out when the
    wait is short (``retry-after``, or ``x-ratelimit-reset`` when ``x-ratelimit-remaining`` is 0),
    5xx answers, timeouts and broken connections are retried with backoff. POST and DELETE are never
    retried here: after a failed :meth:`create_review` the caller must look whether the review
    landed before it tries again.
    """

    def __init__(
        self,
        github: GitHub[Any],
        *,
        is_app: bool,
        app_slug: str | None = None,
        app_key: tuple[str, str] | None = None,
        integration_login: str | None = None,
    ) -> None:
        self._github = github
        self._is_app = is_app
        self._integration_login = integration_login
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
        private_key = read_private_key(settings)
        api_url = settings.github_api_url
        strategy = InstallationAuthStrategy(settings.github_app_id, private_key, installation_id)
        github = GitHub(
            strategy,
            **client_options(api_url, retry, timeout),
            cache_strategy=token_cache(api_url, settings.github_app_id, private_key),
        )
        return cls(github, is_app=True, app_slug=settings.github_app_slug, app_key=(api_url, settings.github_app_id))

    @classmethod
    def with_token(
        cls,
        token: str,
        api_url: str,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        integration_login: str | None = None,
    ) -> GitHubClient:
        """A client acting with a personal access token (``reviewbot review --pr``), or with an
        integration's installation token such as a workflow's ``GITHUB_TOKEN``: such a token may not
        read ``GET /user``, and its reviews appear under ``integration_login``."""
        if not token.strip():
            raise ConfigError("the GitHub token is empty; set REVIEWBOT_GITHUB_TOKEN or GITHUB_TOKEN")
        github = GitHub(
            TokenAuthStrategy(token.strip()),
            **client_options(api_url.rstrip("/"), retry, timeout),
            cache_strategy=MemCacheStrategy(),
        )
        return cls(github, is_app=False, integration_login=integration_login)

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
            response = await self._call(self._github.rest.apps.async_get_authenticated(headers=VERSION_HEADER))
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
        try:
            response = await self._call(self._github.rest.users.async_get_authenticated(headers=VERSION_HEADER))
        except GitHubAuthError as exc:
            # An installation token answers 403 "Resource not accessible by integration" here.
            if exc.status == 403 and self._integration_login is not None:
                return self._integration_login
            raise
        return response.json()["login"]

    # -- pull requests --------------------------------------------------------------------

    async def get_pull(self, repo: str, number: int) -> PullRequest:
        owner, name = _split_repo(repo)
        response = await self._call(self._github.rest.pulls.async_get(owner, name, number, headers=VERSION_HEADER))
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
        headers = {**VERSION_HEADER, "Accept": DIFF_MEDIA_TYPE}
        try:
            with no_server_retry():
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
            headers=VERSION_HEADER,
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
        headers = {**VERSION_HEADER, "Accept": DIFF_MEDIA_TYPE}
        try:
            with no_server_retry():
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

    async def get_file(self, repo: str, path: str, ref: str, *, max_bytes: int | None = None) -> bytes | None:
        """A file's bytes at ``ref``; None when there is no such file (or it is a directory), or
        when it is larger than ``max_bytes`` (then its bytes are never fetched)."""
        owner, name = _split_repo(repo)
        url_path = quote(path.lstrip("/"), safe="/")
        try:
            response = await self._call(
                self._github.rest.repos.async_get_content(owner, name, url_path, ref=ref, headers=VERSION_HEADER)
            )
        except GitHubNotFound:
            return None
        data = response.json()
        if isinstance(data, list) or data.get("type") != "file":
            return None
        size = data.get("size")
        if max_bytes is not None and isinstance(size, int) and size > max_bytes:
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
                owner, name, url_path, ref=ref, headers={**VERSION_HEADER, "Accept": RAW_MEDIA_TYPE}
            )
        )
        return raw.content

    # -- reviews --------------------------------------------------------------------------

    async def list_reviews(self, repo: str, number: int) -> list[PostedReview]:
        owner, name = _split_repo(repo)

        def page(response: Response[Any, list[PullRequestReviewTypeForResponse]]) -> list[PostedReview]:
            return [posted_review(item) for item in response.json()]

        paginator = self._github.rest.paginate(
            self._github.rest.pulls.async_list_reviews, page, owner, name, number, per_page=100, headers=VERSION_HEADER
        )
        return [review async for review in self._iterate(paginator)]

    async def list_review_comments(self, repo: str, number: int) -> list[PostedComment]:
        owner, name = _split_repo(repo)

        def page(response: Response[Any, list[PullRequestReviewCommentTypeForResponse]]) -> list[PostedComment]:
            return [posted_comment(item) for item in response.json()]

        paginator = self._github.rest.paginate(
            self._github.rest.pulls.async_list_review_comments,
            page,
            owner,
            name,
            number,
            per_page=100,
            headers=VERSION_HEADER,
        )
        return [comment async for comment in self._iterate(paginator)]

    async def delete_pending_review(self, repo: str, number: int, review_id: int) -> None:
        """Delete a review that was never submitted (GitHub refuses others with 422); one already
        gone (404: another run deleted it meanwhile) is what was wanted."""
        owner, name = _split_repo(repo)
        try:
            await self._call(
                self._github.rest.pulls.async_delete_pending_review(
                    owner, name, number, review_id, headers=VERSION_HEADER
                )
            )
        except GitHubNotFound:
            return

    async def create_review(
        self, repo: str, number: int, *, commit_id: str, body: str, comments: Sequence[ReviewComment]
    ) -> int:
        """Post one submitted review (event COMMENT) with inline comments; return its id.

        GitHub refuses the whole review with 422 (:class:`GitHubUnprocessable`) if a single
        comment is off the diff. Never retried here: on :class:`GitHubTransient` the review may
        have been stored all the same, so look with :meth:`list_reviews` before posting again.
        """
        owner, name = _split_repo(repo)
        items = [comment_json(comment) for comment in comments]
        response = await self._call(
            self._github.rest.pulls.async_create_review(
                owner,
                name,
                number,
                headers=VERSION_HEADER,
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


def _split_repo(repo: str) -> tuple[str, str]:
    # Every path the client builds from a repository name goes through here: the last check.
    return split_repo(repo)


__all__ = ["GitHubClient"]
