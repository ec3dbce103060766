#!/usr/bin/env bash
# Regenerates the figures table at the top of docs/benchmarks.md: runs every benchmark of the
# project RUNS times (3), interleaved round by round so that a drift of the machine touches
# every configuration alike, keeps every run's raw output under target/bench-report/<stamp>/,
# and hands them to bench/report.py, which takes the medians, updates bench/results.json and
# rewrites the table.
#
#   bench/report.sh                      # everything (about 100 minutes on 2 cores)
#   bench/report.sh hub assist           # some sections; the others keep their last results
#   DURATION=20 bench/report.sh hub      # shorter load runs (the table says so)
#
# Sections: store (the event log's append throughput and rebuild), redact, rules (per-segment
# engine times), hub (segment → alert at WebSocket subscribers, 1 / 500 / 2,000 calls),
# assist (the alert p99 beside the LLM worker; time to the first suggestion token), fanout
# (10,000 subscribers on one call), pgbench (the store's append against pgbench's inserts).
#
# Environment: RUNS (3), DURATION (60: seconds of each load run), ASSIST_VARIANTS (`off
# offline provider-3s provider-3s-h2 provider-3s-tls provider-3s-idle provider-3s-h2-idle
# provider-3s-tls-idle instant`: the assist section's servers;
# `provider-3s` speaks plain HTTP/1.1 to the provider, `-h2` HTTP/2 without TLS, `-tls` HTTPS
# with ALPN choosing HTTP/2, as with a hosted provider; each also as `…-idle`, with the fake
# provider under SCHED_IDLE instead of only at nice 10, so that it takes only CPU the server,
# Postgres and the load tool leave, as a remote provider takes none), ASSIST_STORES (`sqlite
# postgres`: the assist section's stores; the figures of a store left out are kept),
# DATABASE_URL (Postgres for the store benchmark; postgres://postgres@127.0.0.1:5432/postgres),
# PGHOST/PGPORT/PGUSER (the load scripts' Postgres), SKIP_BUILD=1, STEAL_MAX (2: the share
# of the machine's CPU, in %, that the hypervisor may take from a run before it is run
# again), STEAL_RETRIES (2), STEAL_PAUSE (30 s before a retry). Run it on an otherwise idle
# machine: the load tool, the server, Postgres and the fake provider share its cores.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=${RUNS:-3}
duration=${DURATION:-60}
assist_variants=${ASSIST_VARIANTS:-off offline provider-3s provider-3s-h2 provider-3s-tls provider-3s-idle provider-3s-h2-idle provider-3s-tls-idle instant}
assist_stores=${ASSIST_STORES:-sqlite postgres}
for st in $assist_stores; do
    [[ $st == sqlite || $st == postgres ]] || { echo "report: ASSIST_STORES takes sqlite and postgres, not '$st'" >&2; exit 64; }
done
[[ -n ${assist_stores// /} ]] || { echo "report: ASSIST_STORES names no store" >&2; exit 64; }
steal_max=${STEAL_MAX:-2}
steal_retries=${STEAL_RETRIES:-2}
steal_pause=${STEAL_PAUSE:-30}
[[ $steal_max =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "report: STEAL_MAX must be a percentage, not '$steal_max'" >&2; exit 64; }
[[ $steal_retries =~ ^[0-9]+$ ]] || { echo "report: STEAL_RETRIES must be a whole number, not '$steal_retries'" >&2; exit 64; }
[[ $steal_pause =~ ^[0-9]+$ ]] || { echo "report: STEAL_PAUSE must be whole seconds, not '$steal_pause'" >&2; exit 64; }
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
all=(store redact rules hub assist fanout pgbench)
sections=("$@")
[[ ${#sections[@]} -eq 0 ]] && sections=("${all[@]}")
for s in "${sections[@]}"; do
    [[ " ${all[*]} " == *" $s "* ]] || { echo "report: no section $s (${all[*]})" >&2; exit 64; }
done
want() { [[ " ${sections[*]} " == *" $1 "* ]]; }

out=$root/target/bench-report/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
log() { printf '%s report: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building (release)"
    cargo build --release -q -p earshot -p earshot-load
fi
export SKIP_BUILD=1

# The machine's CPU time stolen by the hypervisor, and all of it, in ticks (/proc/stat):
# on a shared virtual machine a run that lost CPU to a neighbour measures the neighbour.
cpu_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print $9, t }' /proc/stat; }

# One run: NAME (a file name under $out), then the command. Its stdout is kept as
# NAME.out, its stderr as NAME.err, the steal during it as NAME.steal ("stolen total",
# ticks); a failed run is kept too, and reported. A run that lost more than STEAL_MAX % of
# the machine's CPU to the hypervisor is run again after a pause, up to STEAL_RETRIES times;
# the stolen attempts are kept beside it as NAME.{out,err,steal}.stolen-K, and report.py
# judges no aim of a section that still has such a run.
run() {
    local name=$1
    shift
    local attempt=0 status before after share
    while :; do
        log "$name: $*"
        status=0
        before=$(cpu_ticks)
        "$@" >"$out/$name.out" 2>"$out/$name.err" || status=$?
        after=$(cpu_ticks)
        echo "$before $after" | awk '{ print $3 - $1, $4 - $2 }' >"$out/$name.steal"
        share=$(awk '{ printf "%.1f", $2 ? 100 * $1 / $2 : 0 }' "$out/$name.steal")
        log "$name: $share % of the CPU stolen by the hypervisor"
        if [[ $status -eq 0 ]] && (( attempt < steal_retries )) &&
            awk -v s="$share" -v m="$steal_max" 'BEGIN { exit !(s > m) }'; then
            attempt=$((attempt + 1))
            for f in out err steal; do mv "$out/$name.$f" "$out/$name.$f.stolen-$attempt"; done
            log "$name: more than $steal_max % stolen; again in ${steal_pause}s ($attempt of $steal_retries)"
            sleep "$steal_pause"
            continue
        fi
        break
    done
    if [[ $status -ne 0 ]]; then
        log "$name FAILED (exit $status); see $out/$name.err"
        echo "$name" >>"$out/failed"
    fi
}

# The event log: the benchmark repeats each row BENCH_RUNS times itself.
if want store; then
    run store-append env BENCH_JSON=1 BENCH_RUNS="$runs" cargo bench -q -p store --bench append
fi
for r in $(seq 1 "$runs"); do
    # The engines: each run prints its percentiles; the report takes the median of the runs.
    # (The filter that matches nothing skips criterion's own timing of the whole set.)
    if want redact; then run "redact.$r" env BENCH_JSON=1 cargo bench -q -p redact --bench redact -- no-criterion-run; fi
    if want rules; then run "rules.$r" env BENCH_JSON=1 cargo bench -q -p rules --bench engine; fi
    if want hub; then
        for store in sqlite postgres; do
            for calls in 1 500 2000; do
                run "hub.$store.$calls.$r" env DURATION="$duration" \
                    apps/loadgen/run-bench.sh "$store" "$calls" -- --json
            done
        done
    fi
    if want assist; then
        for store in $assist_stores; do
            for v in $assist_variants; do
                case $v in
                    off) run "assist.$store.off.$r" env SPEAKER=alternate DURATION="$duration" \
                        SERVER_ARGS=--no-assist apps/loadgen/run-bench.sh "$store" 500 -- --json ;;
                    offline) run "assist.$store.offline.$r" env SPEAKER=alternate \
                        DURATION="$duration" apps/loadgen/run-bench.sh "$store" 500 -- --json ;;
                    provider-3s | provider-3s-h2 | provider-3s-tls | provider-3s-idle | \
                    provider-3s-h2-idle | provider-3s-tls-idle)
                        # The transport from the name; `-idle`: the fake under SCHED_IDLE.
                        llm=(LLM_DELAY_MS=3000)
                        [[ $v == provider-3s-h2* ]] && llm+=(LLM_HTTP=2)
                        [[ $v == provider-3s-tls* ]] && llm+=(LLM_TLS=1)
                        [[ $v == *-idle ]] && llm+=(LLM_SCHED=idle)
                        run "assist.$store.$v.$r" env SPEAKER=alternate DURATION="$duration" \
                            "${llm[@]}" SERVER_ARGS="--assist-max-concurrent 1024" \
                            apps/loadgen/run-bench.sh "$store" 500 -- --json ;;
                    instant) if [[ $store == sqlite ]]; then
                        run "assist.sqlite.provider-instant.$r" env SPEAKER=alternate \
                            DURATION="$duration" LLM_DELAY_MS=0 \
                            SERVER_ARGS="--assist-max-concurrent 1024" \
                            apps/loadgen/run-bench.sh sqlite 500 -- --json
                    fi ;;
                    *) echo "report: no assist variant $v" >&2; exit 64 ;;
                esac
            done
        done
    fi
    if want fanout; then
        run "fanout.postgres.$r" apps/loadgen/run-fanout.sh postgres 10000 -- --json
    fi
done
if want pgbench; then
    run pgbench env RUNS="$runs" bench/pgbench/run.sh --json
fi

log "raw output in $out"
python3 bench/report.py "$out" --duration "$duration" --runs "$runs" --steal-max "$steal_max" \
    "${sections[@]}"
if [[ -s $out/failed ]]; then
    log "some runs failed: $(tr '\n' ' ' <"$out/failed")"
    exit 1
fi
