-- pushgw schema, version 6 (SQLite). Keep in step with postgres/0006_endpoint_search.sql.
-- Endpoint search (Store.search_endpoints, the console): a token prefix is a
-- range on the (app_arn, token) unique index (SQLite compares TEXT by bytes,
-- i.e. code points); a CustomUserData is this index, in token order.
CREATE INDEX endpoints_app_user_data ON endpoints (app_arn, custom_user_data, token);
