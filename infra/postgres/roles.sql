-- Production roles. The database enforces append-only with triggers, but the table's owner
-- could disable them; so the server runs as a role that owns nothing and may only read and
-- insert the log. Migrations (`earshot migrate`) run as the owner role.
--
--   psql "$OWNER_URL" -v app_password="'...'" -f infra/postgres/roles.sql
--
CREATE ROLE earshot_app LOGIN PASSWORD :app_password;
GRANT USAGE ON SCHEMA public TO earshot_app;
GRANT SELECT, INSERT ON call_events TO earshot_app;
GRANT SELECT, INSERT, UPDATE ON consumer_checkpoints, call_index TO earshot_app;
GRANT SELECT ON _sqlx_migrations TO earshot_app;
-- The directory: tokens are revoked and rulesets activated (UPDATE), never deleted; a
-- ruleset version, once stored, is never rewritten.
GRANT SELECT, INSERT, UPDATE ON tenants, api_tokens TO earshot_app;
GRANT SELECT, INSERT ON rulesets TO earshot_app;
