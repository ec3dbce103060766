-- The append-only event log (embedded SQLite flavour; same semantics as Postgres).
-- AUTOINCREMENT makes positions strictly increasing, never reused.
CREATE TABLE call_events (
    position        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL,
    tenant_id       TEXT    NOT NULL,
    call_id         TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         TEXT    NOT NULL,
    trace_id        TEXT,
    causation_id    TEXT,
    correlation_id  TEXT,
    recorded_at     TEXT    NOT NULL,
    CONSTRAINT call_events_call_seq_key UNIQUE (call_id, seq),
    CONSTRAINT call_events_event_id_key UNIQUE (event_id),
    CONSTRAINT call_events_seq_check CHECK (seq >= 1),
    CONSTRAINT call_events_schema_version_check CHECK (schema_version >= 1),
    CONSTRAINT call_events_payload_check CHECK (json_valid(payload))
);

-- Append-only, enforced by the database. SQLite has no TRUNCATE: an unqualified DELETE is
-- its truncate, and a DELETE trigger turns that optimisation off, so it is refused too.
CREATE TRIGGER call_events_no_update
    BEFORE UPDATE ON call_events
BEGIN
    SELECT RAISE(ABORT, 'call_events is append-only: UPDATE is not allowed');
END;

CREATE TRIGGER call_events_no_delete
    BEFORE DELETE ON call_events
BEGIN
    SELECT RAISE(ABORT, 'call_events is append-only: DELETE is not allowed');
END;

CREATE TABLE consumer_checkpoints (
    consumer    TEXT    NOT NULL PRIMARY KEY,
    position    INTEGER NOT NULL CHECK (position >= 0),
    updated_at  TEXT    NOT NULL
);
