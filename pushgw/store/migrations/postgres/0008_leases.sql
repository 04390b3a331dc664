-- pushgw schema, version 8 (PostgreSQL). Keep in step with sqlite/0008_leases.sql.
-- Named leases, each held by one node at a time until expires_at (epoch
-- seconds): an election among the nodes sharing the store. The holder renews
-- its lease long before it runs out; another node takes it once it has (the
-- holder died) or once the holder gives it up. "cluster-metrics": the node that
-- reports the cluster-wide gauges (pushgw/metrics.py).
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
