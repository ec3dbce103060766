-- The call list, maintained by the `call-index` projection (see the Postgres migration).
CREATE TABLE call_index (
    call_id     TEXT NOT NULL PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    status      TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    -- microseconds since the Unix epoch: sorts correctly, unlike RFC 3339 text of varying precision
    started_at  INTEGER NOT NULL,
    listing     TEXT NOT NULL CHECK (json_valid(listing))
);

CREATE INDEX call_index_tenant_started_idx ON call_index (tenant_id, started_at DESC, call_id DESC);
