"""``github`` in REVIEWBOT_WEBHOOK_ALLOWED_IPS: GitHub's webhook ranges, read at start and kept current.

``reviewbot serve`` reads them before it listens (:func:`webhook_allowlist`): a server told to
let only GitHub in that cannot learn where GitHub is does not start, with one line saying why.
GitHub Enterprise Server publishes no such ranges, so there the line says to list the
appliance's own addresses instead.
The web app then reads them again every hour (:func:`refreshing`). A refresh that fails keeps
the ranges last read, since GitHub's ranges change seldom and an empty list would lose every
delivery (GitHub does not redeliver on its own); it is logged once, and once more when a
refresh works again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Final

from starlette.applications import Starlette
from starlette.types import StatelessLifespan

from reviewbot.errors import ConfigError, GitHubError, NoWebhookRanges
from reviewbot.github.meta import webhook_ranges
from reviewbot.service.peers import Allowlist
from reviewbot.settings import Settings

log = logging.getLogger("reviewbot.allowlist")

#: GitHub changes its ranges "from time to time" and announces additions ahead; an hour keeps up
#: with that at one unauthenticated request an hour (of the 60 GitHub allows).
REFRESH_SECONDS: Final = 3600.0


def webhook_allowlist(settings: Settings) -> Allowlist:
    """The allowlist ``reviewbot serve`` starts with: with ``github``, GitHub's ranges read now.
    Raises :class:`ConfigError` naming the setting when they cannot be read."""
    allowlist = Allowlist.from_settings(settings)
    if allowlist.wants_github:
        try:
            asyncio.run(_fetch(allowlist, settings.github_api_url))
        except NoWebhookRanges as exc:
            raise ConfigError(
                f"REVIEWBOT_WEBHOOK_ALLOWED_IPS=github: {exc}; github is for GitHub.com: list the addresses your "
                "GitHub Enterprise Server appliance sends webhooks from instead"
            ) from exc
        except GitHubError as exc:
            raise ConfigError(
                f"REVIEWBOT_WEBHOOK_ALLOWED_IPS=github: {exc}; check that REVIEWBOT_GITHUB_API_URL can be reached, "
                "or list the networks webhooks come from instead of github"
            ) from exc
    return allowlist


async def _fetch(allowlist: Allowlist, api_url: str) -> None:
    ranges = await webhook_ranges(api_url)
    if set(ranges) != set(allowlist.github_ranges):
        log.info("webhooks are let in from GitHub's %d ranges: %s", len(ranges), ", ".join(map(str, ranges)))
    allowlist.use_github_ranges(ranges)


async def keep_current(allowlist: Allowlist, api_url: str, every: float = REFRESH_SECONDS) -> None:
    """Read GitHub's ranges into ``allowlist`` every ``every`` seconds, at once if it has none yet;
    runs until cancelled."""
    failing = False
    if allowlist.github_ranges:
        await asyncio.sleep(every)
    while True:
        try:
            await _fetch(allowlist, api_url)
        except Exception as exc:  # whatever went wrong, the ranges read before are the best there are
            if not failing:
                log.warning(
                    "could not refresh GitHub's webhook ranges (%s); keeping the %d read before",
                    exc,
                    len(allowlist.github_ranges),
                    exc_info=not isinstance(exc, GitHubError),  # a bug: show where
                )
            failing = True
        else:
            if failing:
                log.info("GitHub's webhook ranges are read again")
            failing = False
        await asyncio.sleep(every)


def refreshing(
    allowlist: Allowlist, api_url: str, every: float, inner: StatelessLifespan[Starlette] | None
) -> StatelessLifespan[Starlette]:
    """A lifespan that keeps ``allowlist`` current while the app runs, around ``inner``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(keep_current(allowlist, api_url, every), name="reviewbot-hook-ranges")
        try:
            if inner is None:
                yield
            else:
                async with inner(app):
                    yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan
