"""The exception hierarchy.

    ReviewbotError
    ├── ConfigError        a setting or option has a bad value
    ├── DiffError          the input is not a unified diff
    ├── InputError         a file, revision range or stdin could not be read
    ├── ModelError         the model endpoint failed for a request
    │   └── ModelAuthError the endpoint refused our credentials
    ├── StoreError         the database could not be used
    └── GitHubError        GitHub's API failed or refused a request
        ├── GitHubAuthError      bad credentials or missing permission
        ├── GitHubNotFound       404
        ├── GitHubRateLimited    primary or secondary rate limit; carries retry_after
        ├── GitHubUnprocessable  422, e.g. a review comment off the diff
        ├── GitHubTransient      5xx, timeouts, connection errors: worth retrying
        └── NoWebhookRanges      the API publishes no webhook ranges (GitHub Enterprise Server)

Library errors are re-raised as one of these (``raise ... from exc``) and turned into an exit
code or an HTTP status only at the edge (the CLI, the webhook).
"""


class ReviewbotError(Exception):
    """Base class for every error reviewbot raises on purpose."""


class ConfigError(ReviewbotError):
    """A setting or command-line option has a value we cannot use."""


class DiffError(ReviewbotError):
    """The input is not a unified diff we can read."""


class InputError(ReviewbotError):
    """The diff could not be read from its source (file, stdin, git)."""


class ModelError(ReviewbotError):
    """A request to the model endpoint failed after all retries. ``status`` is the HTTP status
    the endpoint answered with, None when none came back (a timeout, a broken connection)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ModelAuthError(ModelError):
    """The model endpoint refused the API key; retrying cannot help."""


class ContextLengthError(ModelError):
    """The endpoint refused a request as longer than the model's context window; a smaller one may pass."""


class StoreError(ReviewbotError):
    """The database that keeps deliveries, jobs and reviews failed or is closed."""


class GitHubError(ReviewbotError):
    """A GitHub API request failed. ``status`` is the HTTP status, None when none came back.

    Messages name the request (method and path) and GitHub's own words, never a token or key.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GitHubAuthError(GitHubError):
    """GitHub refused our credentials or their permissions (401, or 403 that is no rate limit)."""


class GitHubNotFound(GitHubError):
    """The repository, pull request, file or review does not exist, or is hidden from us (404)."""


class GitHubRateLimited(GitHubError):
    """A primary or secondary rate limit; ``retry_after`` is how many seconds GitHub asks us to wait."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class GitHubUnprocessable(GitHubError):
    """GitHub refused the request's content (422), e.g. a review comment on a line off the diff.

    ``github_message`` is GitHub's ``message`` and ``errors`` its ``errors``, each as text.
    """

    def __init__(self, message: str, *, github_message: str, errors: tuple[str, ...] = (), status: int = 422) -> None:
        super().__init__(message, status=status)
        self.github_message = github_message
        self.errors = errors


class GitHubTransient(GitHubError):
    """A failure worth retrying later: 5xx, a timeout, or a broken connection."""


class NoWebhookRanges(GitHubError):
    """The API's ``GET /meta`` publishes no webhook ranges: it has no ``hooks`` field, as on GitHub
    Enterprise Server, or it wants credentials for it, as a GitHub Enterprise Server in private mode does."""
