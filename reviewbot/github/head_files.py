"""The files a pull request leads to, fetched for function context (``REVIEWBOT_CONTEXT=function``).

Each file comes from the contents API at the head commit
(docs.github.com/rest/repos/contents#get-repository-content), which serves the commits of a
fork's pull request from the base repository too. A file that is gone, too big or refused is
left out, and its hunks are reviewed alone; rate limits and transient failures are left to the
caller, which retries the whole review.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from reviewbot.engine.diff import decode
from reviewbot.errors import GitHubError, GitHubRateLimited, GitHubTransient
from reviewbot.github.client import GitHubClient
from reviewbot.head_files import MAX_FILES, MAX_HEAD_BYTES

#: Files fetched at once: each is one API request against the installation's quota.
AT_ONCE = 8


async def fetch_head_files(github: GitHubClient, repo: str, ref: str, paths: Sequence[str]) -> dict[str, str]:
    """The text of each of ``paths`` (the first :data:`MAX_FILES`) in ``repo`` at commit ``ref``."""
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(path: str) -> tuple[str, bytes | None]:
        async with gate:
            try:
                # A PR can touch a line of a 90 MB file: its size is read before its bytes.
                return path, await github.get_file(repo, path, ref, max_bytes=MAX_HEAD_BYTES)
            except (GitHubRateLimited, GitHubTransient):
                raise
            except GitHubError:
                return path, None  # refused or unreadable: this file is reviewed with its diff alone

    fetched = await asyncio.gather(*(one(path) for path in paths[:MAX_FILES]))
    return {path: decode(data) for path, data in fetched if data is not None}
