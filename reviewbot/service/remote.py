"""``reviewbot review --pr OWNER/REPO#N``: a real pull request, without installing the App.

The pull request is fetched through the same GitHub adapter the App uses, with a personal
token, and reviewed by the same engine with the repository's own ``.github/reviewbot.toml``
(from the base branch). ``--post`` posts the review as the token's user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reviewbot.engine.diff import parse_diff
from reviewbot.engine.llm import ModelClient
from reviewbot.engine.pricing import cost_report
from reviewbot.engine.prompt import ReviewContext
from reviewbot.engine.repo_config import CONFIG_PATH, RepoConfig, apply_repo_config, parse_repo_config
from reviewbot.engine.result import ReviewResult
from reviewbot.engine.review import Prepared, ReviewOptions, execute, prepare
from reviewbot.errors import ConfigError
from reviewbot.github.client import GitHubClient
from reviewbot.github.draft import ReviewContextInfo, build_review
from reviewbot.github.posting import our_reviews, post_review, posted_fingerprints
from reviewbot.github.pulls import PullRequest
from reviewbot.settings import Settings

_REF = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)#(?P<number>\d+)$")
_URL = re.compile(r"^https?://[^/]+/(?P<repo>[\w.-]+/[\w.-]+)/pull/(?P<number>\d+)(?:[/?#].*)?$")


def parse_pr_ref(text: str) -> tuple[str, int]:
    """``owner/repo#12`` or a pull request URL → ("owner/repo", 12)."""
    match = _REF.match(text.strip()) or _URL.match(text.strip())
    if match is None:
        raise ConfigError(f"--pr {text!r} is not OWNER/REPO#NUMBER or a pull request URL")
    return match.group("repo"), int(match.group("number"))


@dataclass(frozen=True, slots=True)
class RemoteReview:
    pull: PullRequest
    prepared: Prepared
    config: RepoConfig
    result: ReviewResult | None  # None for a dry run
    posted_review_id: int | None = None


async def review_pull_request(settings: Settings, ref: str, *, dry_run: bool, post: bool) -> RemoteReview:
    repo, number = parse_pr_ref(ref)
    if settings.github_token is None:
        raise ConfigError("--pr needs a GitHub token: set GITHUB_TOKEN (or REVIEWBOT_GITHUB_TOKEN)")
    async with GitHubClient.with_token(settings.github_token.get_secret_value(), settings.github_api_url) as github:
        pull = await github.get_pull(repo, number)
        config = parse_repo_config(await github.get_file(repo, CONFIG_PATH, pull.base_ref), settings.allowed_models)
        fetched = await github.get_pull_diff(pull)
        options = apply_repo_config(ReviewOptions.from_settings(settings), config)
        prepared = prepare(parse_diff(fetched.text), options, ReviewContext(title=pull.title, description=pull.body))
        if dry_run:
            return RemoteReview(pull, prepared, config, None)
        if prepared.plan.requests:
            model_settings = settings.model_copy(update={"model": options.model})
            async with ModelClient.from_settings(model_settings) as client:
                result = await execute(prepared, client)
        else:
            result = await execute(prepared, None)
        # A review of nothing (every model request failed) is not worth posting.
        if not post or result.all_requests_failed:
            return RemoteReview(pull, prepared, config, result)
        me = await github.viewer_login()
        ours = await our_reviews(github, pull, me)
        draft = build_review(
            result,
            cost_report(result.usage, result.model, options.prices),
            ReviewContextInfo(
                head_sha=pull.head_sha,
                files_reviewed=len(prepared.reviewable),
                config_problems=config.problems,
                omitted=fetched.omitted,
            ),
            known_fingerprints=await posted_fingerprints(github, pull, me, ours),
            max_comments=config.max_comments or settings.max_comments,
        )
        review_id = (await post_review(github, pull, draft, me=me, seen=ours)).review_id
        return RemoteReview(pull, prepared, config, result, review_id)
