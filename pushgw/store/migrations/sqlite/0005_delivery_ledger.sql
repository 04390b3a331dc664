-- pushgw schema, version 5 (SQLite). Keep in step with postgres/0005_delivery_ledger.sql.
-- The delivery ledger (pushgw/ledger.py): counters per message and per minute,
-- a record per failure and per sampled success, and the dead letters' messages.
-- Pruned in the background by age and size (`[ledger]`).

-- One row per message with at least one ended delivery.
CREATE TABLE ledger_messages (
    id TEXT PRIMARY KEY,
    topic_arn TEXT,
    target_arn TEXT,
    created_at REAL NOT NULL,
    first_attempt_at REAL NOT NULL,
    last_attempt_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX ledger_messages_last ON ledger_messages (last_attempt_at);

-- Ended deliveries of a message by platform, status and failure type ('' for
-- none: a key column cannot be NULL).
CREATE TABLE ledger_counts (
    message_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_type TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (message_id, platform, status, failure_type)
) WITHOUT ROWID;

-- Ended deliveries per minute (bucket: its first second, epoch) and platform.
CREATE TABLE ledger_rollup (
    bucket INTEGER NOT NULL,
    platform TEXT NOT NULL,
    status TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (bucket, platform, status)
) WITHOUT ROWID;

-- A record per failure (a dead letter: dead_letter = 1) and per sampled success.
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    endpoint_arn TEXT NOT NULL,
    app_arn TEXT NOT NULL,
    platform TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_type TEXT,
    reason TEXT NOT NULL,
    provider_status INTEGER,
    attempts INTEGER NOT NULL,
    finished_at REAL NOT NULL,
    dead_letter INTEGER NOT NULL,
    replayed_at REAL
);
CREATE INDEX deliveries_kind ON deliveries (dead_letter, id);
CREATE INDEX deliveries_message ON deliveries (message_id, id);
CREATE INDEX deliveries_app ON deliveries (app_arn, id);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_arn, id);
CREATE INDEX deliveries_finished ON deliveries (finished_at);

-- What replay needs of a message with dead letters: kept once per message.
CREATE TABLE dead_letter_messages (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    structure TEXT,
    subject TEXT,
    attributes TEXT NOT NULL,
    topic_arn TEXT,
    target_arn TEXT,
    created_at REAL NOT NULL,
    expires_at REAL
) WITHOUT ROWID;
