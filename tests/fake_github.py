"""A fake GitHub REST API for tests: the parts reviewbot uses, behaving like GitHub where it matters.

A Starlette app served by uvicorn on 127.0.0.1 in a background thread, so the real githubkit
client talks to it over loopback. Also served under ``/api/v3`` like GitHub Enterprise Server.

    server = FakeGitHub()
    server.start()
    server.add_pull("octo/app", 7, diff_text, title="Fix", body="", head_sha=HEAD, base_sha=BASE)
    server.push(Fault.secondary_rate_limit("GET", "/repos/octo/app/pulls/7"))
    ...  # GitHubClient.for_installation(settings pointing at server.api_url, 42)
    server.review_count("octo/app", 7, HEAD)
    server.stop()

What it checks like GitHub does:

- ``GET /app`` and ``POST /app/installations/{id}/access_tokens`` need ``Authorization: Bearer``
  with a JWT signed RS256 by the App's key, ``iss`` = the App ID, a valid ``iat``/``exp`` at
  most 10 minutes apart; the token issued (``ghs_…``) expires an hour later. Every other route
  needs such a token (``token …`` or ``Bearer …``) or a personal token added with
  :meth:`FakeGitHub.add_personal_token` or a workflow's ``GITHUB_TOKEN`` added with
  :meth:`FakeGitHub.add_workflow_token`; otherwise 401 ``Bad credentials``. A token revoked with
  :meth:`FakeGitHub.revoke_tokens` gets that 401 too.
- A workflow token acts as ``github-actions[bot]``: ``GET /user`` answers 403 "Resource not
  accessible by integration", as for any installation token, and so does every write when the
  token is read-only (a fork's pull request).
- ``GET /repos/{o}/{r}/pulls/{n}`` with ``Accept: application/vnd.github.diff`` (or ``.v3.diff``)
  answers the diff, or 406 with GitHub's "too_large" error past 300 files or 20,000 lines.
- ``POST …/pulls/{n}/reviews`` refuses the whole review with 422 when one comment is off the diff
  of its commit (RIGHT: a new-file number of an added or context line; LEFT: an old-file number
  of a removed or context line), when ``start_line`` is not before ``line``, on another side or
  in another hunk, when the path is not in the diff, when ``commit_id`` is no head of the pull
  request, or while the user has a pending review there. Nothing is stored then.
- A review without ``event`` is PENDING; only its author sees it, and only it can be deleted.
- ``POST /app-manifests/{code}/conversions`` needs no credentials; a code from
  :meth:`FakeGitHub.register_app` works once, within an hour, and returns this server's App (its
  ID, slug, key and webhook secret); any other code gets 404.
- ``GET /meta`` needs no credentials and answers GitHub's address lists (``hooks``, ``web``,
  ``api``, ``git``, …) and ``domains``; ``hooks``, where webhooks come from, is
  :attr:`FakeGitHub.hooks` (left out of the answer when it is None). Under ``/api/v3`` it answers
  as GitHub Enterprise Server documents its own: ``installed_version`` and
  ``verifiable_password_authentication``, and no address lists at all. With
  :attr:`FakeGitHub.enterprise_private_mode`, every request under ``/api/v3`` needs credentials,
  as on a GitHub Enterprise Server in private mode: without them, 401.

Latency: :meth:`FakeGitHub.set_latency` makes every request take that long, as a far-away
GitHub does (about 250 ms is common): half before the request is carried out and half after,
so a review POSTed shows up for other requests midway through its answer, as on a real server
where the answer travels back after the work is done. A fault's delay comes on top.

Faults (:class:`Fault`) are queued with :meth:`FakeGitHub.push` and each is used once, by the
first request whose method and path (an ``fnmatch`` pattern, without the ``/api/v3`` prefix)
match, in queue order.

Installation tokens outlive :meth:`FakeGitHub.reset`, as real ones outlive a test: githubkit
keeps them in a cache shared by clients in the process. Use a new installation ID in a test
that counts token requests.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from loopback import LoopbackServer
from reviewbot.engine.diff import Diff, DiffFile, FileStatus, Side, parse_diff

APP_SLUG: Final = "reviewbot-test"
APP_ID: Final = 123456
#: The login a GitHub Actions run's ``GITHUB_TOKEN`` acts as.
WORKFLOW_LOGIN: Final = "github-actions[bot]"
WEB: Final = "https://github.com"
#: Larger files are served by the contents API without their content.
CONTENTS_INLINE_LIMIT: Final = 1024 * 1024
DOCS: Final = "https://docs.github.com/rest"
MAX_DIFF_FILES: Final = 300
MAX_DIFF_LINES: Final = 20_000
MAX_LISTED_FILES: Final = 3_000
TOKEN_LIFETIME: Final = timedelta(hours=1)
#: github.com's webhook ranges when this was written (GET /meta changes them from time to time).
GITHUB_HOOKS: Final = (
    "192.30.252.0/22",
    "185.199.108.0/22",
    "140.82.112.0/20",
    "143.55.64.0/20",
    "2a0a:a440::/29",
    "2606:50c0::/32",
)

# What GitHub answers, in its own words.
LINE_NOT_IN_DIFF: Final = "Line could not be resolved"
PATH_NOT_IN_DIFF: Final = "Path could not be resolved"
START_NOT_BEFORE_LINE: Final = "pull_request_review_thread.start_line must precede the end line."
START_OTHER_HUNK: Final = "Pull request review thread start line must be part of the same hunk as the line."
START_OTHER_SIDE: Final = "pull_request_review_thread.start_side must be the same as side"
ONE_PENDING: Final = "User can only have one pending review per pull request"
COMMIT_NOT_IN_PULL: Final = "commit_id is not part of the pull request"
BODY_REQUIRED: Final = "Body is required for a review with event COMMENT or REQUEST_CHANGES"
OWN_PULL: Final = "Can not approve your own pull request"
NOT_PENDING: Final = "Can not delete a non-pending pull request review"
SECONDARY_MESSAGE: Final = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID."
)
PRIMARY_MESSAGE: Final = (
    "API rate limit exceeded for installation. If you reach out to GitHub Support for help, "
    "please include the request ID."
)
TOO_MANY_FILES: Final = (
    "Sorry, the diff exceeded the maximum number of files (300). Consider using "
    "'List pull requests files' API or locally cloning the repository instead."
)
TOO_MANY_LINES: Final = (
    "Sorry, the diff exceeded the maximum number of lines (20000). Consider using "
    "'List pull requests files' API or locally cloning the repository instead."
)
_STATUS_MESSAGES: Final = {
    400: "Bad Request",
    401: "Bad credentials",
    403: "Forbidden",
    404: "Not Found",
    406: "Not Acceptable",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_EVENTS: Final = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}


# -- faults -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour for the first request matching ``method`` and ``path``.

    ``status`` None means: answer as usual (after ``delay``). With ``after_success`` the request
    is carried out (a review is stored) and only then answered with ``status``.
    ``accept`` limits the fault to requests whose Accept header contains it (e.g. "diff").
    """

    method: str
    path: str
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0
    after_success: bool = False
    accept: str | None = None
    meanwhile: Callable[[], None] | None = field(default=None, compare=False)

    @classmethod
    def error(
        cls,
        method: str,
        path: str,
        status: int,
        *,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        accept: str | None = None,
    ) -> Fault:
        """Answer ``status`` with GitHub's error JSON."""
        return cls(method, path, status, dict(headers or {}), _error_body(status, message), accept=accept)

    @classmethod
    def secondary_rate_limit(cls, method: str, path: str, *, retry_after: int | None = 1, status: int = 403) -> Fault:
        """GitHub's secondary rate limit: 403 with its message and (usually) ``retry-after``."""
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return cls.error(method, path, status, message=SECONDARY_MESSAGE, headers=headers)

    @classmethod
    def primary_rate_limit(cls, method: str, path: str, *, reset_in: float = 1.0, status: int = 403) -> Fault:
        """GitHub's primary rate limit: ``x-ratelimit-remaining: 0`` and the reset time."""
        headers = {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": "5000",
            "x-ratelimit-reset": str(int(time.time() + reset_in)),
            "x-ratelimit-resource": "core",
        }
        return cls.error(method, path, status, message=PRIMARY_MESSAGE, headers=headers)

    @classmethod
    def while_answering(cls, method: str, path: str, action: Callable[[], None], *, accept: str | None = None) -> Fault:
        """Run ``action`` once the request has arrived and before it is answered: something that
        happens elsewhere while the request is in flight (a push, a webhook delivered)."""
        return cls(method, path, accept=accept, meanwhile=action)

    @classmethod
    def slow(cls, method: str, path: str, seconds: float) -> Fault:
        """Wait ``seconds``, then answer as usual."""
        return cls(method, path, delay=seconds)

    @classmethod
    def succeed_then(cls, method: str, path: str, status: int = 502) -> Fault:
        """Carry the request out, then answer ``status`` as if it had failed."""
        return cls(method, path, status, {}, _error_body(status, None), after_success=True)

    def matches(self, method: str, path: str, accept: str) -> bool:
        if self.method != "*" and self.method.upper() != method:
            return False
        if self.accept is not None and self.accept not in accept:
            return False
        return fnmatch.fnmatchcase(path, self.path)


# -- recorded state ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as the server saw it (path without the ``/api/v3`` prefix)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    received_at: float


@dataclass(slots=True)
class _FileEntry:
    """One file of a pull request, as the files API lists it."""

    filename: str
    previous_filename: str | None
    status: str
    additions: int
    deletions: int
    patch: str | None


@dataclass(slots=True)
class _Head:
    """What a pull request looked like at one head commit."""

    sha: str
    diff_bytes: bytes
    diff: Diff
    files: list[_FileEntry]
    # path → (side, line number) → hunk index
    lines: dict[str, dict[tuple[Side, int], int]]

    @property
    def additions(self) -> int:
        return sum(entry.additions for entry in self.files)

    @property
    def deletions(self) -> int:
        return sum(entry.deletions for entry in self.files)


@dataclass(slots=True)
class _Pull:
    repo: str
    number: int
    id: int
    title: str
    body: str | None
    state: str
    draft: bool
    merged: bool
    author: str
    head_ref: str
    base_ref: str
    base_sha: str
    head: _Head
    heads: dict[str, _Head]


@dataclass(slots=True)
class _Comment:
    id: int
    review_id: int
    path: str
    line: int
    side: str
    start_line: int | None
    start_side: str | None
    body: str
    commit_id: str


@dataclass(slots=True)
class _Review:
    id: int
    repo: str
    number: int
    user: str
    user_type: str
    state: str
    body: str
    commit_id: str
    submitted_at: str | None
    comments: list[_Comment]


class _Reply(Exception):
    """Raised inside a handler to answer at once."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


# -- the server -------------------------------------------------------------------------------


class FakeGitHub:
    """The server and its controller. ``start()`` once, ``reset()`` between tests, ``stop()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_key = key.public_key()
        self.private_key_pem: str = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.app_id: int = APP_ID
        self.app_slug: str = APP_SLUG
        self.webhook_secret: str = "fake-webhook-secret-" + secrets.token_hex(8)
        self.port = 0
        self._tokens: dict[str, tuple[int, datetime]] = {}  # installation token → (installation, expiry)
        # GitHub may refuse a token it has just issued until its replicas know it: each new token
        # is answered 401 for its first ``new_token_lag`` requests.
        self.new_token_lag = 0
        self._lagging: dict[str, int] = {}
        self._loopback = LoopbackServer("fake-github")
        self._clear()

    def _clear(self) -> None:
        self.new_token_lag = 0
        self._pulls: dict[tuple[str, int], _Pull] = {}
        self._files: dict[tuple[str, str, str], bytes] = {}
        self._compares: dict[tuple[str, str, str], bytes] = {}
        self._reviews: list[_Review] = []
        self._personal_tokens: dict[str, str] = {}
        self._workflow_tokens: dict[str, bool] = {}  # token → may it write
        self._faults: deque[Fault] = deque()
        self._requests: list[RecordedRequest] = []
        self._next_id = 1000
        self._latency = 0.0
        self.default_branch = "main"
        self._manifest_codes: dict[str, tuple[dict[str, Any], float]] = {}  # code → (manifest, expiry)
        self.hooks: list[str] | None = list(GITHUB_HOOKS)  # GET /meta's webhook ranges
        self.enterprise_private_mode = False  # /api/v3 refuses requests without credentials
        self.manifests: list[dict[str, Any]] = []  # registered with register_app, oldest first

    # -- the controller -------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The REST API base URL, like https://api.github.com."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def enterprise_api_url(self) -> str:
        """The same API under GitHub Enterprise Server's ``/api/v3`` prefix."""
        return f"{self.api_url}/api/v3"

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request since the last reset, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """The recorded requests whose method is ``method`` and path matches the pattern ``path``."""
        return [r for r in self.requests if r.method == method.upper() and fnmatch.fnmatchcase(r.path, path)]

    def reset(self) -> None:
        """Forget pull requests, files, reviews, faults, personal tokens, requests and the latency."""
        with self._lock:
            self._clear()

    def set_latency(self, seconds: float) -> None:
        """Make every request take ``seconds``: half before it is carried out, half after."""
        with self._lock:
            self._latency = seconds

    def push(self, *faults: Fault) -> None:
        """Queue faults; each is used by the first request it matches."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def add_personal_token(self, token: str, login: str = "octocat") -> None:
        with self._lock:
            self._personal_tokens[token] = login

    def add_workflow_token(self, token: str, *, writable: bool = True) -> None:
        """A GitHub Actions run's ``GITHUB_TOKEN``; a fork's pull request gets a read-only one."""
        with self._lock:
            self._workflow_tokens[token] = writable

    def revoke_tokens(self, installation_id: int | None = None) -> int:
        """Revoke the installation tokens issued so far (one installation's, or all), as GitHub
        does when a token is revoked (``DELETE /installation/token``) or the App's access changes:
        a request with one is answered 401 ``Bad credentials``, and a new token from
        ``POST /app/installations/{id}/access_tokens`` works. Returns how many were revoked."""
        with self._lock:
            revoked = [token for token, (owner, _) in self._tokens.items() if installation_id in (None, owner)]
            for token in revoked:
                del self._tokens[token]
        return len(revoked)

    def add_pull(
        self,
        repo: str,
        number: int,
        diff_text: str | bytes,
        *,
        title: str = "A change",
        body: str | None = "",
        head_sha: str,
        base_sha: str,
        draft: bool = False,
        state: str = "open",
        merged: bool = False,
        author: str = "octocat",
        head_ref: str = "feature",
        base_ref: str = "main",
        files_patch_overrides: Mapping[str, str | None] | None = None,
    ) -> None:
        """Add a pull request, or move an existing one to a new head (older heads stay known).

        ``changed_files``, ``additions``, ``deletions`` and the files API's list come from the
        diff; ``files_patch_overrides`` replaces a file's ``patch`` (None: GitHub sent none).
        """
        head = _make_head(head_sha, diff_text, files_patch_overrides or {})
        with self._lock:
            old = self._pulls.get((repo, number))
            heads = dict(old.heads) if old else {}
            heads[head_sha] = head
            self._pulls[(repo, number)] = _Pull(
                repo=repo,
                number=number,
                id=old.id if old else self._new_id(),
                title=title,
                body=body,
                state=state,
                draft=draft,
                merged=merged,
                author=author,
                head_ref=head_ref,
                base_ref=base_ref,
                base_sha=base_sha,
                head=head,
                heads=heads,
            )

    def set_file(self, repo: str, ref: str, path: str, content: str | bytes) -> None:
        data = content.encode() if isinstance(content, str) else content
        with self._lock:
            self._files[(repo, ref, path)] = data

    def set_compare(self, repo: str, base: str, head: str, diff_text: str | bytes) -> None:
        data = diff_text.encode() if isinstance(diff_text, str) else diff_text
        with self._lock:
            self._compares[(repo, base, head)] = data

    def reviews(self, repo: str, number: int) -> list[dict[str, Any]]:
        """Every stored review of the pull request, pending ones too, as GitHub's JSON."""
        with self._lock:
            return [self._review_json(r) for r in self._reviews if (r.repo, r.number) == (repo, number)]

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        """Every stored review comment of the pull request, as GitHub's JSON."""
        with self._lock:
            return [
                self._comment_json(r, c)
                for r in self._reviews
                if (r.repo, r.number) == (repo, number)
                for c in r.comments
            ]

    def review_count(self, repo: str, number: int, commit_id: str) -> int:
        """Submitted (not pending) reviews of the pull request on ``commit_id``."""
        with self._lock:
            return sum(
                1
                for r in self._reviews
                if (r.repo, r.number, r.commit_id) == (repo, number, commit_id) and r.state != "PENDING"
            )

    def add_review(
        self,
        repo: str,
        number: int,
        *,
        user: str,
        state: str = "COMMENTED",
        body: str = "",
        commit_id: str | None = None,
    ) -> int:
        """Store a review as if ``user`` had made it (e.g. a PENDING one left by a crash)."""
        with self._lock:
            pull = self._pulls[(repo, number)]
            review = _Review(
                id=self._new_id(),
                repo=repo,
                number=number,
                user=user,
                user_type="Bot" if user.endswith("[bot]") else "User",
                state=state,
                body=body,
                commit_id=commit_id or pull.head.sha,
                submitted_at=None if state == "PENDING" else _now(),
                comments=[],
            )
            self._reviews.append(review)
            return review.id

    def register_app(self, manifest: Mapping[str, Any] | str) -> str:
        """What GitHub does when someone clicks "Create GitHub App" on a manifest: check it,
        and return the code it sends to the manifest's ``redirect_url``."""
        data = json.loads(manifest) if isinstance(manifest, str) else dict(manifest)
        hook = data.get("hook_attributes")
        if not isinstance(data.get("url"), str) or (hook is not None and not isinstance(hook.get("url"), str)):
            raise ValueError("a manifest needs url and hook_attributes.url")
        code = secrets.token_hex(20)
        with self._lock:
            self.manifests.append(data)
            self._manifest_codes[code] = (data, time.monotonic() + TOKEN_LIFETIME.total_seconds())
        return code

    # -- the server's life ----------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Serve in a background thread; return once the server accepts connections."""
        self._loopback.start(self.app(), timeout)
        self.port = self._loopback.port

    def stop(self, timeout: float = 10.0) -> None:
        self._loopback.stop(timeout)

    def __enter__(self) -> FakeGitHub:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the app --------------------------------------------------------------------------

    def app(self) -> Starlette:
        routes = [
            Route("/app", self._handler(self._get_app, jwt_auth=True), methods=["GET"]),
            Route(
                "/app/installations/{installation_id:int}/access_tokens",
                self._handler(self._create_token, jwt_auth=True),
                methods=["POST"],
            ),
            Route(
                "/app-manifests/{code}/conversions",
                self._handler(self._convert_manifest, public=True),
                methods=["POST"],
            ),
            Route("/meta", self._handler(self._get_meta, public=True), methods=["GET"]),
            Route("/user", self._handler(self._get_user), methods=["GET"]),
            Route("/repos/{owner}/{repo}/pulls/{number:int}", self._handler(self._get_pull), methods=["GET"]),
            Route("/repos/{owner}/{repo}/pulls/{number:int}/files", self._handler(self._list_files), methods=["GET"]),
            Route(
                "/repos/{owner}/{repo}/pulls/{number:int}/reviews",
                self._handler(self._reviews_route),
                methods=["GET", "POST"],
            ),
            Route(
                "/repos/{owner}/{repo}/pulls/{number:int}/reviews/{review_id:int}",
                self._handler(self._review_route),
                methods=["GET", "DELETE"],
            ),
            Route(
                "/repos/{owner}/{repo}/pulls/{number:int}/comments", self._handler(self._list_comments), methods=["GET"]
            ),
            Route("/repos/{owner}/{repo}/compare/{basehead:path}", self._handler(self._compare), methods=["GET"]),
            Route("/repos/{owner}/{repo}/contents/{path:path}", self._handler(self._contents), methods=["GET"]),
        ]
        return Starlette(routes=[Mount("/api/v3", routes=list(routes)), *routes])

    def _handler(self, handle: Any, *, jwt_auth: bool = False, public: bool = False) -> Any:
        async def endpoint(request: Request) -> Response:
            path = request.url.path.removeprefix("/api/v3")
            body = await request.body()
            try:
                payload = json.loads(body) if body else None
            except ValueError:
                payload = None
            accept = request.headers.get("accept", "")
            with self._lock:
                self._requests.append(
                    RecordedRequest(
                        request.method,
                        path,
                        dict(request.query_params),
                        dict(request.headers),
                        payload,
                        time.monotonic(),
                    )
                )
                fault = next((f for f in self._faults if f.matches(request.method, path, accept)), None)
                if fault is not None:
                    self._faults.remove(fault)
                half_latency = self._latency / 2
            if half_latency:
                await asyncio.sleep(half_latency)
            if fault is not None and fault.delay:
                await asyncio.sleep(fault.delay)
            if fault is not None and fault.meanwhile is not None:
                await asyncio.to_thread(fault.meanwhile)
            if fault is not None and fault.status is not None and not fault.after_success:
                response: Response = _json(fault.body, fault.status, fault.headers)
            else:
                try:
                    # A private-mode server asks credentials of everyone.
                    private = self.enterprise_private_mode and request.url.path.startswith("/api/v3/")
                    anyone = public and not private
                    actor = "" if anyone else self._check_jwt(request) if jwt_auth else self._check_token(request)
                    with self._lock:
                        response = handle(request, path, actor, payload)
                except _Reply as reply:
                    response = reply.response
                if fault is not None and fault.status is not None:
                    response = _json(fault.body, fault.status, fault.headers)
            if half_latency:
                await asyncio.sleep(half_latency)
            return response

        return endpoint

    # -- authentication -------------------------------------------------------------------

    def _check_jwt(self, request: Request) -> str:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential:
            raise _Reply(_json(_error_body(401, "A JSON web token could not be decoded"), 401))
        try:
            claims = jwt.decode(
                credential,
                self._public_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"], "verify_iss": False},
                leeway=60,
            )
        except jwt.PyJWTError:
            raise _Reply(_json(_error_body(401, "A JSON web token could not be decoded"), 401)) from None
        if str(claims["iss"]) != str(self.app_id):
            raise _Reply(_json(_error_body(401, "A JSON web token could not be decoded"), 401))
        if int(claims["exp"]) - int(claims["iat"]) > 600:
            message = "'Expiration time' claim ('exp') is too far in the future"
            raise _Reply(_json(_error_body(401, message), 401))
        return self.app_slug

    def _check_token(self, request: Request) -> str:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() in ("token", "bearer") and credential:
            with self._lock:
                if credential in self._personal_tokens:
                    return self._personal_tokens[credential]
                if credential in self._workflow_tokens:
                    if request.method not in ("GET", "HEAD") and not self._workflow_tokens[credential]:
                        raise _Reply(_json(_error_body(403, "Resource not accessible by integration"), 403))
                    return WORKFLOW_LOGIN
                issued = self._tokens.get(credential)
                lagging = self._lagging.get(credential, 0)
                if lagging:
                    self._lagging[credential] = lagging - 1
            if issued is not None and issued[1] > datetime.now(UTC) and not lagging:
                return self.bot_login
        raise _Reply(_json(_error_body(401, "Bad credentials"), 401))

    # -- handlers (called with the lock held) ---------------------------------------------

    def _get_app(self, request: Request, path: str, actor: str, payload: Any) -> Response:
        return _json(
            {
                "id": self.app_id,
                "slug": self.app_slug,
                "client_id": "Iv1.fake0123456789",
                "node_id": "A_fake",
                "owner": _user_json("octo-org", "Organization"),
                "name": "Reviewbot Test",
                "description": "A fake App",
                "external_url": "https://example.com",
                "html_url": f"{WEB}/apps/{self.app_slug}",
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z",
                "permissions": {"contents": "read", "pull_requests": "write", "metadata": "read"},
                "events": ["pull_request", "issue_comment"],
                "installations_count": 1,
            }
        )

    def _create_token(self, request: Request, path: str, actor: str, payload: Any) -> Response:
        installation = int(request.path_params["installation_id"])
        token = "ghs_" + secrets.token_urlsafe(27).replace("-", "A").replace("_", "B")[:36]
        expires = (datetime.now(UTC) + TOKEN_LIFETIME).replace(microsecond=0)
        self._tokens[token] = (installation, expires)
        if self.new_token_lag:
            self._lagging[token] = self.new_token_lag
        body = {
            "token": token,
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "permissions": {"contents": "read", "pull_requests": "write", "metadata": "read"},
            "repository_selection": "all",
        }
        return _json(body, 201)

    def _convert_manifest(self, request: Request, path: str, actor: str, payload: Any) -> Response:
        registered = self._manifest_codes.pop(request.path_params["code"], None)
        if registered is None or registered[1] < time.monotonic():
            raise _Reply(_json(_error_body(404, None), 404))
        manifest = registered[0]
        body = dict(json.loads(bytes(self._get_app(request, path, actor, payload).body)))
        body.update(
            {
                "name": manifest.get("name") or body["name"],
                "description": manifest.get("description"),
                "external_url": manifest["url"],
                "permissions": manifest.get("default_permissions", {}),
                "events": manifest.get("default_events", []),
                "installations_count": 0,
                "client_secret": "fake-client-secret-" + secrets.token_hex(8),
                "webhook_secret": self.webhook_secret,
                "pem": self.private_key_pem,
            }
        )
        return _json(body, 201)

    def _get_meta(self, request: Request, path: str, actor: str, payload: Any) -> Response:
        if request.url.path.startswith("/api/v3/"):
            # GitHub Enterprise Server's answer (its "REST API endpoints for meta data"): no ranges.
            return _json({"verifiable_password_authentication": True, "installed_version": "3.17.0"})
        # The shape of GitHub's answer ("REST API endpoints for meta data"); only hooks is set by tests.
        body: dict[str, Any] = {
            "verifiable_password_authentication": False,
            "ssh_key_fingerprints": {"SHA256_ECDSA": "fake-ecdsa", "SHA256_ED25519": "fake-ed25519"},
            "ssh_keys": ["ssh-ed25519 AAAAfake"],
            "web": ["192.30.255.112/28", "140.82.112.0/20"],
            "api": ["192.30.255.112/28", "140.82.112.0/20"],
            "git": ["192.30.255.112/28", "140.82.112.0/20"],
            "packages": ["140.82.121.33/32"],
            "pages": ["185.199.108.153/32"],
            "importer": ["52.23.85.212/32"],
            "actions": ["4.148.0.0/16"],
            "dependabot": ["192.0.2.1"],
            "domains": {"website": ["*.github.com"], "codespaces": ["*.github.dev"]},
        }
        if self.hooks is not None:
            body["hooks"] = list(self.hooks)
        return _json(body)

    def _get_user(self, request: Request, path: str, actor: str, payload: Any) -> Response:
        if actor in (self.bot_login, WORKFLOW_LOGIN):
            raise _Reply(_json(_error_body(403, "Resource not accessible by integration"), 403))
        user = _user_json(actor)
        user.update(
            {
                "name": actor,
                "company": None,
                "blog": "",
                "location": None,
                "email": None,
                "hireable": None,
                "bio": None,
                "public_repos": 1,
                "public_gists": 0,
                "followers": 0,
                "following": 0,
                "created_at": "2020-01-01T00:00:00Z",
                "updated_at": "2020-01-01T00:00:00Z",
                "private_gists": 0,
                "total_private_repos": 0,
                "owned_private_repos": 0,
                "disk_usage": 0,
                "collaborators": 0,
                "two_factor_authentication": True,
            }
        )
        return _json(user)

    def _pull_of(self, request: Request) -> _Pull:
        repo = f"{request.path_params['owner']}/{request.path_params['repo']}"
        pull = self._pulls.get((repo, int(request.path_params["number"])))
        if pull is None:
            raise _Reply(_json(_error_body(404, None), 404))
        return pull

    def _get_pull(self, request: Request, path: str, actor: str, payload: Any) -> Response:
        pull = self._pull_of(request)
        accept = request.headers.get("accept", "")
        if "diff" in accept:
            head = pull.head
            if len(head.files) > MAX_DIFF_FILES or head.additions + head.deletions > MAX_DIFF_LINES:
                message = TOO_MANY_FILES if len(head.files) > MAX_DIFF_FILES else TOO_MANY_LINES
                body = _error_body(406, message)
                body["errors"] = [{"resource": "PullRequest", "field": "diff", "code": "too_large"}]
                body["documentation_url"] = f"{DOCS}/pulls/pulls#list-pull-requests-files"
                raise _Reply(_json(body, 406))
            return Response(head.diff_bytes, media_type="text/plain; charset=utf-8", headers=_rate_headers())
        return _json(self._pull_json(pull))

    def _list_files(self, request: Request, path: str, actor: str, payload: Any) -> Response:
        pull = self._pull_of(request)
        entries = [self._file_json(pull, entry) for entry in pull.head.files[:MAX_LISTED_FILES]]
        return self._page(request, entries)

    def _reviews_route(self, request: Request, path: str, actor: str, payload: Any) -> Response:
        pull = self._pull_of(request)
        if request.method == "POST":
            return self._create_review(pull, actor, payload)
        visible = [
            self._review_json(r)
            for r in self._reviews
            if (r.repo, r.number) == (pull.repo, pull.number) and (r.state != "PENDING" or r.user == actor)
        ]
        return self._page(request, visible)

    def _review_route(self, request: Request, path: str, actor: str, payload: Any) -> Response:
        pull = self._pull_of(request)
        review_id = int(request.path_params["review_id"])
        review = next(
            (
                r
                for r in self._reviews
                if r.id == review_id
                and (r.repo, r.number) == (pull.repo, pull.number)
                and (r.state != "PENDING" or r.user == actor)
            ),
            None,
        )
        if review is None:
            raise _Reply(_json(_error_body(404, None), 404))
        if request.method == "DELETE":
            if review.state != "PENDING" or review.user != actor:
                raise _Reply(_unprocessable(NOT_PENDING))
            self._reviews.remove(review)
        return _json(self._review_json(review))

    def _list_comments(self, request: Request, path: str, actor: str, payload: Any) -> Response:
        pull = self._pull_of(request)
        comments = [
            self._comment_json(r, c)
            for r in self._reviews
            if (r.repo, r.number) == (pull.repo, pull.number) and (r.state != "PENDING" or r.user == actor)
            for c in r.comments
        ]
        comments.sort(key=lambda c: int(c["id"]))
        return self._page(request, comments)

    def _compare(self, request: Request, path: str, actor: str, payload: Any) -> Response:
        repo = f"{request.path_params['owner']}/{request.path_params['repo']}"
        base, dots, head = str(request.path_params["basehead"]).partition("...")
        diff = self._compares.get((repo, base, head)) if dots else None
        if diff is None:
            raise _Reply(_json(_error_body(404, None), 404))
        if "diff" in request.headers.get("accept", ""):
            return Response(diff, media_type="text/plain; charset=utf-8", headers=_rate_headers())
        return _json({"url": f"{request.url}", "status": "ahead", "base_commit": {"sha": base}, "files": []})

    def _contents(self, request: Request, path: str, actor: str, payload: Any) -> Response:
        repo = f"{request.path_params['owner']}/{request.path_params['repo']}"
        file_path = str(request.path_params["path"]).strip("/")
        ref = request.query_params.get("ref", self.default_branch)
        data = self._files.get((repo, ref, file_path))
        if data is None:
            prefix = file_path + "/"
            children = sorted({p for (r, f, p) in self._files if (r, f) == (repo, ref) and p.startswith(prefix)})
            if not children:
                raise _Reply(_json(_error_body(404, None), 404))
            listing = [self._content_json(repo, ref, child, self._files[(repo, ref, child)]) for child in children]
            for item in listing:
                del item["content"], item["encoding"]
            return _json(listing)
        if "raw" in request.headers.get("accept", ""):
            return Response(data, media_type="application/octet-stream", headers=_rate_headers())
        return _json(self._content_json(repo, ref, file_path, data))

    # -- creating a review ----------------------------------------------------------------

    def _create_review(self, pull: _Pull, actor: str, payload: Any) -> Response:
        if not isinstance(payload, dict):
            raise _Reply(_json(_error_body(400, "Problems parsing JSON"), 400))
        if any(r.user == actor and r.state == "PENDING" for r in self._reviews_of(pull)):
            raise _Reply(_unprocessable(ONE_PENDING))
        event = payload.get("event")
        if event is not None and event not in _EVENTS:
            raise _Reply(_unprocessable(f"event must be one of {', '.join(_EVENTS)}"))
        body = payload.get("body") or ""
        if event in ("COMMENT", "REQUEST_CHANGES") and not body.strip():
            raise _Reply(_unprocessable(BODY_REQUIRED))
        if event in ("APPROVE", "REQUEST_CHANGES") and actor == pull.author:
            raise _Reply(_unprocessable(OWN_PULL))
        commit_id = payload.get("commit_id") or pull.head.sha
        head = pull.heads.get(commit_id)
        if head is None:
            raise _Reply(_unprocessable(COMMIT_NOT_IN_PULL))
        raw_comments = payload.get("comments") or []
        problems = [problem for item in raw_comments if (problem := _check_comment(head, item)) is not None]
        if problems:
            raise _Reply(_unprocessable(*problems))
        review = _Review(
            id=self._new_id(),
            repo=pull.repo,
            number=pull.number,
            user=actor,
            user_type="Bot" if actor.endswith("[bot]") else "User",
            state=_EVENTS[event] if event else "PENDING",
            body=body,
            commit_id=commit_id,
            submitted_at=_now() if event else None,
            comments=[],
        )
        for item in raw_comments:
            start_line = item.get("start_line")
            side = item.get("side") or "RIGHT"
            review.comments.append(
                _Comment(
                    id=self._new_id(),
                    review_id=review.id,
                    path=item["path"],
                    line=int(item["line"]),
                    side=side,
                    start_line=int(start_line) if start_line is not None else None,
                    start_side=(item.get("start_side") or side) if start_line is not None else None,
                    body=item["body"],
                    commit_id=commit_id,
                )
            )
        self._reviews.append(review)
        return _json(self._review_json(review))

    # -- JSON as GitHub writes it ---------------------------------------------------------

    def _reviews_of(self, pull: _Pull) -> list[_Review]:
        return [r for r in self._reviews if (r.repo, r.number) == (pull.repo, pull.number)]

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _page(self, request: Request, items: Sequence[Any]) -> Response:
        """One page of a list, with GitHub's Link header (per_page at most 100, 30 by default)."""
        try:
            per_page = max(1, min(100, int(request.query_params.get("per_page", "30"))))
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            raise _Reply(_json(_error_body(422, "Invalid pagination parameter"), 422)) from None
        last = max(1, -(-len(items) // per_page))
        chunk = list(items[(page - 1) * per_page : page * per_page])
        links = []

        def link(number: int, rel: str) -> str:
            url = request.url.include_query_params(per_page=per_page, page=number)
            return f'<{url}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        headers = {"link": ", ".join(links)} if links else {}
        return _json(chunk, headers=headers)

    def _pull_json(self, pull: _Pull) -> dict[str, Any]:
        owner = pull.repo.split("/", 1)[0]
        api = f"https://api.github.com/repos/{pull.repo}"
        author = _user_json(pull.author)
        repo = _repo_json(pull.repo)
        head = pull.head
        return {
            "url": f"{api}/pulls/{pull.number}",
            "id": pull.id,
            "node_id": f"PR_fake{pull.id}",
            "html_url": f"{WEB}/{pull.repo}/pull/{pull.number}",
            "diff_url": f"{WEB}/{pull.repo}/pull/{pull.number}.diff",
            "patch_url": f"{WEB}/{pull.repo}/pull/{pull.number}.patch",
            "issue_url": f"{api}/issues/{pull.number}",
            "commits_url": f"{api}/pulls/{pull.number}/commits",
            "review_comments_url": f"{api}/pulls/{pull.number}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{pull.number}/comments",
            "statuses_url": f"{api}/statuses/{head.sha}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": author,
            "body": pull.body,
            "labels": [],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": "2024-05-01T10:00:00Z",
            "updated_at": "2024-05-01T10:00:00Z",
            "closed_at": None if pull.state == "open" else "2024-05-02T10:00:00Z",
            "merged_at": "2024-05-02T10:00:00Z" if pull.merged else None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": {
                "label": f"{owner}:{pull.head_ref}",
                "ref": pull.head_ref,
                "sha": head.sha,
                "user": author,
                "repo": repo,
            },
            "base": {
                "label": f"{owner}:{pull.base_ref}",
                "ref": pull.base_ref,
                "sha": pull.base_sha,
                "user": _user_json(owner),
                "repo": repo,
            },
            "_links": {
                "self": {"href": f"{api}/pulls/{pull.number}"},
                "html": {"href": f"{WEB}/{pull.repo}/pull/{pull.number}"},
                "issue": {"href": f"{api}/issues/{pull.number}"},
                "comments": {"href": f"{api}/issues/{pull.number}/comments"},
                "review_comments": {"href": f"{api}/pulls/{pull.number}/comments"},
                "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
                "commits": {"href": f"{api}/pulls/{pull.number}/commits"},
                "statuses": {"href": f"{api}/statuses/{head.sha}"},
            },
            "author_association": "CONTRIBUTOR",
            "auto_merge": None,
            "draft": pull.draft,
            "merged": pull.merged,
            "mergeable": True,
            "rebaseable": True,
            "mergeable_state": "clean",
            "merged_by": None,
            "comments": 0,
            "review_comments": sum(len(r.comments) for r in self._reviews_of(pull)),
            "maintainer_can_modify": False,
            "commits": len(pull.heads),
            "additions": head.additions,
            "deletions": head.deletions,
            "changed_files": len(head.files),
        }

    def _file_json(self, pull: _Pull, entry: _FileEntry) -> dict[str, Any]:
        sha = pull.head.sha
        path = quote(entry.filename)
        item: dict[str, Any] = {
            "sha": f"{abs(hash((sha, entry.filename))):040x}"[:40],
            "filename": entry.filename,
            "status": entry.status,
            "additions": entry.additions,
            "deletions": entry.deletions,
            "changes": entry.additions + entry.deletions,
            "blob_url": f"{WEB}/{pull.repo}/blob/{sha}/{path}",
            "raw_url": f"{WEB}/{pull.repo}/raw/{sha}/{path}",
            "contents_url": f"https://api.github.com/repos/{pull.repo}/contents/{path}?ref={sha}",
        }
        if entry.patch is not None:
            item["patch"] = entry.patch
        if entry.previous_filename is not None:
            item["previous_filename"] = entry.previous_filename
        return item

    def _review_json(self, review: _Review) -> dict[str, Any]:
        html = f"{WEB}/{review.repo}/pull/{review.number}#pullrequestreview-{review.id}"
        pull_url = f"https://api.github.com/repos/{review.repo}/pulls/{review.number}"
        item: dict[str, Any] = {
            "id": review.id,
            "node_id": f"PRR_fake{review.id}",
            "user": _user_json(review.user, review.user_type),
            "body": review.body,
            "state": review.state,
            "html_url": html,
            "pull_request_url": pull_url,
            "author_association": "NONE",
            "_links": {"html": {"href": html}, "pull_request": {"href": pull_url}},
            "commit_id": review.commit_id,
        }
        if review.submitted_at is not None:
            item["submitted_at"] = review.submitted_at
        return item

    def _comment_json(self, review: _Review, comment: _Comment) -> dict[str, Any]:
        api = f"https://api.github.com/repos/{review.repo}"
        html = f"{WEB}/{review.repo}/pull/{review.number}#discussion_r{comment.id}"
        return {
            "url": f"{api}/pulls/comments/{comment.id}",
            "pull_request_review_id": review.id,
            "id": comment.id,
            "node_id": f"PRRC_fake{comment.id}",
            "diff_hunk": "@@",
            "path": comment.path,
            "commit_id": comment.commit_id,
            "original_commit_id": comment.commit_id,
            "user": _user_json(review.user, review.user_type),
            "body": comment.body,
            "created_at": review.submitted_at or _now(),
            "updated_at": review.submitted_at or _now(),
            "html_url": html,
            "pull_request_url": f"{api}/pulls/{review.number}",
            "author_association": "NONE",
            "_links": {
                "self": {"href": f"{api}/pulls/comments/{comment.id}"},
                "html": {"href": html},
                "pull_request": {"href": f"{api}/pulls/{review.number}"},
            },
            "start_line": comment.start_line,
            "original_start_line": comment.start_line,
            "start_side": comment.start_side,
            "line": comment.line,
            "original_line": comment.line,
            "side": comment.side,
            "subject_type": "line",
        }

    def _content_json(self, repo: str, ref: str, path: str, data: bytes) -> dict[str, Any]:
        encoded = base64.b64encode(data).decode()
        wrapped = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n"
        # Files of 1-100 MB come without their content ("encoding": "none"); the raw media type has it.
        # https://docs.github.com/rest/repos/contents#get-repository-content
        large = len(data) > CONTENTS_INLINE_LIMIT
        api = f"https://api.github.com/repos/{repo}/contents/{quote(path)}?ref={ref}"
        html = f"{WEB}/{repo}/blob/{ref}/{quote(path)}"
        sha = f"{abs(hash((repo, ref, path))):040x}"[:40]
        return {
            "type": "file",
            "encoding": "none" if large else "base64",
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": "" if large else wrapped,
            "sha": sha,
            "url": api,
            "git_url": f"https://api.github.com/repos/{repo}/git/blobs/{sha}",
            "html_url": html,
            "download_url": f"https://raw.githubusercontent.com/{repo}/{ref}/{quote(path)}",
            "_links": {"self": api, "git": f"https://api.github.com/repos/{repo}/git/blobs/{sha}", "html": html},
        }


# -- the diff, as GitHub reads it -------------------------------------------------------------

_DIFF_GIT = re.compile(rb"^diff --git ", re.MULTILINE)


def _make_head(sha: str, diff_text: str | bytes, overrides: Mapping[str, str | None]) -> _Head:
    data = diff_text.encode() if isinstance(diff_text, str) else diff_text
    diff = parse_diff(data)
    starts = [match.start() for match in _DIFF_GIT.finditer(data)]
    if len(starts) != len(diff.files):
        raise ValueError("the fake GitHub needs a git diff: one 'diff --git' line per file")
    sections = [data[start:end] for start, end in zip(starts, [*starts[1:], len(data)], strict=True)]
    files: list[_FileEntry] = []
    lines: dict[str, dict[tuple[Side, int], int]] = {}
    for diff_file, section in zip(diff.files, sections, strict=True):
        patch = _patch_of(section)
        if diff_file.path in overrides:
            patch = overrides[diff_file.path]
        files.append(
            _FileEntry(
                filename=diff_file.path,
                previous_filename=diff_file.old_path
                if diff_file.status in (FileStatus.RENAMED, FileStatus.COPIED)
                else None,
                status=_github_status(diff_file),
                additions=diff_file.added,
                deletions=diff_file.removed,
                patch=patch,
            )
        )
        spots = lines.setdefault(diff_file.path, {})
        for number, hunk in enumerate(diff_file.hunks):
            for line in hunk.lines:
                if line.old_no is not None and line.kind in "- ":
                    spots[(Side.LEFT, line.old_no)] = number
                if line.new_no is not None and line.kind in "+ ":
                    spots[(Side.RIGHT, line.new_no)] = number
    return _Head(sha=sha, diff_bytes=data, diff=diff, files=files, lines=lines)


def _patch_of(section: bytes) -> str | None:
    """The ``patch`` GitHub sends for one file: its hunks from the first ``@@``, no final newline."""
    match = re.search(rb"^@@ ", section, re.MULTILINE)
    if match is None:
        return None
    patch = section[match.start() :].decode("utf-8", errors="replace")
    return patch[:-1] if patch.endswith("\n") else patch


def _github_status(diff_file: DiffFile) -> str:
    if diff_file.old_path is None:
        return "added"
    if diff_file.new_path is None:
        return "removed"
    if diff_file.status is FileStatus.COPIED:
        return "copied"
    if diff_file.status is FileStatus.RENAMED or diff_file.old_path != diff_file.new_path:
        return "renamed"
    if diff_file.status is FileStatus.MODE_CHANGED:
        return "changed"
    return "modified"


def _check_comment(head: _Head, item: Any) -> str | None:
    """What GitHub would say about one review comment, or None if it would take it."""
    if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not isinstance(item.get("body"), str):
        return "Invalid request: a comment needs a path and a body"
    spots = head.lines.get(item["path"])
    if spots is None:
        return PATH_NOT_IN_DIFF
    line = item.get("line")
    if not isinstance(line, int):
        return LINE_NOT_IN_DIFF
    side = Side(item.get("side") or "RIGHT")
    hunk = spots.get((side, line))
    if hunk is None:
        return LINE_NOT_IN_DIFF
    start = item.get("start_line")
    if start is None:
        return None
    start_side = Side(item.get("start_side") or side)
    if not isinstance(start, int) or start >= line:
        return START_NOT_BEFORE_LINE
    if start_side is not side:
        return START_OTHER_SIDE
    start_hunk = spots.get((start_side, start))
    if start_hunk is None:
        return LINE_NOT_IN_DIFF
    if start_hunk != hunk:
        return START_OTHER_HUNK
    return None


# -- small JSON helpers -----------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rate_headers() -> dict[str, str]:
    return {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "4999",
        "x-ratelimit-used": "1",
        "x-ratelimit-reset": str(int(time.time()) + 3600),
        "x-ratelimit-resource": "core",
        "x-github-api-version-selected": "2022-11-28",
    }


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers={**_rate_headers(), **dict(headers or {})})


def _error_body(status: int, message: str | None) -> dict[str, Any]:
    text = message or _STATUS_MESSAGES.get(status, "Error")
    return {"message": text, "documentation_url": DOCS, "status": str(status)}


def _unprocessable(*errors: str) -> Response:
    body = {
        "message": "Unprocessable Entity",
        "errors": list(errors),
        "documentation_url": f"{DOCS}/pulls/reviews#create-a-review-for-a-pull-request",
        "status": "422",
    }
    return _json(body, 422)


def _user_json(login: str, user_type: str | None = None) -> dict[str, Any]:
    kind = user_type or ("Bot" if login.endswith("[bot]") else "User")
    number = abs(hash(login)) % 10_000_000
    url = f"https://api.github.com/users/{quote(login)}"
    return {
        "login": login,
        "id": number,
        "node_id": f"U_fake{number}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{number}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{WEB}/{quote(login)}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": kind,
        "site_admin": False,
    }


def _repo_json(full_name: str) -> dict[str, Any]:
    owner, name = full_name.split("/", 1)
    api = f"https://api.github.com/repos/{full_name}"
    number = abs(hash(full_name)) % 100_000_000
    templates = {
        "archive_url": "/{archive_format}{/ref}",
        "assignees_url": "/assignees{/user}",
        "blobs_url": "/git/blobs{/sha}",
        "branches_url": "/branches{/branch}",
        "collaborators_url": "/collaborators{/collaborator}",
        "comments_url": "/comments{/number}",
        "commits_url": "/commits{/sha}",
        "compare_url": "/compare/{base}...{head}",
        "contents_url": "/contents/{+path}",
        "contributors_url": "/contributors",
        "deployments_url": "/deployments",
        "downloads_url": "/downloads",
        "events_url": "/events",
        "forks_url": "/forks",
        "git_commits_url": "/git/commits{/sha}",
        "git_refs_url": "/git/refs{/sha}",
        "git_tags_url": "/git/tags{/sha}",
        "issue_comment_url": "/issues/comments{/number}",
        "issue_events_url": "/issues/events{/number}",
        "issues_url": "/issues{/number}",
        "keys_url": "/keys{/key_id}",
        "labels_url": "/labels{/name}",
        "languages_url": "/languages",
        "merges_url": "/merges",
        "milestones_url": "/milestones{/number}",
        "notifications_url": "/notifications{?since,all,participating}",
        "pulls_url": "/pulls{/number}",
        "releases_url": "/releases{/id}",
        "stargazers_url": "/stargazers",
        "statuses_url": "/statuses/{sha}",
        "subscribers_url": "/subscribers",
        "subscription_url": "/subscription",
        "tags_url": "/tags",
        "teams_url": "/teams",
        "trees_url": "/git/trees{/sha}",
        "hooks_url": "/hooks",
    }
    repo: dict[str, Any] = {key: api + suffix for key, suffix in templates.items()}
    repo.update(
        {
            "id": number,
            "node_id": f"R_fake{number}",
            "name": name,
            "full_name": full_name,
            "private": False,
            "owner": _user_json(owner),
            "html_url": f"{WEB}/{full_name}",
            "description": None,
            "fork": False,
            "url": api,
            "git_url": f"git://github.com/{full_name}.git",
            "ssh_url": f"git@github.com:{full_name}.git",
            "clone_url": f"{WEB}/{full_name}.git",
            "svn_url": f"{WEB}/{full_name}",
            "mirror_url": None,
            "homepage": None,
            "language": "Python",
            "forks_count": 0,
            "forks": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "size": 1,
            "default_branch": "main",
            "open_issues_count": 0,
            "open_issues": 0,
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": True,
            "has_wiki": True,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "visibility": "public",
            "pushed_at": "2024-05-01T10:00:00Z",
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2024-05-01T10:00:00Z",
            "allow_forking": True,
            "web_commit_signoff_required": False,
            "license": None,
        }
    )
    return repo
