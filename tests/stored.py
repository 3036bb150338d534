"""What tests ask of a store that reviewbot itself never does: one delivery recorded alone, whether a
delivery or an installation's repositories are held, an installation recorded without its event."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from reviewbot.store.records import Delivery, InstallationChange, JobRequest
from reviewbot.store.store import Store

_installation_deliveries = itertools.count(1)


def record_delivery(
    store: Store,
    delivery_id: str,
    event: str,
    action: str | None,
    installation_id: int | None,
    repo: str | None,
    job: JobRequest | None = None,
    *,
    body_sha256: str | None = None,
    now: float | None = None,
) -> bool:
    """Record one delivery as a group of its own (:meth:`Store.record_deliveries`): whether it was new."""
    delivery = Delivery(delivery_id, event, action, installation_id, repo, job, body_sha256)
    return store.record_deliveries([delivery], now=now) == ["recorded"]


def has_delivery(store: Store, delivery_id: str) -> bool:
    with store.read() as tx:
        return tx.one("SELECT 1 FROM deliveries WHERE id = ?", (delivery_id,)) is not None


def installation_repos(store: Store, installation_id: int) -> set[str]:
    with store.read() as tx:
        rows = tx.all("SELECT repo FROM installation_repos WHERE installation_id = ?", (installation_id,))
    return {str(row["repo"]) for row in rows}


def install(store: Store, installation_id: int, account: str, repos: Iterable[str] = ()) -> None:
    """Record an installation as its ``installation.created`` event does, under a delivery id of its own."""
    delivery = Delivery(f"installed-{next(_installation_deliveries)}", "installation", "created", installation_id, None)
    change = InstallationChange(installation_id, "created", account, tuple(repos))
    assert store.record_installation_delivery(delivery, change) == "recorded"
