-- One pgbench transaction = one durable single-row INSERT into call_events (autocommit: the
-- INSERT is its own transaction, so every row waits for its own commit and WAL flush).
--
-- The rows are the store benchmark's (crates/store/benches/append.rs): tenant "bench", each
-- client writes calls of 200 events with seqs 1, 2, 3…, a `segment_added` event whose JSON is
-- what the store writes for `domain::testkit::segment(n, TEXT, true)` (~260 bytes), no trace,
-- causation or correlation id, time-ordered event and call ids.
--
-- pgbench keeps a client's variables from one transaction to the next: `seq` counts within
-- the current call (run.sh starts it at 200 with -D seq=200, so the first transaction opens a
-- call), and a new call id is drawn every 200 rows (a read-only statement: no commit to
-- flush, one round trip per 200 rows). In the JSON a colon is never followed by a letter:
-- pgbench would take `:true` for a variable.
\if :seq >= 200
SELECT bench_uuidv7() AS call_id \gset
\set seq 0
\endif
\set seq :seq + 1
INSERT INTO call_events (event_id, tenant_id, call_id, seq, event_type, schema_version,
                         payload, trace_id, causation_id, correlation_id, recorded_at)
VALUES (bench_uuidv7(), 'bench', :call_id::uuid, :seq, 'segment_added', 1,
        ('{"segment_id":"seg-' || :seq::text || '","speaker":"customer","text":"okay so the unit in the attic is making a rattling noise and the upstairs rooms are not getting any cold air at all since yesterday afternoon","start_ms":' || (:seq * 1000)::text || ',"end_ms":' || (:seq * 1000 + 800)::text || ',"is_final":' || 'true,"confidence":0.9,"redactions":[]}')::jsonb,
        NULL, NULL, NULL, now());
