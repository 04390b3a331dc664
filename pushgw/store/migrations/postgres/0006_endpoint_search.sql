-- pushgw schema, version 6 (PostgreSQL). Keep in step with sqlite/0006_endpoint_search.sql.
-- Endpoint search (Store.search_endpoints, the console). Tokens compare by code
-- point, as in SQLite and the memory store, whatever the database's collation:
-- with COLLATE "C" a token prefix is a range (token >= :lo AND token < :hi) on
-- the (app_arn, token) unique index, which this rebuilds. Equality is unchanged
-- (deterministic collations compare equal strings byte for byte). The rebuild
-- of that index holds the table's lock for as long as it takes (seconds for a
-- million endpoints); nothing else is rewritten.
ALTER TABLE endpoints ALTER COLUMN token TYPE TEXT COLLATE "C";
-- A CustomUserData search: this index, in token order.
CREATE INDEX endpoints_app_user_data ON endpoints (app_arn, custom_user_data, token);
