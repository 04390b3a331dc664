-- pushgw schema, version 3 (SQLite). Keep in step with postgres/0003_nodes.sql.
-- One row per daemon (delivery.node_id), touched by the readiness probe: the
-- cheap write that proves the store accepts writes (disk not full, not read-only).
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
) WITHOUT ROWID;
