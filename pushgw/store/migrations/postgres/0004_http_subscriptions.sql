-- pushgw schema, version 4 (PostgreSQL). Keep in step with sqlite/0004_http_subscriptions.sql.
-- HTTP/HTTPS subscriptions: a pending subscription keeps the secret half of its
-- confirmation token (NULL once confirmed).
ALTER TABLE subscriptions ADD COLUMN confirm_token TEXT;

-- Unsubscribed subscriptions, for the topic's SubscriptionsDeleted count and
-- for the SubscribeURL of an UnsubscribeConfirmation, which restores the
-- subscription (confirm_token: that URL's secret). Pruned by housekeeping.
CREATE TABLE deleted_subscriptions (
    arn TEXT PRIMARY KEY,
    topic_arn TEXT NOT NULL,
    endpoint_arn TEXT NOT NULL,
    protocol TEXT NOT NULL,
    attributes TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    confirm_token TEXT,
    deleted_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX deleted_subscriptions_topic ON deleted_subscriptions (topic_arn);

-- HTTP deliveries are jobs too, claimed in a lane of their own (0 push, 1 HTTP),
-- so a slow or dead subscriber never holds the slots of push delivery.
ALTER TABLE jobs ADD COLUMN lane INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN subscription_arn TEXT;
-- A control document (SubscriptionConfirmation, UnsubscribeConfirmation) as JSON.
ALTER TABLE jobs ADD COLUMN payload TEXT;
DROP INDEX jobs_due;
DROP INDEX jobs_leased;
CREATE INDEX jobs_due ON jobs (lane, next_attempt_at, id) WHERE lease_owner IS NULL;
CREATE INDEX jobs_leased ON jobs (lane, lease_expires_at) WHERE lease_owner IS NOT NULL;
