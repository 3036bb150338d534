"""``reviewbot review --pr OWNER/REPO#N``: a real pull request through the App's own pipeline, with a personal token.

The pull request goes through :class:`~reviewbot.service.pipeline.ReviewPipeline` as the token's
user, with the repository's ``.github/reviewbot.toml`` from the base branch. ``--post`` posts the
review the App would post: incremental after an earlier review of ours, once per head commit.
With ``REVIEWBOT_DATABASE_URL`` set, the budgets apply and the ledger records the requests.
"""

from __future__ import annotations

import re

from reviewbot.errors import ConfigError
from reviewbot.github.client import GitHubClient
from reviewbot.service.pipeline import ModelFactory, Reviewed, ReviewPipeline, ReviewRequest
from reviewbot.settings import Settings
from reviewbot.store.store import open_store

_REF = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)#(?P<number>\d+)$")
_URL = re.compile(r"^https?://[^/]+/(?P<repo>[\w.-]+/[\w.-]+)/pull/(?P<number>\d+)(?:[/?#].*)?$")


def parse_pr_ref(text: str) -> tuple[str, int]:
    """``owner/repo#12`` or a pull request URL → ("owner/repo", 12)."""
    match = _REF.match(text.strip()) or _URL.match(text.strip())
    if match is None:
        raise ConfigError(f"--pr {text!r} is not OWNER/REPO#NUMBER or a pull request URL")
    return match.group("repo"), int(match.group("number"))


async def review_pull_request(
    settings: Settings, ref: str, *, dry_run: bool, post: bool, model: ModelFactory | None = None
) -> Reviewed:
    repo, number = parse_pr_ref(ref)
    if settings.github_token is None:
        raise ConfigError("--pr needs a GitHub token: set GITHUB_TOKEN (or REVIEWBOT_GITHUB_TOKEN)")
    request = ReviewRequest(repo, number, asked=True, post=post, dry_run=dry_run)
    # The default database is the App's; a one-off review only uses one it was pointed at.
    store = open_store(settings.database_url) if "database_url" in settings.model_fields_set else None
    try:
        async with GitHubClient.with_token(settings.github_token.get_secret_value(), settings.github_api_url) as github:
            return await ReviewPipeline(settings, github, store, model=model).run(request)
    finally:
        if store is not None:
            store.close()
