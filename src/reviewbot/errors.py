"""The exception hierarchy.

    ReviewbotError
    ├── ConfigError        a setting or option has a bad value
    ├── DiffError          the input is not a unified diff
    ├── InputError         a file, revision range or stdin could not be read
    └── ModelError         the model endpoint failed for a request
        └── ModelAuthError the endpoint refused our credentials

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
    """A request to the model endpoint failed after all retries."""


class ModelAuthError(ModelError):
    """The model endpoint refused the API key; retrying cannot help."""
