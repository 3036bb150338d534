"""What a GitHub repository's ``owner/name`` may look like, checked wherever one reaches an API path."""

from __future__ import annotations

import re
from typing import Final

from reviewbot.errors import ConfigError

#: ``owner/name`` by GitHub's naming rules. An owner is 1-39 letters, digits and hyphens, not
#: starting with a hyphen (with ``_`` for the ``_shortcode`` of Enterprise Managed Users); a
#: repository name is 1-100 letters, digits, ``.``, ``-`` and ``_``, and never ``.`` or ``..``.
#: So neither part can climb out of, or add to, the API path it is put in.
REPO_FULL_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,38}/(?!\.{1,2}\Z)[A-Za-z0-9._-]{1,100}\Z")


def split_repo(repo: str) -> tuple[str, str]:
    """``owner/name`` → (owner, name); anything else is a :class:`ConfigError`."""
    if not REPO_FULL_NAME.match(repo):
        raise ConfigError(f"{repo!r} is not a repository name of the form owner/name")
    owner, _, name = repo.partition("/")
    return owner, name
