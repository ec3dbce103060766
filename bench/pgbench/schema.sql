-- The table the pgbench comparison inserts into: call_events exactly as the store creates it
-- on Postgres. The CREATE TABLE, the function and the two triggers are copied from
-- crates/store/migrations/postgres/0001_call_events.sql (same columns, types, named
-- constraints and indexes: the primary key on position and the unique (call_id, seq) and
-- (event_id) indexes); keep them in step with that migration. The triggers fire on UPDATE,
-- DELETE and TRUNCATE only, never on the inserts measured, and are here for fidelity.
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

-- Not in the store's schema: a time-ordered UUID (version 7) like the store's ids
-- (`Uuid::now_v7()` for event and call ids), so the unique indexes on event_id and call_id
-- see the same right-hand inserts as under the store. PostgreSQL 15 has no uuidv7() yet.
CREATE FUNCTION bench_uuidv7() RETURNS uuid
LANGUAGE sql VOLATILE AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;
