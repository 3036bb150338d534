"""The store's schema: its migrations, one per version, and the keys of the advisory locks it takes.

Both backends get the same schema and the same SQL: standard types only (TEXT, INTEGER, BIGINT,
BOOLEAN, DOUBLE PRECISION), timestamps as epoch seconds, ``INSERT … ON CONFLICT``, no ``RETURNING``
(SQLite before 3.35 lacks it).
"""

from __future__ import annotations

from typing import Final

# First keys of the PostgreSQL advisory locks the store takes ("rb" and a number), so that another
# application's advisory locks in the same database are unlikely to collide with ours. A transaction
# that takes locks of several kinds takes them in the order of these numbers, so that two cannot cross.
LOCK_MIGRATIONS: Final = 0x7262_0001
LOCK_PULL_REQUEST: Final = 0x7262_0002
LOCK_CLAIM: Final = 0x7262_0003
LOCK_TURN: Final = 0x7262_0004
LOCK_PRUNE: Final = 0x7262_0005
LOCK_INSTALLATION: Final = 0x7262_0006
LOCK_DELIVERY: Final = 0x7262_0007

# Each entry is one schema version (1, 2, …); never edit an entry once released, append a new one.
# `{auto_id}` is filled in from the dialect.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE deliveries (
            id TEXT PRIMARY KEY,
            event TEXT NOT NULL,
            action TEXT,
            installation_id BIGINT,
            repo TEXT,
            received_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE jobs (
            id {auto_id},
            kind TEXT NOT NULL,
            installation_id BIGINT NOT NULL,
            repo TEXT NOT NULL,
            pr_number INTEGER NOT NULL,
            head_sha TEXT NOT NULL,
            base_sha TEXT NOT NULL,
            full_review BOOLEAN NOT NULL,
            trigger TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'dropped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            not_before DOUBLE PRECISION NOT NULL,
            lease_owner TEXT,
            lease_until DOUBLE PRECISION,
            last_error TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX jobs_by_state ON jobs (state, not_before)",
        "CREATE INDEX jobs_by_pull_request ON jobs (repo, pr_number, state)",
        """CREATE TABLE reviews (
            repo TEXT NOT NULL,
            pr_number INTEGER NOT NULL,
            head_sha TEXT NOT NULL,
            review_id BIGINT NOT NULL,
            posted_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (repo, pr_number, head_sha)
        )""",
        """CREATE TABLE fingerprints (
            repo TEXT NOT NULL,
            pr_number INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            PRIMARY KEY (repo, pr_number, fingerprint)
        )""",
        """CREATE TABLE installations (
            id BIGINT PRIMARY KEY,
            account TEXT NOT NULL,
            suspended BOOLEAN NOT NULL DEFAULT FALSE,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE installation_repos (
            installation_id BIGINT NOT NULL,
            repo TEXT NOT NULL,
            PRIMARY KEY (installation_id, repo)
        )""",
    ),
    # 2: the cost ledger (reviewbot.money.ledger), one row per model request. cost_usd NULL = unknown.
    (
        """CREATE TABLE model_calls (
            id {auto_id},
            job_id BIGINT,
            installation_id BIGINT NOT NULL,
            repo TEXT NOT NULL,
            pr_number INTEGER NOT NULL,
            head_sha TEXT NOT NULL,
            request_index INTEGER NOT NULL,
            model TEXT NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            reasoning_tokens BIGINT NOT NULL,
            cost_usd DOUBLE PRECISION,
            cost_source TEXT NOT NULL CHECK (cost_source IN ('endpoint', 'price table', 'unknown')),
            seconds DOUBLE PRECISION NOT NULL,
            outcome TEXT NOT NULL,
            error TEXT,
            at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX model_calls_by_time ON model_calls (at)",
        "CREATE INDEX model_calls_by_installation ON model_calls (installation_id, at)",
        "CREATE INDEX model_calls_by_repo ON model_calls (repo, at)",
    ),
    # 3: at most one running job per pull request (reviewbot.store.queue.QueueMixin.claim_job).
    # A database upgraded while two ran for one pull request keeps the oldest running and hands
    # the others back to the queue, their attempt not counted (as a worker stopping does): their
    # workers lose them at the next heartbeat, and they run once the oldest has ended.
    (
        """UPDATE jobs SET state = 'queued', attempts = attempts - 1, lease_owner = NULL, lease_until = NULL
        WHERE state = 'running' AND EXISTS (
            SELECT 1 FROM jobs AS older WHERE older.state = 'running' AND older.kind = jobs.kind
            AND older.repo = jobs.repo AND older.pr_number = jobs.pr_number AND older.id < jobs.id
        )""",
        "CREATE UNIQUE INDEX jobs_one_running_per_pull_request ON jobs (kind, repo, pr_number) WHERE state = 'running'",
    ),
    # 4: review results kept between a job's attempts (reviewbot.store.results), one per job.
    (
        """CREATE TABLE kept_results (
            job_id BIGINT PRIMARY KEY,
            head_sha TEXT NOT NULL,
            result TEXT NOT NULL,
            kept_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX kept_results_by_time ON kept_results (kept_at)",
    ),
    # 5: the ledger keeps cached prompt tokens and the layer a cost's price came from
    # (reviewbot.engine.price_layers); rows from before are labelled as the price table priced them.
    (
        "ALTER TABLE model_calls ADD COLUMN cached_tokens BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE model_calls ADD COLUMN price_source TEXT NOT NULL DEFAULT 'unknown'",
        "UPDATE model_calls SET price_source = cost_source",
    ),
    # 6: a review command is taken once per comment (reviewbot.store.deliveries): the delivery that
    # took it keeps the comment's id, which another delivery cannot take again. GitHub signs a
    # delivery's body, not its id, so a replayed body can come under any id. Rows from before have none.
    (
        "ALTER TABLE deliveries ADD COLUMN command_comment_id BIGINT",
        "CREATE UNIQUE INDEX deliveries_one_per_command_comment ON deliveries (command_comment_id)"
        " WHERE command_comment_id IS NOT NULL",
    ),
    # 7: retention (reviewbot.store.retention). Each prune finds the old deliveries and finished jobs
    # through an index of only those it may delete: a delivery that took a command is kept for good, so
    # it would otherwise be scanned over by every prune, and queued or running jobs are never pruned.
    # `maintenance` records when a periodic task (the hourly prune) is next due, for every process.
    (
        "CREATE INDEX deliveries_by_time ON deliveries (received_at) WHERE command_comment_id IS NULL",
        "CREATE INDEX jobs_finished_by_update ON jobs (state, updated_at) WHERE state IN ('done', 'dropped', 'failed')",
        "CREATE TABLE maintenance (task TEXT PRIMARY KEY, next_at DOUBLE PRECISION NOT NULL)",
    ),
    # 8: a delivery keeps the SHA-256 of its body (hex), which no other delivery may have
    # (reviewbot.store.deliveries): GitHub signs the body, not the delivery id, so the same body under
    # a new id is a replay. It is kept as long as its delivery (reviewbot.store.retention). Rows from
    # before have none: NULL, which the index leaves out, so they are held to their id alone.
    (
        "ALTER TABLE deliveries ADD COLUMN body_sha256 TEXT",
        "CREATE UNIQUE INDEX deliveries_one_per_body ON deliveries (body_sha256) WHERE body_sha256 IS NOT NULL",
    ),
)

SCHEMA_VERSION: Final = len(MIGRATIONS)
