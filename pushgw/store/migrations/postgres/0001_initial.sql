-- pushgw schema, version 1 (PostgreSQL). Keep in step with sqlite/0001_initial.sql.
-- `seq` columns are BIGSERIAL so a deleted row's seq is never reused: keyset
-- pages and fan-out chunk bounds (jobs.range_hi) rely on seq only growing.

CREATE TABLE apps (
    seq BIGSERIAL PRIMARY KEY,
    arn TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    platform TEXT NOT NULL,
    principal TEXT NOT NULL,
    -- Stored as given for now; encryption at rest is layered on top by the store's
    -- caller (see DESIGN.md "Security").
    credential TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    attributes TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE endpoints (
    seq BIGSERIAL PRIMARY KEY,
    arn TEXT NOT NULL UNIQUE,
    app_arn TEXT NOT NULL,
    token TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    custom_user_data TEXT,
    attributes TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (app_arn, token)
);
CREATE INDEX endpoints_app_seq ON endpoints (app_arn, seq);

CREATE TABLE topics (
    seq BIGSERIAL PRIMARY KEY,
    arn TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE subscriptions (
    seq BIGSERIAL PRIMARY KEY,
    arn TEXT NOT NULL UNIQUE,
    topic_arn TEXT NOT NULL,
    endpoint_arn TEXT NOT NULL,
    protocol TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (topic_arn, endpoint_arn)
);
CREATE INDEX subscriptions_topic_seq ON subscriptions (topic_arn, seq);

CREATE TABLE tags (
    arn TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (arn, key)
);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    structure TEXT,
    subject TEXT,
    -- {"name": {"data_type": ..., "string_value": ..., "binary_value": base64}}
    attributes TEXT NOT NULL,
    topic_arn TEXT,
    target_arn TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    -- Jobs not yet completed; the message is deleted when this reaches 0.
    pending_jobs BIGINT NOT NULL
);

-- No foreign keys to endpoints or messages on purpose: a job to a deleted endpoint
-- just completes, and nothing may cascade-delete queued work.
CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    message_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    endpoint_arn TEXT,
    topic_arn TEXT,
    cursor BIGINT NOT NULL,
    range_hi BIGINT,
    attempts BIGINT NOT NULL,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    lease_owner TEXT,
    lease_expires_at DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    last_error TEXT
);
-- Claims read two partial indexes, so jobs in flight never slow the scan for due
-- ones: unleased jobs by due time, leased jobs by lease expiry.
CREATE INDEX jobs_due ON jobs (next_attempt_at, id) WHERE lease_owner IS NULL;
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE lease_owner IS NOT NULL;
CREATE INDEX jobs_message ON jobs (message_id);

-- A finished job is deleted; its message goes with the last one. The UPDATE locks
-- the message row, so two jobs of one message finishing at once count correctly.
CREATE FUNCTION pushgw_job_done() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    left_over BIGINT;
BEGIN
    UPDATE messages SET pending_jobs = pending_jobs - 1
    WHERE id = OLD.message_id RETURNING pending_jobs INTO left_over;
    IF left_over IS NOT NULL AND left_over <= 0 THEN
        DELETE FROM messages WHERE id = OLD.message_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_done AFTER DELETE ON jobs
FOR EACH ROW EXECUTE FUNCTION pushgw_job_done();
