-- pushgw schema, version 3 (PostgreSQL). Keep in step with sqlite/0003_nodes.sql.
-- One row per daemon (delivery.node_id), touched by the readiness probe: the
-- cheap write that proves the store accepts writes.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    seen_at DOUBLE PRECISION NOT NULL
);
