-- The append-only event log: the one source of truth. Every constraint is named so the
-- store can map a violation to a domain error.
CREATE TABLE call_events (
    position        bigint GENERATED ALWAYS AS IDENTITY,
    event_id        uuid        NOT NULL,
    tenant_id       text        NOT NULL,
    call_id         uuid        NOT NULL,
    seq             bigint      NOT NULL,
    event_type      text        NOT NULL,
    schema_version  smallint    NOT NULL,
    payload         jsonb       NOT NULL,
    trace_id        text,
    causation_id    uuid,
    correlation_id  uuid,
    recorded_at     timestamptz NOT NULL,
    CONSTRAINT call_events_pkey PRIMARY KEY (position),
    CONSTRAINT call_events_call_seq_key UNIQUE (call_id, seq),
    CONSTRAINT call_events_event_id_key UNIQUE (event_id),
    CONSTRAINT call_events_seq_check CHECK (seq >= 1),
    CONSTRAINT call_events_schema_version_check CHECK (schema_version >= 1)
);

-- Append-only, enforced by the database: no UPDATE, DELETE or TRUNCATE, whoever asks.
-- (A role that owns the table could still disable the triggers; production connects as a
-- role with only SELECT and INSERT: see infra/postgres/roles.sql.)
CREATE FUNCTION call_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'call_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER call_events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON call_events
    FOR EACH ROW EXECUTE FUNCTION call_events_append_only();

CREATE TRIGGER call_events_no_truncate
    BEFORE TRUNCATE ON call_events
    FOR EACH STATEMENT EXECUTE FUNCTION call_events_append_only();

-- Durable positions of log consumers (projections, workers).
CREATE TABLE consumer_checkpoints (
    consumer    text        NOT NULL,
    position    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT consumer_checkpoints_pkey PRIMARY KEY (consumer),
    CONSTRAINT consumer_checkpoints_position_check CHECK (position >= 0)
);
