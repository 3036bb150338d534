"""What the default webhook router reads of a payload, typed and bounded as GitHub sends it.

msgspec decodes a body into :class:`PayloadFields` and checks every field on the way: a signed
payload that breaks these types is refused (400, naming the field by its JSON path, see
:func:`explain`) before anything is recorded or asked of GitHub. Where a value goes into a GitHub
API path or the store the types are narrower than "a string" or "an integer": a repository is
``owner/name`` by GitHub's naming rules, a commit is a hex SHA, numbers and ids are positive and
fit their columns. Unknown keys are skipped; ``total=False`` because which fields a payload has
depends on its event.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, TypeAlias, TypedDict

import msgspec

from reviewbot.repos import REPO_FULL_NAME

#: An issue or pull request number: GitHub's GraphQL schema types it `Int`, a signed 32-bit
#: integer, and the store keeps it as INTEGER.
Number: TypeAlias = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
#: A database id (an installation's, a comment's): GitHub's ids are 64-bit, as is the store's BIGINT.
DatabaseId: TypeAlias = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
#: A commit: 40 hex digits, or 64 in a SHA-256 repository, in lower case as git and GitHub write them.
COMMIT_SHA: Final = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
CommitSha: TypeAlias = Annotated[str, msgspec.Meta(pattern=COMMIT_SHA.pattern)]
RepoFullName: TypeAlias = Annotated[str, msgspec.Meta(pattern=REPO_FULL_NAME.pattern)]
# What the patterns mean, for the error message (msgspec quotes a pattern as it is).
_PATTERN_MEANINGS: Final = {
    f"`str` matching regex {REPO_FULL_NAME.pattern!r}": "a repository name `owner/name`",
    f"`str` matching regex {COMMIT_SHA.pattern!r}": "a commit SHA (40 or 64 lower-case hex digits)",
}


class _Account(TypedDict, total=False):
    login: str
    slug: str
    name: str


class _Installation(TypedDict, total=False):
    id: DatabaseId
    account: _Account | None


class _Repository(TypedDict, total=False):
    full_name: RepoFullName


class _Sender(TypedDict, total=False):
    type: str


class _Commit(TypedDict, total=False):
    sha: CommitSha


class _PullRequest(TypedDict, total=False):
    number: Number
    state: str
    head: _Commit
    base: _Commit


class _Changes(TypedDict, total=False):
    base: dict[str, Any]


class _Issue(TypedDict, total=False):
    number: Number
    state: str
    pull_request: dict[str, Any]


class _Comment(TypedDict, total=False):
    id: DatabaseId
    body: str | None
    author_association: str


class PayloadFields(TypedDict, total=False):
    """What the default router's handlers (and :func:`delivery_facts`) read of a payload."""

    action: str
    installation: _Installation | None
    repository: _Repository | None
    sender: _Sender | None
    pull_request: _PullRequest
    changes: _Changes
    issue: _Issue
    comment: _Comment
    repositories: list[_Repository]
    repositories_added: list[_Repository]
    repositories_removed: list[_Repository]


def explain(message: str) -> str:
    """msgspec's validation ``message`` with the patterns above said in words."""
    for pattern, meaning in _PATTERN_MEANINGS.items():
        message = message.replace(pattern, meaning)
    return message
