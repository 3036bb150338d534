"""Durable state: the schema, the SQLite and PostgreSQL backends, deliveries, the job queue and posted reviews."""
