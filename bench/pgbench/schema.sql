-- What the pgbench comparison needs beside the store's own schema. run.sh first applies the
-- store's migrations (crates/store/migrations/postgres/*.sql, in order), so call_events is
-- exactly the table the store appends to: same columns, types, named constraints, indexes
-- and append-only triggers (which fire on UPDATE, DELETE and TRUNCATE, never on the inserts
-- measured).

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
