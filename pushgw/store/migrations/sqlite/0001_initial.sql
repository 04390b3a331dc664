-- pushgw schema, version 1 (SQLite). Keep in step with postgres/0001_initial.sql.
-- `seq` columns use AUTOINCREMENT so a deleted row's seq is never reused: keyset
-- pages and fan-out chunk bounds (jobs.range_hi) rely on seq only growing.

CREATE TABLE apps (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    arn TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    platform TEXT NOT NULL,
    principal TEXT NOT NULL,
    -- Stored as given for now; encryption at rest is layered on top by the store's
    -- caller (see DESIGN.md "Security").
    credential TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    attributes TEXT NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE endpoints (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    arn TEXT NOT NULL UNIQUE,
    app_arn TEXT NOT NULL,
    token TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    custom_user_data TEXT,
    attributes TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (app_arn, token)
);
CREATE INDEX endpoints_app_seq ON endpoints (app_arn, seq);

CREATE TABLE topics (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    arn TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE subscriptions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    arn TEXT NOT NULL UNIQUE,
    topic_arn TEXT NOT NULL,
    endpoint_arn TEXT NOT NULL,
    protocol TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (topic_arn, endpoint_arn)
);
CREATE INDEX subscriptions_topic_seq ON subscriptions (topic_arn, seq);

CREATE TABLE tags (
    arn TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (arn, key)
) WITHOUT ROWID;

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    structure TEXT,
    subject TEXT,
    -- {"name": {"data_type": ..., "string_value": ..., "binary_value": base64}}
    attributes TEXT NOT NULL,
    topic_arn TEXT,
    target_arn TEXT,
    created_at REAL NOT NULL,
    expires_at REAL,
    -- Jobs not yet completed; the message is deleted when this reaches 0.
    pending_jobs INTEGER NOT NULL
);

-- No foreign keys to endpoints or messages on purpose: a job to a deleted endpoint
-- just completes, and nothing may cascade-delete queued work.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    endpoint_arn TEXT,
    topic_arn TEXT,
    cursor INTEGER NOT NULL,
    range_hi INTEGER,
    attempts INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_expires_at REAL,
    created_at REAL NOT NULL,
    last_error TEXT
);
-- Claims read two partial indexes, so jobs in flight never slow the scan for due
-- ones: unleased jobs by due time, leased jobs by lease expiry.
CREATE INDEX jobs_due ON jobs (next_attempt_at, id) WHERE lease_owner IS NULL;
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE lease_owner IS NOT NULL;
CREATE INDEX jobs_message ON jobs (message_id);

-- A finished job is deleted; its message goes with the last one. Writes are
-- serialised in SQLite, so the counter needs no extra locking.
CREATE TRIGGER jobs_done AFTER DELETE ON jobs
BEGIN
    UPDATE messages SET pending_jobs = pending_jobs - 1 WHERE id = OLD.message_id;
    DELETE FROM messages WHERE id = OLD.message_id AND pending_jobs <= 0;
END;
