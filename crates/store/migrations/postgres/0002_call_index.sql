-- The call list: one row per call, maintained by the `call-index` projection from the log
-- (the checkpoint it writes in the same transaction is in consumer_checkpoints). It is a
-- cache of the log: it can be dropped and rebuilt from call_events at any time.
CREATE TABLE call_index (
    call_id     uuid        NOT NULL,
    tenant_id   text        NOT NULL,
    status      text        NOT NULL,
    agent_id    text        NOT NULL,
    started_at  timestamptz NOT NULL,
    listing     jsonb       NOT NULL,
    CONSTRAINT call_index_pkey PRIMARY KEY (call_id)
);

CREATE INDEX call_index_tenant_started_idx ON call_index (tenant_id, started_at DESC, call_id DESC);
