-- Progress inside a topic chunk: besides the contiguous cursor, the subscription
-- seqs above it that are already done (comma-separated), so one slow send does
-- not make a crash re-send everything finished after it.
ALTER TABLE jobs ADD COLUMN done_seqs TEXT NOT NULL DEFAULT '';
