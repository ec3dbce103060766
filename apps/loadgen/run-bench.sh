#!/usr/bin/env bash
# One run of the hub latency benchmark (docs/benchmarks.md, "Hub: segment → alert latency at
# WebSocket subscribers"): builds the server and the load tool in release, starts the server
# on a fresh store (a new SQLite directory, or a new database on the local Postgres), reads
# the one-time admin token from its stdout, runs earshot-load against it, and stops it.
#
#   apps/loadgen/run-bench.sh sqlite 500                 # 500 calls, 2 subscribers, 30 s
#   apps/loadgen/run-bench.sh postgres 2000 -- --json    # extra arguments go to earshot-load
#
# Environment: SUBSCRIBERS (2), RATE (1 segment/s per call), DURATION (30 s), PORT (18080),
# PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres; trust auth), KEEP=1 keeps the data
# directory / database, SKIP_BUILD=1 skips the build, SERVER_BIN runs another earshot binary
# (to compare a change), RUST_LOG is passed to the server, SPEAKER (agent; or customer,
# alternate) is who says the segments (earshot-load --speaker; the server suggests replies
# to customer segments only), SERVER_ARGS are extra `earshot serve` flags (e.g. --no-assist).
# With an LLM provider in the loop: LLM_DELAY_MS (unset: no provider) starts
# `earshot-load fake-llm` (an OpenAI-compatible fake answering after that many ms) on
# LLM_PORT (18090) before the server, runs the server with
# `--llm-base-url http://127.0.0.1:$LLM_PORT/v1 --llm-model fake-3s`, and runs earshot-load
# with --measure-suggestions (segment → first suggestion token, segment → suggestion posted)
# and --suggestion-wait SUGGESTION_WAIT (LLM_DELAY_MS in whole seconds + 7). LLM_TOKENS (20)
# and LLM_TOKEN_INTERVAL_MS (20) shape the fake's streamed answers; LLM_NICE (10) is its
# scheduling priority (it stands for a remote service, so it yields the CPU to the server),
# LLM_SCHED=idle (default normal) runs it under SCHED_IDLE as well, and LLM_HTTP=2 has the
# server speak HTTP/2 to it without TLS (--llm-http2-prior-knowledge; default 1.1), as it
# does over TLS with a hosted provider. LLM_TLS=1 serves the fake over HTTPS instead, as
# hosted providers are, offering h2 and http/1.1 by ALPN (fake-llm --tls-cert-out, the server
# given --llm-ca-cert for its self-signed certificate); the client then chooses h2 itself.
# For example:
#
#   LLM_DELAY_MS=3000 SPEAKER=customer apps/loadgen/run-bench.sh sqlite 100
# Exit status: earshot-load's (2 when anything was lost, duplicated or refused); 64 for an
# LLM_SCHED, LLM_TLS or LLM_HTTP value it does not know.
set -euo pipefail

store=${1:?usage: run-bench.sh sqlite|postgres CALLS [-- earshot-load args…]}
calls=${2:?usage: run-bench.sh sqlite|postgres CALLS [-- earshot-load args…]}
shift 2
[[ ${1:-} == -- ]] && shift

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
port=${PORT:-18080}
pghost=${PGHOST:-127.0.0.1}
pgport=${PGPORT:-5432}
pguser=${PGUSER:-postgres}

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    cargo build --release -q -p earshot -p earshot-load
fi

# 2,000 calls × (2 subscribers + 1 ingest) sockets on each side of loopback.
ulimit -n 20000 2>/dev/null || echo "run-bench: could not raise ulimit -n (now $(ulimit -n))" >&2

work=$(mktemp -d)
db=""
case $store in
    sqlite)
        export EARSHOT_DATA_DIR=$work/data
        unset DATABASE_URL
        ;;
    postgres)
        db="loadtest_$(date +%Y%m%d_%H%M%S)_$$"
        psql -q -h "$pghost" -p "$pgport" -U "$pguser" -c "create database $db"
        export DATABASE_URL="postgres://$pguser@$pghost:$pgport/$db"
        ;;
    *)
        echo "run-bench: the store is sqlite or postgres, not $store" >&2
        exit 64
        ;;
esac

server_pid=""
llm_pid=""
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid"
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ -n $llm_pid ]] && kill -0 "$llm_pid" 2>/dev/null; then
        kill -TERM "$llm_pid"
        wait "$llm_pid" 2>/dev/null || true
        # Its last line counts the requests it answered.
        tail -n 1 "$work/fake-llm.log" >&2 || true
    fi
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "run-bench: kept $work${db:+ and database $db}" >&2
        return
    fi
    rm -rf "$work"
    if [[ -n $db ]]; then
        psql -q -h "$pghost" -p "$pgport" -U "$pguser" -c "drop database if exists $db" || true
    fi
}
trap cleanup EXIT

server_args=(serve --listen "127.0.0.1:$port")
load_args=(--speaker "${SPEAKER:-agent}")
if [[ -n ${LLM_DELAY_MS:-} ]]; then
    llm_port=${LLM_PORT:-18090}
    # The provider stands for a remote service: at a lower priority it takes only the CPU the
    # server and the load tool leave (LLM_NICE, 10; 0 to compete on equal terms).
    # LLM_SCHED=idle runs it under SCHED_IDLE as well: it then only takes what they leave.
    # A misspelt value would silently measure another configuration: refuse it.
    case ${LLM_SCHED:-normal}/${LLM_TLS:-0}/${LLM_HTTP:-1.1} in
        idle/[01]/1.1 | idle/[01]/2 | normal/[01]/1.1 | normal/[01]/2) ;;
        *) echo "run-bench: LLM_SCHED is idle or normal, LLM_TLS 0 or 1, LLM_HTTP 1.1 or 2" \
               "(got ${LLM_SCHED:-normal}, ${LLM_TLS:-0}, ${LLM_HTTP:-1.1})" >&2
           exit 64 ;;
    esac
    llm_sched=()
    [[ ${LLM_SCHED:-normal} == idle ]] && llm_sched=(chrt --idle 0)
    llm_scheme=http llm_tls=()
    if [[ ${LLM_TLS:-0} == 1 ]]; then
        llm_scheme=https llm_tls=(--tls-cert-out "$work/fake-llm.pem")
    fi
    "${llm_sched[@]}" nice -n "${LLM_NICE:-10}" "$target/release/earshot-load" fake-llm --listen "127.0.0.1:$llm_port" \
        --delay-ms "$LLM_DELAY_MS" --tokens "${LLM_TOKENS:-20}" \
        --token-interval-ms "${LLM_TOKEN_INTERVAL_MS:-20}" "${llm_tls[@]}" 2>"$work/fake-llm.log" &
    llm_pid=$!
    for _ in $(seq 1 100); do
        grep -q 'listening on' "$work/fake-llm.log" && break
        if ! kill -0 "$llm_pid" 2>/dev/null; then
            echo "run-bench: the fake LLM exited; its log:" >&2
            cat "$work/fake-llm.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "run-bench: fake LLM (pid $llm_pid) on port $llm_port, answering after $LLM_DELAY_MS ms" >&2
    server_args+=(--llm-base-url "$llm_scheme://127.0.0.1:$llm_port/v1" --llm-model fake-3s)
    [[ $llm_scheme == https ]] && server_args+=(--llm-ca-cert "$work/fake-llm.pem")
    [[ ${LLM_HTTP:-1.1} == 2 ]] && server_args+=(--llm-http2-prior-knowledge)
    load_args+=(--measure-suggestions
        --suggestion-wait "${SUGGESTION_WAIT:-$(( (LLM_DELAY_MS + 999) / 1000 + 7 ))}")
fi
if [[ -n ${SERVER_ARGS:-} ]]; then
    read -r -a extra_server_args <<<"$SERVER_ARGS"
    server_args+=("${extra_server_args[@]}")
fi

"${SERVER_BIN:-$target/release/earshot}" "${server_args[@]}" \
    >"$work/server.out" 2>"$work/server.log" &
server_pid=$!

token=""
for _ in $(seq 1 600); do
    token=$(grep -o 'esk_[0-9a-f]\{40\}' "$work/server.out" | head -n1 || true)
    [[ -n $token ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "run-bench: the server exited; its log:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z $token ]]; then
    echo "run-bench: no admin token on the server's stdout (was the store not fresh?)" >&2
    exit 1
fi

# A process's CPU time (user + system, seconds) from /proc; the server's by default.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/${1:-$server_pid}/stat"
}

echo "run-bench: $store, $calls calls, server pid $server_pid on port $port" >&2
cpu_before=$(cpu_seconds)
[[ -n $llm_pid ]] && llm_cpu_before=$(cpu_seconds "$llm_pid")
status=0
TIMEFORMAT="run-bench: earshot-load CPU: %U s user + %S s system over %R s"
# The token goes in the environment, not on the command line (where `ps` would show it).
time EARSHOT_TOKEN=$token "$target/release/earshot-load" --url "http://127.0.0.1:$port" \
    --calls "$calls" --subscribers "${SUBSCRIBERS:-2}" --rate "${RATE:-1}" \
    --duration "${DURATION:-30}" "${load_args[@]}" "$@" || status=$?
cpu_after=$(cpu_seconds)
echo "run-bench: server CPU during setup + run: $(awk -v a="$cpu_before" -v b="$cpu_after" 'BEGIN { printf "%.1f", b - a }') s (user + system)" >&2
if [[ -n $llm_pid ]]; then
    llm_cpu_after=$(cpu_seconds "$llm_pid")
    echo "run-bench: fake LLM CPU during setup + run: $(awk -v a="$llm_cpu_before" -v b="$llm_cpu_after" 'BEGIN { printf "%.1f", b - a }') s (user + system)" >&2
fi
warnings=$(grep -c -E '"level":"(WARN|ERROR)"' "$work/server.log" || true)
echo "run-bench: server log lines at WARN or ERROR: $warnings" >&2
exit "$status"
