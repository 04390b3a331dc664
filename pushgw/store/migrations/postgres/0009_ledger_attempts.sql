-- pushgw schema, version 9 (PostgreSQL). Keep in step with sqlite/0009_ledger_attempts.sql.
-- The ledger's message row keeps its send attempt times apart from when the
-- ledger last heard of the message (an attempt or an outcome): a message still
-- retrying has attempts and no outcome, one whose TTL ran out in the queue has
-- an outcome and no attempt. The seen times are retention's clock.
ALTER TABLE ledger_messages RENAME COLUMN first_attempt_at TO first_seen_at;
ALTER TABLE ledger_messages RENAME COLUMN last_attempt_at TO last_seen_at;
ALTER TABLE ledger_messages ADD COLUMN first_attempt_at DOUBLE PRECISION;
ALTER TABLE ledger_messages ADD COLUMN last_attempt_at DOUBLE PRECISION;
-- Rows from before: their outcome times, which the ledger reported as attempts.
UPDATE ledger_messages SET first_attempt_at = first_seen_at, last_attempt_at = last_seen_at;
-- Age and the max_messages cap both go least recently seen first; id breaks ties.
DROP INDEX ledger_messages_last;
CREATE INDEX ledger_messages_seen ON ledger_messages (last_seen_at, id);

-- A message's pending deliveries are read by (message_id, kind): its few topic
-- chunks without reading its endpoint jobs, of which a fan-out during an outage
-- can have a million. It serves every lookup by message_id alone too.
DROP INDEX jobs_message;
CREATE INDEX jobs_message_kind ON jobs (message_id, kind);
