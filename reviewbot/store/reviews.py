"""Posted reviews, one per pull request head, and the fingerprints of the findings they posted."""

from __future__ import annotations

import time
from collections.abc import Iterable

from reviewbot.store.base import StoreBase


class ReviewsMixin(StoreBase):
    """The posted reviews' side of :class:`reviewbot.store.store.Store`."""

    def record_review(
        self,
        repo: str,
        pr_number: int,
        head_sha: str,
        review_id: int,
        fingerprints: Iterable[str],
        *,
        now: float | None = None,
    ) -> None:
        """Remember the review posted for a head, and the fingerprints of its findings."""
        now = time.time() if now is None else now
        with self._write() as tx:
            tx.execute(
                "INSERT INTO reviews (repo, pr_number, head_sha, review_id, posted_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (repo, pr_number, head_sha) DO UPDATE SET"
                " review_id = excluded.review_id, posted_at = excluded.posted_at",
                (repo, pr_number, head_sha, review_id, now),
            )
            for fingerprint in set(fingerprints):
                tx.execute(
                    "INSERT INTO fingerprints (repo, pr_number, fingerprint) VALUES (?, ?, ?)"
                    " ON CONFLICT (repo, pr_number, fingerprint) DO NOTHING",
                    (repo, pr_number, fingerprint),
                )

    def review_for(self, repo: str, pr_number: int, head_sha: str) -> int | None:
        with self._read() as tx:
            row = tx.one(
                "SELECT review_id FROM reviews WHERE repo = ? AND pr_number = ? AND head_sha = ?",
                (repo, pr_number, head_sha),
            )
        return int(row["review_id"]) if row is not None else None

    def last_reviewed_head(self, repo: str, pr_number: int) -> str | None:
        with self._read() as tx:
            row = tx.one(
                "SELECT head_sha FROM reviews WHERE repo = ? AND pr_number = ?"
                " ORDER BY posted_at DESC, review_id DESC LIMIT 1",
                (repo, pr_number),
            )
        return str(row["head_sha"]) if row is not None else None

    def known_fingerprints(self, repo: str, pr_number: int) -> set[str]:
        with self._read() as tx:
            rows = tx.all("SELECT fingerprint FROM fingerprints WHERE repo = ? AND pr_number = ?", (repo, pr_number))
        return {str(row["fingerprint"]) for row in rows}
