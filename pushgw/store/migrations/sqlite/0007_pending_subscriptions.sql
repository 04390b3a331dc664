-- pushgw schema, version 7 (SQLite). Keep in step with postgres/0007_pending_subscriptions.sql.
-- GetTopicAttributes counts a topic's subscriptions on every call (the console
-- asks every few seconds). Pending ones are few: this partial index counts them
-- at once, and the total is a count over (topic_arn, seq) alone, so neither
-- reads the rows of a topic with a million subscribers. The subscription
-- housekeeping's purge of stale pending ones uses it too.
CREATE INDEX subscriptions_pending ON subscriptions (topic_arn) WHERE confirm_token IS NOT NULL;
