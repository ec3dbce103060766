#!/usr/bin/env bash
# The store's append throughput against the limit of the same PostgreSQL (docs/benchmarks.md,
# "Event log: append throughput against the limit"): pgbench inserting one row per
# transaction into a table shaped like call_events, beside the store's own append benchmark
# at the same concurrency, and the ratio store / pgbench.
#
#   bench/pgbench/run.sh            # a table on stdout
#   bench/pgbench/run.sh --json     # JSON lines on stdout (one per concurrency), the table on stderr
#
# What runs:
# - A fresh database pgbench_call_events_<time>_<pid> on the local server (trust auth),
#   dropped at the end; call_events comes from the store's own migrations.
# - pgbench -n -M prepared -c C -j min(C, 2) -T SECONDS -f insert.sql, for C in CLIENTS
#   (1 16 64, the writer counts of the store benchmark's rows), RUNS times each (3); the
#   median of the runs' tps (= rows/s: one INSERT per transaction). Every run is checked:
#   no failed transaction, and as many new rows as transactions.
# - The store's benchmark on the same server (crates/store/benches/append.rs, Postgres only,
#   group commit, 1-event appends and 3-event appends, the same writer counts, SECONDS and
#   RUNS), its JSON lines read back. STORE_RESULTS=file reads them from a file instead (the
#   output of an earlier `BENCH_JSON=1 cargo bench -p store --bench append`); STORE=skip
#   leaves the store out.
# Durability is the server's own: the script prints fsync and synchronous_commit (on by
# default) and changes neither; both sides commit with them.
#
# Why the ratio can exceed 1: pgbench's script commits every row on its own (one WAL flush
# per row, however many clients wait), while the store group-commits: one committer takes
# every append waiting at that moment into one transaction (one advisory lock, one
# multi-row INSERT, one flush). Per row the store does more work (the lock, a head lookup,
# a NOTIFY per call), so at 1 writer it is below pgbench; with many writers the shared
# flush is what the comparison is about.
#
# Environment: SECONDS_PER_RUN (10), RUNS (3), CLIENTS ("1 16 64"), PGHOST (127.0.0.1),
# PGPORT (5432), PGUSER (postgres), STORE (run; or skip), STORE_RESULTS (a file of JSON lines).
set -euo pipefail

json=0
if [[ ${1:-} == --json ]]; then
    json=1
    shift
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${SECONDS_PER_RUN:-10}
runs=${RUNS:-3}
read -r -a clients <<<"${CLIENTS:-1 16 64}"
pghost=${PGHOST:-127.0.0.1}
pgport=${PGPORT:-5432}
pguser=${PGUSER:-postgres}
psql_=(psql -X -q -v ON_ERROR_STOP=1 -h "$pghost" -p "$pgport" -U "$pguser")

# Human output: stdout, or stderr when stdout carries the JSON lines.
say() {
    if ((json)); then echo "$@" >&2; else echo "$@"; fi
}
log() { echo "pgbench/run: $*" >&2; }

median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

db="pgbench_call_events_$(date +%Y%m%d_%H%M%S)_$$"
"${psql_[@]}" -d postgres -c "create database $db"
cleanup() { "${psql_[@]}" -d postgres -c "drop database if exists $db" || true; }
trap cleanup EXIT
# The store's own schema, from its migrations (never a copy that could drift), then ours.
for migration in "$root"/crates/store/migrations/postgres/*.sql; do
    "${psql_[@]}" -d "$db" -f "$migration" >/dev/null
done
"${psql_[@]}" -d "$db" -f "$here/schema.sql"

fsync=$("${psql_[@]}" -d "$db" -Atc "show fsync")
sync_commit=$("${psql_[@]}" -d "$db" -Atc "show synchronous_commit")
pg_version=$("${psql_[@]}" -d "$db" -Atc "show server_version")
log "PostgreSQL $pg_version at $pghost:$pgport, fsync=$fsync, synchronous_commit=$sync_commit; database $db"
if [[ $fsync != on || $sync_commit != on ]]; then
    log "warning: the server does not flush every commit: neither side's figure is durable"
fi

# --- pgbench ---
declare -A pgb_median pgb_runs
for c in "${clients[@]}"; do
    j=$((c < 2 ? c : 2))
    results=()
    for ((r = 1; r <= runs; r++)); do
        before=$("${psql_[@]}" -d "$db" -Atc "select count(*) from call_events")
        out=$(pgbench -h "$pghost" -p "$pgport" -U "$pguser" -n -M prepared -c "$c" -j "$j" \
            -T "$seconds" -D seq=200 -f "$here/insert.sql" "$db" 2>&1) || {
            echo "$out" >&2
            exit 1
        }
        tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
        done_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
        failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
        after=$("${psql_[@]}" -d "$db" -Atc "select count(*) from call_events")
        if [[ -z $tps || ${failed:-0} != 0 || $((after - before)) != "$done_tx" ]]; then
            echo "$out" >&2
            log "a pgbench run failed or its rows do not add up ($((after - before)) rows, $done_tx transactions)"
            exit 1
        fi
        log "pgbench -c $c -j $j -T $seconds: $tps rows/s ($done_tx rows)"
        results+=("$tps")
    done
    pgb_runs[$c]="${results[*]}"
    pgb_median[$c]=$(echo "${results[*]}" | median)
done

# --- the store's benchmark ---
store_lines=""
if [[ -n ${STORE_RESULTS:-} ]]; then
    store_lines=$(grep '^{' "$STORE_RESULTS" || true)
elif [[ ${STORE:-run} != skip ]]; then
    writers=$(IFS=,; echo "${clients[*]}")
    log "running the store's append benchmark (Postgres, group commit; ${seconds} s × $runs runs a row; cargo builds it first)"
    bench_log=$(mktemp)
    store_lines=$(cd "$root" && DATABASE_URL="postgres://$pguser@$pghost:$pgport/postgres" \
        BENCH_JSON=1 BENCH_STORES=postgres BENCH_PARTS=group-commit,three-events \
        BENCH_THREE_EVENT_WRITERS="$writers" BENCH_SECONDS="$seconds" BENCH_RUNS="$runs" \
        cargo bench -q -p store --bench append 2>"$bench_log" | grep '^{' || true)
    if [[ -z $store_lines ]]; then
        tail -n 20 "$bench_log" >&2
        log "warning: the store's benchmark printed no rows"
    fi
    rm -f "$bench_log"
fi
# The median events/s of the store's group-commit rows with E events per append and W writers.
store_rate() {
    jq -r --argjson e "$1" --argjson w "$2" \
        'select(.store == "postgres" and .commit == "group" and .events_per_append == $e and .writers == $w) | .median_events_per_s' \
        <<<"$store_lines" | head -n1
}
store_runs() {
    jq -c --argjson e "$1" --argjson w "$2" \
        'select(.store == "postgres" and .commit == "group" and .events_per_append == $e and .writers == $w) | .runs_events_per_s' \
        <<<"$store_lines" | head -n1
}

# --- the table ---
fmt() { [[ -n $1 ]] && printf "%.0f" "$1" || printf -- "–"; }
ratio() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || printf -- "–"; }
say ""
say "PostgreSQL $pg_version, fsync=$fsync, synchronous_commit=$sync_commit; ${seconds} s a run, median of $runs runs"
say ""
say "| concurrency | pgbench rows/s (1 row per tx) | store events/s (1-event appends) | store / pgbench | store events/s (3-event appends) | store / pgbench |"
say "|---:|---:|---:|---:|---:|---:|"
for c in "${clients[@]}"; do
    p=${pgb_median[$c]}
    s1=$(store_rate 1 "$c")
    s3=$(store_rate 3 "$c")
    say "| $c | $(fmt "$p") | $(fmt "$s1") | $(ratio "$s1" "$p") | $(fmt "$s3") | $(ratio "$s3" "$p") |"
    if ((json)); then
        jq -cn --argjson c "$c" --argjson p "$p" --arg pr "${pgb_runs[$c]}" \
            --arg s1 "$s1" --arg s3 "$s3" --arg s1r "$(store_runs 1 "$c")" --arg s3r "$(store_runs 3 "$c")" \
            --argjson seconds "$seconds" --argjson runs "$runs" \
            --arg fsync "$fsync" --arg sc "$sync_commit" --arg pgv "$pg_version" '
            def num: if . == "" then null else tonumber end;
            def arr: if . == "" then null else fromjson end;
            {bench: "pgbench_vs_store", concurrency: $c, seconds: $seconds, runs: $runs,
             postgres: $pgv, fsync: $fsync, synchronous_commit: $sc,
             pgbench_rows_per_s: $p, pgbench_runs: ($pr | split(" ") | map(tonumber)),
             store_1_event_events_per_s: ($s1 | num), store_1_event_runs: ($s1r | arr),
             store_3_events_events_per_s: ($s3 | num), store_3_events_runs: ($s3r | arr),
             ratio_1_event: (if ($s1 | num) == null then null else ($s1 | num) / $p end),
             ratio_3_events: (if ($s3 | num) == null then null else ($s3 | num) / $p end)}'
    fi
done
