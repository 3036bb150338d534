"""Review results kept between a job's attempts, so that a retry posts what the model already
found instead of paying for the model again.

One row per job: the result for the head commit the job reviewed, as text the service encodes
(the store does not know what a review is). A result is read back only for the same head, so a
push after it was kept gets a review of its own.
"""

from __future__ import annotations

import time
from typing import Final

from reviewbot.store.base import StoreBase

#: Past this age a kept result is deleted whatever became of its job: no job runs that long.
KEPT_RESULT_SECONDS: Final = 24 * 3600.0


class KeptResultsMixin(StoreBase):
    """The kept results' side of :class:`reviewbot.store.store.Store`."""

    def keep_result(self, job_id: int, head_sha: str, result: str, *, now: float | None = None) -> None:
        """Keep ``result`` for the job's review of ``head_sha``, in place of anything it kept before."""
        now = time.time() if now is None else now
        with self._write() as tx:
            # Results of jobs that ended without forgetting theirs (a worker died) go here too.
            tx.execute("DELETE FROM kept_results WHERE job_id = ? OR kept_at < ?", (job_id, now - KEPT_RESULT_SECONDS))
            tx.execute(
                "INSERT INTO kept_results (job_id, head_sha, result, kept_at) VALUES (?, ?, ?, ?)",
                (job_id, head_sha, result, now),
            )

    def kept_result(self, job_id: int, head_sha: str) -> str | None:
        """What the job kept for ``head_sha``; None if it kept nothing, or kept it for another head."""
        with self._read() as tx:
            row = tx.one("SELECT result FROM kept_results WHERE job_id = ? AND head_sha = ?", (job_id, head_sha))
        return str(row["result"]) if row is not None else None

    def forget_result(self, job_id: int) -> None:
        """Delete what the job kept (it ended)."""
        with self._write() as tx:
            tx.execute("DELETE FROM kept_results WHERE job_id = ?", (job_id,))
